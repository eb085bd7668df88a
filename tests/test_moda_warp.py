"""demo_moda.py --renderer warp: one photo + speech -> a talking, blinking, nodding face, no per-person training.

The photo is the built-in presenter video's first frame; the speech is the first 2 s of the built-in English
sample. The run is a real subprocess (the script's own error handling and output writing).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkingface.config.paths import SAMPLE_AVATAR_VIDEO, SAMPLE_SPEECH_EN
from talkingface.util.media import load_audio, probe_video, read_video, save_wav

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 2


def _run(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(ROOT / "demo_moda.py"), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("moda_warp")
    photo = d / "photo.png"
    frame = read_video(SAMPLE_AVATAR_VIDEO, max_frames=1)[0]
    cv2.imwrite(str(photo), frame)
    wav = save_wav(d / "speech.wav", load_audio(SAMPLE_SPEECH_EN)[: SECONDS * 16000])
    return d, photo, wav, frame


@pytest.fixture(scope="module")
def rendered(inputs):
    d, photo, wav, frame = inputs
    out = d / "out.mp4"
    res = _run("--renderer", "warp", str(photo), str(wav), str(out), "--lip_gain", "2")
    if res.returncode != 0 and "EGL" in res.stderr:
        pytest.skip(f"no headless OpenGL here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    return out, frame


def test_warp_writes_every_frame_with_audio(rendered):
    out, frame = rendered
    info = probe_video(out)
    assert info.has_audio
    frames = read_video(out)
    assert len(frames) == 25 * SECONDS
    assert frames[0].shape == frame.shape


def test_warp_moves_head_eyes_and_mouth(rendered):
    from talkingface.mediapipe_utils import FaceLandmarker

    out, frame = rendered
    frames = np.stack(read_video(out)).astype(np.float32)
    with FaceLandmarker(static_image_mode=True) as mesh:
        src = mesh(frame)
    assert src is not None
    x0, y0 = src[:, :2].min(0).astype(int)
    x1, y1 = src[:, :2].max(0).astype(int)
    mx0, my0 = src[[61, 0], :2].min(0).astype(int) - 5
    mx1, my1 = src[[291, 17], :2].max(0).astype(int) + 5
    face = frames[:, y0:y1, x0:x1]
    mouth = frames[:, my0:my1, mx0:mx1]
    # the face changes over time (head motion moves every pixel of it a little)
    face_change = np.abs(face[1:] - face[:-1]).mean((1, 2, 3))
    assert face_change.mean() > 0.3
    # the mouth changes more than the face as a whole, and mostly while there is speech
    mouth_change = np.abs(mouth - mouth[:1]).mean((1, 2, 3))
    assert mouth_change.max() > 8.0
    # far corners of the frame (background) stay put, up to the codec's noise
    corner = frames[:, :40, :40]
    assert np.abs(corner - frame[:40, :40].astype(np.float32)).mean((1, 2, 3)).max() < 3.0
    # landmarks of the output: the inner lips open and the head turns
    with FaceLandmarker(static_image_mode=True) as mesh:
        lms = [mesh(f.astype(np.uint8)) for f in frames]
    lms = np.stack([lm for lm in lms if lm is not None])
    assert len(lms) >= 40
    gap = np.linalg.norm(lms[:, 14, :2] - lms[:, 13, :2], axis=1)
    assert gap.max() - gap.min() > 2.0
    nose = lms[:, 1, :2]
    assert np.ptp(nose, axis=0).max() > 1.0


def test_photo_without_a_face_is_refused(inputs):
    d = inputs[0]
    blank = d / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 128, np.uint8))
    out = d / "blank.mp4"
    res = _run("--renderer", "warp", str(blank), str(inputs[2]), str(out))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no face" in lines[0]
    assert not out.exists() and not list(d.glob(".tmp_*"))


def test_dinet_mouth_paints_only_the_mouth(inputs, rendered):
    """--mouth dinet: DINet_mini paints the opening over the cavity; the rest of the frame is the cavity
    run's, and the painted opening is brighter than the dark cavity (teeth)."""
    from talkingface.mediapipe_utils import FaceLandmarker

    d, photo, wav, frame = inputs
    out = d / "dinet.mp4"
    res = _run("--renderer", "warp", str(photo), str(wav), str(out), "--lip_gain", "2", "--mouth", "dinet")
    assert res.returncode == 0, res.stderr
    a = np.stack(read_video(rendered[0])).astype(np.float32)
    b = np.stack(read_video(out)).astype(np.float32)
    assert a.shape == b.shape
    with FaceLandmarker(static_image_mode=True) as mesh:
        src = mesh(frame)
    mx0, my0 = src[[61, 0], :2].min(0).astype(int) - 30
    mx1, my1 = src[[291, 17], :2].max(0).astype(int) + 30
    outside = np.ones(a.shape[1:3], bool)
    outside[my0:my1, mx0:mx1] = False
    assert np.abs(a[:, outside] - b[:, outside]).mean() < 0.5
    diff = np.abs(a[:, my0:my1, mx0:mx1] - b[:, my0:my1, mx0:mx1]).mean((1, 2, 3))
    assert diff.max() > 1.0
    k = int(np.argmax(diff))
    assert b[k, my0:my1, mx0:mx1].mean() > a[k, my0:my1, mx0:mx1].mean()
