"""RenderModel on real avatars (both keypoint forms), demo.py end to end with the original's
published audio model, and the real-time loop (file source at real-time pace, mp4 sink)."""
from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.errors import UserInputError
from talkingface.models.DINet import DINet_five_Ref
from talkingface.render_model import RenderModel
from talkingface.util.media import count_frames, load_audio, probe_video, read_video, save_wav

FACE = 96  # a small face crop keeps the 9.4 M-parameter network fast enough for tests


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_render_ckpt(tmp_path_factory) -> Path:
    """A randomly initialised DINet_five_Ref saved like the trainer does (plain dict + card)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("render") / "render.pth"
    torch.save(DINet_five_Ref(6, 30).state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"face_size": FACE}))
    return path


@pytest.fixture(scope="module")
def forward_only_avatar(dhlive_avatar_dir, tmp_path_factory) -> Path:
    """The same avatar with only the N forward keypoint rows, like the original's video_data/test."""
    out = tmp_path_factory.mktemp("avatar_fwd")
    os.symlink(dhlive_avatar_dir / "circle.mp4", out / "circle.mp4")
    with open(dhlive_avatar_dir / "keypoint_rotate.pkl", "rb") as fh:
        kps = pickle.load(fh)
    with open(out / "keypoint_rotate.pkl", "wb") as fh:
        pickle.dump(kps[: len(kps) // 2], fh)
    return out


@pytest.fixture(scope="module")
def original_audio_model(sample_data, tmp_path_factory):
    """The original's published audio model + its mouth PCA converted to our .npz basis."""
    from talkingface.mouth_basis import read_original_pca_pkl

    ckpt = sample_data / "dh_live/checkpoint/audio.pkl"
    basis = tmp_path_factory.mktemp("basis") / "pixel_basis.npz"
    with warnings.catch_warnings():  # sklearn notes the pickle's older version; the arrays are what we read
        warnings.simplefilter("ignore")
        read_original_pca_pkl(sample_data / "dh_live/data/pca.pkl", allow_pickle=True).save(basis)
    return ckpt, basis


def _mouth(open_px: int) -> np.ndarray:
    mouth = np.full((15, 30, 3), 150, np.uint8)
    mouth[7 - open_px // 2:8 + open_px // 2, 6:24] = 40
    return mouth


def test_render_model_both_keypoint_forms(dhlive_avatar_dir, forward_only_avatar, small_render_ckpt):
    source = read_video(dhlive_avatar_dir / "circle.mp4")
    outputs = {}
    for name, avatar in (("2N", dhlive_avatar_dir), ("N", forward_only_avatar)):
        model = RenderModel(device="cpu")
        model.loadModel(small_render_ckpt)
        assert model.face_size == FACE
        model.reset_charactor(avatar)
        assert model.num_frames == len(source) == 150
        frames = [model.interface(_mouth(k % 6)) for k in range(2)]
        assert model.frame_index == 2
        outputs[name] = frames
        for k, frame in enumerate(frames):
            assert frame.shape == source[k].shape and frame.dtype == np.uint8
            box = model.boxes[k]
            # Outside the face crop the source pixels are untouched; inside, the jaw changed.
            assert np.array_equal(frame[:, : max(box.x0, 0)], source[k][:, : max(box.x0, 0)])
            assert np.abs(frame.astype(int) - source[k].astype(int)).sum() > 0
    # Forward-only keypoints give the same geometry as the full palindrome (up to the pose fit).
    diff = np.abs(outputs["2N"][0].astype(int) - outputs["N"][0].astype(int))
    assert diff.mean() < 1.0
    # The frame counter wraps around the loop.
    model.frame_index = model.num_frames - 1
    model.interface(_mouth(2))
    assert model.frame_index == 0


def test_original_forward_only_avatar(sample_data, small_render_ckpt):
    """The original's own prepared avatar: 306-frame palindrome, (153, 478, 3) keypoints."""
    model = RenderModel(device="cpu")
    model.loadModel(small_render_ckpt)
    model.reset_charactor(sample_data / "dh_live/video_data/test")
    assert model.num_frames == 306
    model.frame_index = 200  # second half: keypoints mirrored from frame 105
    frame = model.interface(_mouth(4))
    assert frame.shape == model.frames[200].shape
    box = model.boxes[200]
    assert box == model.boxes[105]


def test_render_model_errors(tmp_path, small_render_ckpt):
    model = RenderModel(device="cpu")
    with pytest.raises(UserInputError, match="render.pth"):
        model.loadModel(tmp_path / "none.pth")
    model.loadModel(small_render_ckpt)
    with pytest.raises(UserInputError, match="data_preparation.py"):
        model.reset_charactor(tmp_path)


def test_demo_end_to_end(dhlive_avatar_dir, small_render_ckpt, original_audio_model, sample_data, tmp_path):
    import demo

    ckpt, basis = original_audio_model
    wav = save_wav(tmp_path / "speech.wav", load_audio(sample_data / "speech/arctic_a0007.wav")[:16000])
    out = tmp_path / "out.mp4"
    assert demo.main([str(dhlive_avatar_dir), str(wav), str(out), "--ckpt", str(small_render_ckpt),
                      "--audio_ckpt", str(ckpt), "--basis", str(basis), "--device", "cpu"]) == 0
    assert count_frames(out) == 25
    assert probe_video(out).has_audio
    with pytest.raises(SystemExit) as exit_info:
        demo.run_cli(demo.main, [str(dhlive_avatar_dir), str(wav), str(tmp_path / "x.mp4"),
                                 "--ckpt", str(tmp_path / "missing.pth"), "--audio_ckpt", str(ckpt)])
    assert exit_info.value.code == 2
    assert not (tmp_path / "x.mp4").exists()


def test_realtime_loop_file_source(dhlive_avatar_dir, small_render_ckpt, original_audio_model, sample_data, tmp_path):
    from talkingface import dhlive_pipeline, realtime

    ckpt, basis = original_audio_model
    wav = save_wav(tmp_path / "speech.wav", load_audio(sample_data / "speech/arctic_a0007.wav")[:8000])
    renderer = dhlive_pipeline.StreamRenderer(dhlive_avatar_dir, small_render_ckpt, ckpt, basis, device="cpu")
    source = realtime.FileAudioSource(wav)
    out = tmp_path / "live.mp4"
    sink = realtime.Mp4Sink(out, audio=source.audio)
    stats = realtime.run_stream(source, renderer, sink)
    sink.close()
    assert stats.frames == source.num_blocks == 13
    assert count_frames(out) == 13 and probe_video(out).has_audio
    summary = stats.summary()
    assert summary["latency_ms_median"] >= summary["algorithmic_latency_ms"] > 0
    assert not list(tmp_path.glob(".tmp_live_*"))


def test_microphone_unavailable_is_a_user_error():
    from talkingface import realtime

    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        with pytest.raises(UserInputError, match="--audio"):
            realtime.MicrophoneAudioSource()
    else:
        pytest.skip("sounddevice with PortAudio is installed here")


def test_demo_avatar_mini_file_source(sample_data, tmp_path):
    """demo_avatar.py --renderer mini on the original's asset pack, 1 s of speech at real-time pace."""
    from talkingface.errors import UserInputError
    from talkingface.models.DINet_mini import DINet_mini
    from talkingface.audio_loader import find_audio_checkpoint

    try:
        find_audio_checkpoint("blendshape")
    except UserInputError:
        pytest.skip("no shipped blendshape audio model under checkpoint/")
    import demo_avatar

    ckpt = tmp_path / "dinet_mini.pth"
    torch.manual_seed(0)
    torch.save({"state_dict": {"net_g": DINet_mini().state_dict()}}, ckpt)
    wav = save_wav(tmp_path / "speech.wav", load_audio(sample_data / "speech/arctic_a0007.wav")[:16000])
    out, report = tmp_path / "live.mp4", tmp_path / "live.json"
    assert demo_avatar.main(["--audio", str(wav), "--renderer", "mini", "--avatar",
                             str(sample_data / "dh_live/web_assets/assets1"), "--ckpt", str(ckpt),
                             "--out", str(out), "--json", str(report), "--device", "cpu"]) == 0
    summary = json.loads(report.read_text())
    assert summary["frames"] == 25 and count_frames(out) == 25 and probe_video(out).has_audio
    assert summary["latency_ms_median"] >= summary["algorithmic_latency_ms"] > 0
    assert summary["wall_seconds"] >= 0.95  # paced by the clock, not faster than the audio


def test_demo_avatar_needs_display_or_out(tmp_path, monkeypatch):
    import demo_avatar

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    wav = save_wav(tmp_path / "speech.wav", np.zeros(1600, np.float32))
    with pytest.raises(UserInputError, match="--out"):
        demo_avatar.main(["--audio", str(wav), "--renderer", "mini"])
