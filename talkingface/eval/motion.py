"""Motion statistics for MODA's one-to-many outputs: blinks, head-pose spread and diversity, and the
dense-face error of FaCo-Net against its two baselines.

- Eye aspect ratio (EAR) per eye: the mean of 3 vertical eyelid distances (159-145, 158-153,
  160-144; mirrored 386-374, 385-380, 387-373) over the corner distance (33-133 / 362-263), averaged
  over both eyes. A blink is a run of 2..12 frames with EAR below median - 3 MAD (MAD floored at
  2 % of the median so a frozen eye gives no blinks).
- Head pose: per-axis std (deg) of yaw, pitch, roll; diversity across samples = mean over sample
  pairs of the per-frame RMS difference of (yaw, pitch, roll), in degrees.
- Dense error (canonical px, Euclidean per point) on the 376 non-semantic points split into jaw,
  cheeks, nose and forehead regions of the canonical mean face.
"""
from __future__ import annotations

from itertools import combinations
from typing import Dict, Sequence

import numpy as np
import torch

from talkingface.moda_geometry import LEFT_EYEBROW, NON_SEMANTIC, RIGHT_EYEBROW, canonical_mean_face

EAR_PAIRS = (((159, 145), (158, 153), (160, 144), (33, 133)), ((386, 374), (385, 380), (387, 373), (362, 263)))
FPS = 25.0


def eye_aspect_ratio(points: np.ndarray) -> np.ndarray:
    """Meshes (N, 478, >=2) in any units -> (N,) EAR averaged over both eyes."""
    p = np.asarray(points, np.float64)[..., :2]
    out = []
    for eye in EAR_PAIRS:
        vert = np.mean([np.linalg.norm(p[:, a] - p[:, b], axis=-1) for a, b in eye[:3]], axis=0)
        horiz = np.linalg.norm(p[:, eye[3][0]] - p[:, eye[3][1]], axis=-1)
        out.append(vert / np.maximum(horiz, 1e-9))
    return np.mean(out, axis=0)


def blinks(ear: np.ndarray, min_len: int = 2, max_len: int = 12) -> list:
    """Blink events of an EAR series: list of (start, length) runs below median - 3 MAD."""
    ear = np.asarray(ear, np.float64)
    med = np.median(ear)
    mad = max(np.median(np.abs(ear - med)), 0.02 * med)
    low = ear < med - 3 * mad
    events, start = [], None
    for i, v in enumerate(np.append(low, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if min_len <= i - start <= max_len:
                events.append((start, i - start))
            start = None
    return events


def blink_stats(points: np.ndarray, fps: float = FPS) -> Dict[str, float]:
    """Blink rate (per minute), mean blink duration (frames), EAR std of meshes (N, 478, >=2)."""
    ear = eye_aspect_ratio(points)
    ev = blinks(ear)
    minutes = len(ear) / fps / 60.0
    return {"blinks_per_min": len(ev) / minutes if minutes > 0 else float("nan"),
            "blink_frames": float(np.mean([n for _, n in ev])) if ev else float("nan"),
            "ear_std": float(ear.std()), "n_blinks": len(ev)}


def pose_spread(head7: np.ndarray) -> Dict[str, float]:
    """Per-axis std of yaw, pitch, roll (deg) of one sequence (N, >=3)."""
    h = np.asarray(head7, np.float64)
    return {axis: float(h[:, i].std()) for i, axis in enumerate(("yaw", "pitch", "roll"))}


def pose_diversity(samples: Sequence[np.ndarray]) -> float:
    """Mean over sample pairs of the per-frame RMS difference of (yaw, pitch, roll) in degrees."""
    pairs = list(combinations(range(len(samples)), 2))
    if not pairs:
        return float("nan")
    vals = []
    for a, b in pairs:
        d = np.asarray(samples[a])[:, :3] - np.asarray(samples[b])[:, :3]
        vals.append(float(np.sqrt((d ** 2).sum(-1).mean())))
    return float(np.mean(vals))


def dense_regions() -> Dict[str, np.ndarray]:
    """The 376 non-semantic ids split by position on the canonical mean face."""
    m = canonical_mean_face()
    ids = np.array(NON_SEMANTIC)
    y, x = m[ids, 1], m[ids, 0]
    brow = m[LEFT_EYEBROW + RIGHT_EYEBROW, 1].mean()
    mouth = m[[61, 291], 1].mean()
    forehead = y < brow
    jaw = y > mouth
    nose = ~forehead & ~jaw & (np.abs(x - m[168, 0]) < 25)
    cheeks = ~forehead & ~jaw & ~nose
    return {"jaw": ids[jaw], "cheeks": ids[cheeks], "nose": ids[nose], "forehead": ids[forehead],
            "all376": ids}


def _region_errors(pred: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
    p, g = pred.reshape(len(pred), 478, 3), gt.reshape(len(gt), 478, 3)
    return {k: float(np.linalg.norm(p[:, ids] - g[:, ids], axis=-1).mean()) for k, ids in dense_regions().items()}


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float = 10.0) -> np.ndarray:
    """Ridge regression weights (D+1, K) of y (N, K) on x (N, D) with a bias column."""
    xb = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    reg = lam * np.eye(xb.shape[1])
    reg[-1, -1] = 0
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ y.astype(np.float64))


@torch.no_grad()
def dense_error_table(faco, train: Dict[str, np.ndarray], val: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
    """Dense error (canonical px) by region on ``val`` rows (lip, eye, dense deltas, subject) of
    FaCo, of the mean mesh with lips and eyes pasted in (non-semantic delta 0) and of a ridge
    regression from (lip, eye) to dense fitted on ``train``."""
    faco.eval()
    pred = faco(*(torch.from_numpy(val[k]) for k in ("lip", "eye", "subject"))).numpy()
    x_tr = np.hstack([train["lip"], train["eye"]])
    w = ridge_fit(x_tr, train["dense"])
    x_va = np.hstack([val["lip"], val["eye"], np.ones((len(val["lip"]), 1))])
    return {"faco": _region_errors(pred, val["dense"]),
            "mean+paste": _region_errors(np.zeros_like(val["dense"]), val["dense"]),
            "ridge": _region_errors(x_va @ w, val["dense"])}
