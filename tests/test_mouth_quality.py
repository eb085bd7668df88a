"""Mouth sharpness and teeth visibility (talkingface.eval.mouth_quality) on real frames.

A MEAD smile (teeth in every open frame) against a Mandarin speaker whose open mouth is a dark
cavity (no teeth seen in its crops), both checked by eye on the contact sheets the script writes.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from talkingface.eval import mouth_quality as mq
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.util.media import read_video

N_FRAMES = 40


def _clip(sample_data, *parts):
    frames = read_video(sample_data.joinpath(*parts), max_frames=N_FRAMES)
    return frames, landmarks_for_video(frames, progress=False)


@pytest.fixture(scope="module")
def smile(sample_data):
    return _clip(sample_data, "av", "mead", "W011_front_happy_level3_001.mp4")


@pytest.fixture(scope="module")
def dark_mouth(sample_data):
    return _clip(sample_data, "av", "misc", "d20_zh.mp4")


def test_teeth_seen_in_a_smile_not_in_a_dark_open_mouth(smile, dark_mouth):
    s_smile = mq.summarize(mq.measure_frames(*smile))
    s_dark = mq.summarize(mq.measure_frames(*dark_mouth))
    assert s_smile["frames"] == N_FRAMES and s_smile["open_frames"] >= 30
    assert s_smile["teeth_rate"] >= 0.9
    assert s_dark["open_frames"] >= 5
    assert s_dark["teeth_rate"] <= 0.1


def test_teeth_pixels_lie_inside_the_opening(smile):
    frames, lm = smile
    i = int(np.argmax(mq.mouth_opening(lm)))
    crop, pts = mq.mouth_crop(frames[i], lm[i])
    teeth, inner = mq.teeth_mask(crop, pts)
    assert crop.shape == (mq.DEFAULT.crop_size, mq.DEFAULT.crop_size, 3)
    assert teeth.any() and not (teeth & ~inner).any()
    # the teeth are whiter than the lips: lower saturation than the crop's median
    sat = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)[..., 1]
    assert np.median(sat[teeth]) < np.median(sat)


def test_crop_is_the_same_part_of_the_face_at_any_resolution(smile):
    frames, lm = smile
    big = cv2.resize(frames[5], None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    crop, pts = mq.mouth_crop(frames[5], lm[5])
    crop2, pts2 = mq.mouth_crop(big, lm[5] * 2.0)
    np.testing.assert_allclose(pts, pts2, atol=1e-6)
    assert np.abs(crop.astype(float) - crop2.astype(float)).mean() < 6.0


def test_sharpness_ratio_drops_for_a_blurred_mouth(smile):
    frames, lm = smile
    real = mq.summarize(mq.measure_frames(frames, lm))
    blurred = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames]
    soft = mq.summarize(mq.measure_frames(blurred, lm))
    same = mq.compare(real, real)
    assert same["sharpness_ratio"] == pytest.approx(1.0)
    assert same["teeth_ratio"] == pytest.approx(1.0)
    out = mq.compare(soft, real)
    assert 0.0 < out["sharpness_ratio"] < 0.5


def test_sharpness_counts_the_mouth_not_the_cheeks(smile):
    frames, lm = smile
    crop, pts = mq.mouth_crop(frames[3], lm[3])
    region = mq.mouth_region(pts, crop.shape[0])
    assert 0.1 < region.mean() < 0.8
    spoiled = crop.copy()
    spoiled[:, :6] = 0  # a hard-edged artefact at the crop's side, away from the lips
    spoiled[:, 6:10] = 255
    assert not region[:, :12].any()
    assert mq.sharpness(spoiled, region) == pytest.approx(mq.sharpness(crop, region))
    assert mq.sharpness(spoiled) > mq.sharpness(crop)


def test_frames_without_a_face_are_skipped(dark_mouth):
    frames, lm = dark_mouth
    lm = lm.copy()
    lm[:10] = np.nan
    m = mq.measure_frames(frames, lm)
    assert np.isnan(m.sharpness[:10]).all() and np.isfinite(m.sharpness[10:]).all()
    assert mq.summarize(m)["frames"] == N_FRAMES - 10


def test_script(sample_data, tmp_path, capsys):
    clip = sample_data / "av" / "mead" / "W011_front_happy_level3_001.mp4"
    with pytest.raises(SystemExit) as exc:
        mq.run_cli(mq.main, [str(clip), "--gt", str(clip), "--png", str(tmp_path), "--json", str(tmp_path / "q.json")])
    assert exc.value.code == 0
    result = json.loads((tmp_path / "q.json").read_text())
    assert result["compare"]["sharpness_ratio"] == pytest.approx(1.0)
    assert result["real"]["teeth_rate"] > 0.9
    assert (tmp_path / f"{clip.stem}.real.teeth.png").is_file()
    with pytest.raises(SystemExit) as exc:
        mq.run_cli(mq.main, [str(tmp_path / "missing.mp4")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: video not found")


def test_selfrecon_reports_mouth_quality(sample_data, smile):
    """The renderer self-reconstruction scores every method's crops against the real ones (GL + network)."""
    from talkingface.config.paths import DINET_MINI_CHECKPOINT
    from talkingface.eval.mini_selfrecon import METHODS, format_table, selfrecon_clip, summarize

    frames, lm = smile
    clip = sample_data / "av" / "mead" / "W011_front_happy_level3_001.mp4"
    r = selfrecon_clip(clip, DINET_MINI_CHECKPOINT, max_targets=3, mosaic_rows=0, landmarks=lm)
    q = r["quality"]
    assert set(q) == set(METHODS) | {"real"}
    assert q["real"]["frames"] == 3 and q["real"]["open_frames"] == 3 and q["real"]["teeth_rate"] == 1.0
    for name in METHODS:
        assert q[name]["sharpness_ratio"] > 0 and 0.0 <= q[name]["teeth_rate"] <= 1.0
    assert "sharpness / real" in format_table([r], summarize([r]))
