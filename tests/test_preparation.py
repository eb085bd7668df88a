"""Avatar and training-data preparation on real videos, and the scripts' error contract."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkingface.mediapipe_utils import detect_faces
from talkingface.preparation import PrepConfig, prepare_dhlive_avatar, prepare_training_face
from talkingface.util import media
from talkingface.utils import INDEX_LIPS, draw_landmarks, main_keypoints

PY = sys.executable
PY_SCRIPT_DIR = Path(__file__).resolve().parents[1]


def test_dhlive_avatar_from_grid(dhlive_avatar_dir, tmp_path):
    assert media.count_frames(dhlive_avatar_dir / "circle.mp4") == 150
    with open(dhlive_avatar_dir / "keypoint_rotate.pkl", "rb") as fh:
        kps = pickle.load(fh)
    assert kps.shape == (150, 478, 3) and kps.dtype == np.float64
    np.testing.assert_allclose(kps[149], kps[0])  # palindrome
    frame0 = media.read_video(dhlive_avatar_dir / "circle.mp4", max_frames=1)[0]
    face = detect_faces(frame0)[0]
    x0, y0, x1, y1 = face.box
    inside = ((kps[0, :, 0] > x0 - 10) & (kps[0, :, 0] < x1 + 10) & (kps[0, :, 1] > y0 - 30) & (kps[0, :, 1] < y1 + 10))
    assert inside.mean() > 0.95
    cv2.imwrite(str(tmp_path / "frame0_landmarks.png"), draw_landmarks(frame0, kps[0]))


def test_30fps_source_gives_25fps_avatar(sample_data, tmp_path):
    out = prepare_dhlive_avatar(sample_data / "dh_live/video_data/000001/video.mp4", tmp_path / "a",
                                PrepConfig(progress=False))
    n = media.count_frames(out / "circle.mp4")
    assert abs(n // 2 - 105) <= 1 and n % 2 == 0
    assert media.probe_video(out / "circle.mp4").source_fps == pytest.approx(25.0)


def test_mini_avatar(mini_avatar_dir):
    assert media.count_frames(mini_avatar_dir / "data/processed.mp4") == 179
    with open(mini_avatar_dir / "data/processed.pkl", "rb") as fh:
        kps = pickle.load(fh)
    assert kps.shape == (179, 478, 3)
    # tracked every frame: the landmarks follow the (slightly moving) head, no frozen rows
    assert np.abs(np.diff(kps[:, :, :2], axis=0)).sum(axis=(1, 2)).min() > 0


def test_training_face_folder_keeps_keypoints_aligned(sample_data, tmp_path):
    out = prepare_training_face(sample_data / "av/grid/bbaf2n.mpg", tmp_path / "bbaf2n", PrepConfig(progress=False))
    images = sorted((out / "image").glob("*.png"))
    assert len(images) == 75 and images[0].name == "000001.png"
    with open(out / "keypoint_rotate.pkl", "rb") as fh:
        kps = pickle.load(fh)
    with open(out / "face_mat_mask.pkl", "rb") as fh:
        mats, mask_face = pickle.load(fh)
    assert kps.shape == (75, 478, 3) and mats.shape == (75, 4, 4) and mask_face.shape == (141, 3)
    # the crop really contains the face the keypoints describe: re-detect on the crop and compare lips
    from talkingface.mediapipe_utils import FaceLandmarker

    with FaceLandmarker(static_image_mode=True) as mesh:
        lm = mesh(cv2.imread(str(images[10])))
    err = np.abs(main_keypoints(lm)[INDEX_LIPS, :2] - main_keypoints(kps[10])[INDEX_LIPS, :2]).mean()
    assert err < 4.0  # pixels of the 512 crop


def _run(args, cwd):
    env = dict(os.environ)
    return subprocess.run([PY, *args], cwd=cwd, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def bad_inputs(sample_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "text.mp4").write_text("not a video at all\n")
    media.write_video(d / "solid.mp4", [np.full((240, 320, 3), (40, 120, 200), np.uint8)] * 40)
    media.write_video(d / "short.mp4", media.read_video(sample_data / "av/grid/bbaf2n.mpg", max_frames=12))
    return d


@pytest.mark.parametrize("script", ["data_preparation.py", "data_preparation_mini.py"])
@pytest.mark.parametrize("case", ["missing", "text", "solid", "short", "unwritable"])
def test_bad_input_exits_2_with_one_line(repo_root, bad_inputs, sample_data, script, case):
    video = {"missing": bad_inputs / "missing.mp4", "text": bad_inputs / "text.mp4",
             "solid": bad_inputs / "solid.mp4", "short": bad_inputs / "short.mp4",
             "unwritable": sample_data / "av/grid/bbaf2n.mpg"}[case]
    out = (bad_inputs / "text.mp4" / "out") if case == "unwritable" else bad_inputs / f"out_{case}_{script}"
    proc = _run([str(repo_root / script), str(video), str(out)], cwd=bad_inputs)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not [p for p in bad_inputs.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize("script", ["data_preparation.py", "data_preparation_mini.py",
                                    "train/data_preparation_face.py"])
def test_scripts_have_help(repo_root, script):
    proc = _run([str(repo_root / script), "--help"], cwd=repo_root)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower()


# ------------------------------------------------------------------ tight crops, head turns, jump cuts
def _ffmpeg_crop(src, dst, w, h, x, y):
    proc = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-i", str(src), "-vf",
                           f"crop={w}:{h}:{x}:{y}", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(dst)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-500:]
    return dst


@pytest.fixture(scope="module")
def tight_clip(sample_data, tmp_path_factory):
    """The GRID clip cut by ffmpeg so that the chin touches the bottom edge (a tight face crop)."""
    from talkingface.mediapipe_utils import landmarks_for_video

    src = sample_data / "av/grid/bbaf2n.mpg"
    lm = landmarks_for_video(media.read_video(src, max_frames=50), progress=False)
    chin = int(lm[:, 152, 1].min())  # MediaPipe 152: the chin's lowest point
    return _ffmpeg_crop(src, tmp_path_factory.mktemp("tight") / "tight.mp4", 360, chin - chin % 2, 0, 0)


def test_tight_crop_is_padded_not_refused(tight_clip, sample_data, tmp_path, caplog):
    import gzip
    import json

    from talkingface.data.mouth_crop import standard_image
    from talkingface.preparation import prepare_mini_avatar
    from talkingface.mini_pack import write_avatar_pack

    caplog.set_level("INFO")
    out = prepare_mini_avatar(tight_clip, tmp_path / "tight", PrepConfig(progress=False, max_seconds=1.6))
    write_avatar_pack(out)
    with gzip.open(out / "assets/combined_data.json.gz", "rt") as fh:
        rects = np.array([f["rect"] for f in json.load(fh)["json_data"]])
    frames = media.read_video(out / "assets/01.mp4")
    h = frames[0].shape[0]
    assert (rects[:, 3] > h).any()  # the mouth crop leaves the frame at the bottom ...
    assert "padded" in caplog.text  # ... and the log says it was padded
    i = int(np.argmax(rects[:, 3]))
    crop = standard_image(frames[i], rects[i])
    assert crop.shape == (128, 128, 3)
    # the padded band repeats the frame's last row (no black bar)
    inside = int(round((h - rects[i, 1]) * 128 / (rects[i, 3] - rects[i, 1])))
    assert np.abs(crop[inside + 2:].astype(int) - crop[inside + 1:inside + 2].astype(int)).mean() < 3.0
    # synthesis: the pack loads and a rendered frame is pasted back into the original size, mouth opened
    from talkingface.eval.avatar_drive import drive_pack

    res = drive_pack(out, sample_data / "av/grid/swiz3n.mpg", max_frames=40)
    assert res.detected == 1.0 and res.r_audio > 0.6, (res.detected, res.r_audio)


def test_mouth_truly_out_of_frame_is_refused(sample_data, tmp_path):
    from talkingface.mediapipe_utils import landmarks_for_video

    src = sample_data / "av/grid/bbaf2n.mpg"
    lm = landmarks_for_video(media.read_video(src, max_frames=30), progress=False)
    lip_mid = int(lm[:, 13, 1].mean())  # inner upper lip: the cut goes through the mouth
    clip = _ffmpeg_crop(src, tmp_path / "cut.mp4", 360, lip_mid - lip_mid % 2, 0, 0)
    proc = _run([str(PY_SCRIPT_DIR / "data_preparation_mini.py"), str(clip), str(tmp_path / "out")], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and len(proc.stderr.splitlines()) == 1
    assert "outside the frame" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_head_yaw_is_measured(grid_landmarks):
    from talkingface.run_utils import head_yaw

    assert abs(float(np.median(head_yaw(grid_landmarks)))) < 10.0  # GRID: frontal


def test_three_quarter_view_accepted_up_to_limit_and_refused_beyond(sample_data):
    from talkingface.errors import UserInputError
    from talkingface.mediapipe_utils import FaceRules, track_avatar_face

    frames = media.read_video(sample_data / "av/voxceleb2/Input_00010.mp4", max_frames=40)
    track = track_avatar_face(frames, min_frames=25, progress=False)  # a ~35 deg 3/4 view: accepted
    assert track.stop - track.start >= 25
    assert 25.0 < float(np.median(np.abs(track.yaw))) < 45.0
    with pytest.raises(UserInputError, match=r"measured yaw 3\d deg.*up to 20 deg"):
        track_avatar_face(frames, FaceRules(max_yaw=20.0), min_frames=25, progress=False)
    # training targets take any turn
    assert len(track_avatar_face(frames, FaceRules(max_yaw=None), min_frames=40, progress=False).landmarks) == 40


def test_jump_cut_keeps_the_longest_stretch(sample_data, tmp_path, caplog):
    from talkingface.preparation import prepare_mini_avatar

    frames = media.read_video(sample_data / "av/grid/bbaf2n.mpg")
    shift = np.float32([[1, 0, 110], [0, 1, 0]])  # the same footage re-framed: an edited interview's cut
    moved = [cv2.warpAffine(f, shift, (f.shape[1], f.shape[0]), borderMode=cv2.BORDER_REPLICATE) for f in frames[30:]]
    clip = media.write_video(tmp_path / "cut.mp4", frames[:30] + moved)
    caplog.set_level("INFO")
    out = prepare_mini_avatar(clip, tmp_path / "avatar", PrepConfig(progress=False))
    assert media.count_frames(out / "data/processed.mp4") == 45
    assert "jump cuts at frames 30" in caplog.text and "using frames 30-74" in caplog.text


# ----------------------------------------------------------------------------- talking source videos
def test_talking_avatar_does_not_leak_its_mouth(sample_data, tmp_path, caplog):
    """A MEAD speaker (talking) as the avatar: detected, referenced from a closed-mouth frame, and the
    output's mouth follows the driving speech, not the avatar video's own mouth track."""
    from talkingface.eval.avatar_drive import drive_pack
    from talkingface.mini_pack import load_asset_pack, write_avatar_pack
    from talkingface.mediapipe_utils import load_keypoints
    from talkingface.preparation import mouth_activity, prepare_mini_avatar

    caplog.set_level("INFO")
    out = prepare_mini_avatar(sample_data / "av/mead/M030_front_neutral_level1_001.mp4", tmp_path / "talking",
                              PrepConfig(progress=False, max_seconds=2.4))
    activity = mouth_activity(load_keypoints(out / "data/processed.pkl"))
    assert activity.talking and "talking source video" in caplog.text
    write_avatar_pack(out)
    pack = load_asset_pack(out)
    assert pack.ref_frame == activity.closed_frame != 0
    assert activity.opening[pack.ref_frame] < 0.02 < float(np.median(activity.opening))
    res = drive_pack(out, sample_data / "av/grid/swiz3n.mpg", max_frames=60)
    assert np.nanstd(res.source) > 0.03  # the avatar's own mouth really moves
    # the output follows the speech; what the speech leaves unexplained does not follow the avatar's mouth
    assert res.r_audio > 0.7 and abs(res.r_leak) < 0.3, (res.r_audio, res.r_source, res.r_leak)


def test_resting_avatar_is_unchanged(mini_avatar_dir):
    from talkingface.mediapipe_utils import load_keypoints
    from talkingface.preparation import mouth_activity

    activity = mouth_activity(load_keypoints(mini_avatar_dir / "data/processed.pkl"))
    assert not activity.talking and activity.reference_frame == 0  # the pack keeps frame 0 as reference


def test_tight_crop_dhlive_avatar_renders_full_frames(tight_clip, tmp_path):
    """DINet path: the DH_live avatar of a tight crop prepares, and a rendered frame (random weights: the
    geometry is what is checked) comes back at the original size with the face crop padded, not refused."""
    import json

    import torch

    from talkingface.models.DINet import DINet_five_Ref
    from talkingface.render_model import RenderModel

    avatar = prepare_dhlive_avatar(tight_clip, tmp_path / "dh", PrepConfig(progress=False, max_seconds=1.2))
    torch.manual_seed(0)
    ckpt = tmp_path / "render.pth"
    torch.save(DINet_five_Ref(6, 30).state_dict(), ckpt)
    ckpt.with_suffix(".json").write_text(json.dumps({"face_size": 96}))
    model = RenderModel(device="cpu")
    model.loadModel(ckpt)
    model.reset_charactor(avatar)
    source = media.read_video(avatar / "circle.mp4", max_frames=1)[0]
    box = model.boxes[0]
    assert box.y0 + box.side > source.shape[0]  # the face crop leaves the frame at the bottom
    mouth = np.full((15, 30, 3), 150, np.uint8)
    frame = model.interface(mouth)
    assert frame.shape == source.shape and frame.dtype == np.uint8
