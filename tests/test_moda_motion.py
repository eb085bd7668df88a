"""Motion metrics of the MODA evaluation on synthetic sequences with known answers."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from talkingface.eval.motion import blink_stats, dense_regions, eye_aspect_ratio, pose_diversity, pose_spread
from talkingface.moda_geometry import canonical_mean_face


def _blinking_face(n=500, every=50, length=4):
    face = canonical_mean_face()
    seq = np.repeat(face[None], n, axis=0)
    rng = np.random.default_rng(0)
    seq += rng.normal(0, 0.05, seq.shape)  # tracker noise
    upper = [159, 158, 160, 386, 385, 387]
    lower = [145, 153, 144, 374, 380, 373]
    starts = list(range(10, n - length, every))
    for s in starts:
        seq[s:s + length, upper] = seq[s:s + length, lower] - [0, 0.5, 0]  # lids closed
    return seq, len(starts)


def test_blink_rate_of_a_synthetic_blink_train():
    seq, k = _blinking_face()
    stats = blink_stats(seq)
    assert stats["n_blinks"] == k
    assert np.isclose(stats["blinks_per_min"], k / (500 / 25 / 60))
    assert stats["blink_frames"] == 4
    still = np.repeat(canonical_mean_face()[None], 100, axis=0)
    assert blink_stats(still)["n_blinks"] == 0 and eye_aspect_ratio(still).std() == 0


def test_pose_statistics_and_regions():
    t = np.arange(100)
    a = np.stack([3 * np.sin(t / 10), np.zeros(100), np.ones(100)], 1)
    assert np.isclose(pose_spread(a)["yaw"], a[:, 0].std()) and pose_spread(a)["roll"] == 0
    b = a + [1.0, 0.0, 0.0]
    assert pose_diversity([a, a]) == 0 and np.isclose(pose_diversity([a, b]), 1.0)
    regions = dense_regions()
    parts = np.concatenate([regions[k] for k in ("jaw", "cheeks", "nose", "forehead")])
    assert len(parts) == 376 and len(set(parts.tolist())) == 376


def test_eval_cli_needs_clips(repo_root):
    r = subprocess.run([sys.executable, "-m", "talkingface.eval", "moda"], capture_output=True, text=True,
                       cwd=repo_root)
    assert r.returncode == 2 and r.stderr.strip().startswith("error:")
