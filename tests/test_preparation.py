"""Avatar and training-data preparation on real videos, and the scripts' error contract."""
import os
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest

from talkingface.mediapipe_utils import detect_faces
from talkingface.preparation import PrepConfig, prepare_dhlive_avatar, prepare_training_face
from talkingface.util import media
from talkingface.utils import INDEX_LIPS, draw_landmarks, main_keypoints

PY = sys.executable


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
