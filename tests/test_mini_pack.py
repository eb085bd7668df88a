"""Mini asset packs: the original's two formats read and render, ours is written in the original's
layout (all borders checked, deterministic), and demo_mini runs end to end on both kinds of pack."""
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from talkingface.models.DINet_mini import DINet_mini
from talkingface.audio_loader import find_audio_checkpoint
from talkingface.mini_pack import load_asset_pack, write_asset_pack
from talkingface.mini_pipeline import synthesize
from talkingface.render_model_mini import RenderModelMini, loop_index


@pytest.fixture(scope="module")
def random_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "dinet_mini.pth"
    torch.save({"state_dict": {"net_g": DINet_mini().state_dict()}}, path)
    return path


@pytest.fixture(scope="module")
def our_pack(mini_avatar_dir, random_ckpt):
    from talkingface.mediapipe_utils import load_keypoints

    data = mini_avatar_dir / "data"
    return write_asset_pack(mini_avatar_dir, data / "processed.mp4", load_keypoints(data / "processed.pkl"),
                            checkpoint=random_ckpt), load_keypoints(data / "processed.pkl")


def _upper_lip_centroid(gl):
    sel = (gl[..., 0] > 200) & (gl[..., 1] < 50) & (gl[..., 2] < 50)
    assert sel.sum() > 10, "the upper lip is drawn"
    ys, xs = np.nonzero(sel)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("name,variant,vertices", [("assets1", "8b74e3f", 266), ("assets3", "3e5ce86", 267)])
def test_read_original_pack_and_render(sample_data, random_ckpt, name, variant, vertices):
    pack = load_asset_pack(sample_data / "dh_live/web_assets" / name)
    assert pack.variant == variant and len(pack.mesh.vertices) == vertices and pack.mesh.num_targets == 209
    assert len(pack) == len(pack.rects) == len(pack.mats) == len(pack.points)
    ids = pack.mesh.mp_ids[:209]
    assert (ids >= 0).all() and len(set(ids.tolist())) == 209, "every pack point matched to its own landmark"
    model = RenderModelMini(random_ckpt)
    try:
        model.reset_charactor(pack)
        gl = model.render_gl(0, np.zeros(6))
        assert gl.shape == (128, 128, 4)
        upper = np.isclose(pack.mesh.labels[:209], 2.0)
        expect = pack.points[0][upper].mean(axis=0)
        assert np.linalg.norm(_upper_lip_centroid(gl) - expect) < 4.0, "labels drawn where the pack's lips are"
        frame = model.interface(0, np.zeros(6))
        assert frame.shape == pack.frames[0].shape and frame.dtype == np.uint8
    finally:
        model.close()


def test_our_pack_layout_and_determinism(our_pack, mini_avatar_dir, random_ckpt, tmp_path):
    assets, keypoints = our_pack
    data = json.loads(gzip.open(assets / "combined_data.json.gz").read())
    assert {"uid", "frame_num", "face3D_obj", "ref_data", "json_data", "authorized"} <= set(data)
    assert data["uid"].startswith("matesx_") and data["authorized"] is False
    assert data["frame_num"] == len(data["json_data"]) == len(keypoints)
    assert len(data["ref_data"]) == 6480
    v_lines = [ln for ln in data["face3D_obj"] if ln.startswith("v ")]
    assert len(v_lines) == 266 and all(len(ln.split()) == 6 for ln in v_lines)
    assert all(len(f["points"]) == 16 + 2 * 209 for f in data["json_data"])
    from talkingface.util.media import probe_video

    info = probe_video(mini_avatar_dir / "data" / "processed.mp4")
    w, h = info.width, info.height
    rects = np.array([f["rect"] for f in data["json_data"]])
    assert (rects[:, :2] >= 0).all() and (rects[:, 2] <= w).all() and (rects[:, 3] <= h).all()
    assert (assets / "01.mp4").read_bytes() == (mini_avatar_dir / "data" / "processed.mp4").read_bytes()
    # the same inputs give the same pack (uid, mesh, seeded teeth references -> ref_data)
    again = write_asset_pack(tmp_path, mini_avatar_dir / "data" / "processed.mp4", keypoints, checkpoint=random_ckpt)
    data2 = json.loads(gzip.open(again / "combined_data.json.gz").read())
    for key in ("uid", "face3D_obj", "ref_data", "talkingface"):
        assert data2[key] == data[key], key
    p1 = np.array([f["points"] for f in data["json_data"]])
    p2 = np.array([f["points"] for f in data2["json_data"]])
    np.testing.assert_allclose(p1, p2, atol=2e-5)
    # a pack made with these weights uses its stored ref_data as is
    pack = load_asset_pack(assets)
    model = RenderModelMini(random_ckpt)
    try:
        model.reset_charactor(pack)
        stored = torch.from_numpy(np.asarray(data["ref_data"], np.float32).reshape(1, 20, 18, 18))
        assert torch.equal(model.pipeline.infer_model.ref_in_feature, stored)
    finally:
        model.close()


def test_loop_index_is_a_palindrome():
    assert [loop_index(i, 3) for i in range(8)] == [0, 1, 2, 2, 1, 0, 0, 1]


def test_demo_mini_end_to_end(our_pack, sample_data, random_ckpt, tmp_path):
    """demo_mini.py on 2.5 s of real speech for our pack and the original's assets1."""
    from talkingface.errors import UserInputError
    from talkingface.util.media import count_frames, load_audio, probe_video, read_video, save_wav

    try:
        find_audio_checkpoint("blendshape")
    except UserInputError:
        pytest.skip("no shipped blendshape audio model under checkpoint/")
    speech = load_audio(sample_data / "dh_live/video_data/audio1.wav")[:40000]
    wav = save_wav(tmp_path / "speech.wav", speech)
    for pack in (our_pack[0], sample_data / "dh_live/web_assets/assets1"):
        out = tmp_path / f"out_{pack.name}.mp4"
        if pack == our_pack[0]:  # the script, once
            proc = subprocess.run([sys.executable, "demo_mini.py", str(pack), str(wav), str(out), "--ckpt",
                                   str(random_ckpt), "--quiet"], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr[-2000:]
        else:
            stats = synthesize(pack, wav, out, render_checkpoint=random_ckpt, progress=False)
            assert stats.frames == 63 and stats.rtf > 0
        assert abs(count_frames(out) - 62.5) <= 1
        assert probe_video(out).has_audio
        assert len(read_video(out)) == count_frames(out)
    # the mouth follows the speech: the GL mouth interior (teeth + cavity) opens and closes
    from talkingface.audio_model import AudioModel

    bs = AudioModel(find_audio_checkpoint("blendshape")).interface_wav(speech)
    pack = load_asset_pack(our_pack[0])
    model = RenderModelMini(random_ckpt)
    try:
        model.reset_charactor(pack)
        interior = []
        for i in range(0, len(bs), 3):
            gl = model.render_gl(loop_index(i, len(pack)), bs[i]).astype(int)
            inside = ((gl[..., 2] == 0) | (gl[..., 2] == 255)) & (gl[..., 0] < 60)
            interior.append(int(inside.sum()))
    finally:
        model.close()
    assert max(interior) - min(interior) > 20, interior


def test_demo_bad_input_exit_2(tmp_path):
    (tmp_path / "speech.wav").write_bytes(b"")
    for cmd in (["demo_mini.py", str(tmp_path / "no_pack"), str(tmp_path / "speech.wav"), str(tmp_path / "o.mp4")],):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr[-1000:]
        assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert not (tmp_path / "o.mp4").exists()
