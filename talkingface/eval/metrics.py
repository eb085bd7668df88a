"""Lip-sync and mouth-image metrics of docs/EVALUATION.md §1, on face-mesh tracks and frames.

All landmark metrics are computed on 25 fps tracks (:mod:`talkingface.eval.tracking`):

- **mouth opening**: inner-lip gap (MediaPipe 13/14) / inter-ocular distance, per frame
  (:func:`talkingface.utils.mouth_opening`); Pearson r between generated and real at lag 0.
- **sync offset**: the lag k in [-max_lag, max_lag] maximising r between ``pred[t + k]`` and
  ``gt[t]``; k > 0 means the generated mouth moves k frames *later* than the real one.
- **amplitude**: std of generated / real mouth opening (1 = moves as much as the real mouth; a
  frozen mouth gives ~0, where r is only noise).
- **LMD**: mean Euclidean distance of the 40 lip landmarks (20 inner + 20 outer), both expressed in
  the real frame's DH_live face crop (:func:`talkingface.utils.crop_face`) scaled to 256 px.
- **mouth PSNR / SSIM**: on a square box around the real frame's outer lips (side = 1.5 x the mouth
  corner distance), both frames cropped with the same box and resized to 96 x 96. SSIM is the
  Gaussian-window SSIM of Wang et al. (2004) on luma; PSNR on BGR, 8-bit peak, capped at 100 dB.
- **detection failures**: frames in which the face mesh found no face (excluded from the above).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.tracking import VideoTrack, track_video
from talkingface.util.media import PathLike, iter_video_frames
from talkingface.utils import MP_LIPS_40, MP_LIPS_OUTER, crop_face, main_keypoints, mouth_opening, safe_crop

log = logging.getLogger(__name__)

CROP_SIZE = 256  # LMD unit: pixels of a 256-px face crop
MOUTH_SIZE = 96  # PSNR/SSIM are computed on mouth boxes resized to this
MOUTH_BOX_SCALE = 1.5  # mouth box side / mouth-corner distance
MAX_LAG = 5
PSNR_CAP = 100.0


@dataclass
class MetricRow:
    """One method's scores on one clip (NaN where a metric does not apply)."""

    method: str
    n_frames: int
    r: float  # Pearson r of mouth opening at lag 0
    offset: int  # best lag in frames (pred later than gt when > 0)
    r_offset: float  # r at that lag
    lmd: float  # px in a 256-px face crop
    amp: float = math.nan  # std of generated / real mouth opening (motion amplitude; 1 = as much as real)
    psnr: float = math.nan  # dB, mouth box
    ssim: float = math.nan
    fail_pred: int = 0  # frames without a detected face in the generated video
    fail_gt: int = 0  # ... in the real video
    extra: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "MetricRow":
        d = dict(d)
        for k in ("r", "r_offset", "lmd", "amp", "psnr", "ssim"):
            if d.get(k) is None:
                d[k] = math.nan
        return cls(**d)


# ------------------------------------------------------------------------------------ correlation


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the entries where both are finite; NaN if fewer than 3 or a series is flat."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if den < 1e-12:
        return math.nan
    return float((a * b).sum() / den)


def amplitude_ratio(pred: np.ndarray, gt: np.ndarray) -> float:
    """std(pred) / std(gt) over the entries where both are finite (NaN if gt is flat)."""
    ok = np.isfinite(pred) & np.isfinite(gt)
    if ok.sum() < 3 or np.std(gt[ok]) < 1e-12:
        return math.nan
    return float(np.std(pred[ok]) / np.std(gt[ok]))


def lagged_r(pred: np.ndarray, gt: np.ndarray, lag: int) -> float:
    """r between ``pred[t + lag]`` and ``gt[t]`` over the overlapping frames."""
    n = min(len(pred), len(gt))
    pred, gt = np.asarray(pred[:n]), np.asarray(gt[:n])
    if lag >= 0:
        return pearson(pred[lag:], gt[:n - lag])
    return pearson(pred[:n + lag], gt[-lag:])


def best_offset(pred: np.ndarray, gt: np.ndarray, max_lag: int = MAX_LAG) -> Tuple[int, float]:
    """(lag, r) maximising :func:`lagged_r` over ``-max_lag..max_lag``; ties go to the smaller |lag|.

    Returns (0, NaN) when no lag gives a defined correlation (e.g. a flat series).
    """
    best_lag, best_r = 0, -math.inf
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):
        r = lagged_r(pred, gt, lag)
        if not math.isnan(r) and r > best_r + 1e-12:
            best_lag, best_r = lag, r
    return (best_lag, best_r) if best_r > -math.inf else (0, math.nan)


# --------------------------------------------------------------------------------------- landmarks


def face_crop_boxes(gt_points: np.ndarray) -> np.ndarray:
    """(N, 4) DH_live face-crop boxes ``x0, y0, x1, y1`` of each real frame (NaN rows stay NaN).

    gt_points: (N, 478, >=2) pixel landmarks, NaN rows for frames without a face.
    """
    boxes = np.full((len(gt_points), 4), np.nan)
    for i, lm in enumerate(gt_points):
        if np.isfinite(lm[0, 0]):
            boxes[i] = crop_face(main_keypoints(lm))
    return boxes


def to_crop(points: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Map (N, K, >=2) pixel points into each frame's face crop scaled to ``size`` px -> (N, K, 2)."""
    origin = boxes[:, None, :2]
    scale = size / (boxes[:, 2] - boxes[:, 0])
    return (points[..., :2] - origin) * scale[:, None, None]


def lip_points(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The 40 lip landmarks of (N, 478, >=2) pixel landmarks in 256-px face-crop units: (N, 40, 2)."""
    return to_crop(points[:, MP_LIPS_40], boxes)


def lmd(pred_lips: np.ndarray, gt_lips: np.ndarray) -> float:
    """Mean lip-landmark distance over the frames where both are defined: (N, 40, 2) each."""
    d = np.linalg.norm(pred_lips - gt_lips, axis=-1).mean(axis=-1)
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else math.nan


# ------------------------------------------------------------------------------------------ images


def mouth_box(lm: np.ndarray, scale: float = MOUTH_BOX_SCALE) -> Tuple[int, int, int, int]:
    """Square box around the outer lips of (478, >=2) pixel landmarks; side = scale x corner distance."""
    outer = lm[MP_LIPS_OUTER, :2]
    cx, cy = outer.mean(axis=0)
    width = np.linalg.norm(lm[61, :2] - lm[291, :2])
    half = max(0.5 * scale * width, 4.0)
    return int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half))


def _crop_resized(frame: np.ndarray, box: Tuple[int, int, int, int], size: int) -> np.ndarray:
    return cv2.resize(safe_crop(frame, box), (size, size), interpolation=cv2.INTER_AREA)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (peak 255), capped at :data:`PSNR_CAP` for identical images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse <= 255.0 ** 2 * 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    return float(10.0 * math.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) on luma.

    a, b: HxWx3 uint8 BGR (or HxW uint8 gray) of the same size.
    """
    def gray(x):
        x = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) if x.ndim == 3 else x
        return x.astype(np.float64)

    x, y = gray(a), gray(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def mouth_image_scores(pred_frames: Iterable[np.ndarray], gt_frames: Iterable[np.ndarray],
                       gt_points: np.ndarray) -> Tuple[float, float]:
    """Mean mouth-box (PSNR, SSIM) over frames with a real-frame face; frames stream in pairs.

    pred frames of another size than the real ones are resized to it first.
    """
    ps, ss = [], []
    for i, (p, g) in enumerate(zip(pred_frames, gt_frames)):
        if i >= len(gt_points):
            break
        if not np.isfinite(gt_points[i, 0, 0]):
            continue
        if p.shape != g.shape:
            p = cv2.resize(p, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_AREA)
        box = mouth_box(gt_points[i])
        pc, gc = _crop_resized(p, box, MOUTH_SIZE), _crop_resized(g, box, MOUTH_SIZE)
        ps.append(psnr(pc, gc))
        ss.append(ssim(pc, gc))
    if not ps:
        return math.nan, math.nan
    return float(np.mean(ps)), float(np.mean(ss))


# -------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Reference:
    """The real clip's measurements every method is scored against (first ``n`` frames)."""

    track: VideoTrack
    opening: np.ndarray  # (N,) mouth opening, NaN without a face
    boxes: np.ndarray  # (N, 4) face-crop boxes
    lips: np.ndarray  # (N, 40, 2) lip landmarks in 256-px crop units

    @classmethod
    def from_track(cls, track: VideoTrack) -> "Reference":
        boxes = face_crop_boxes(track.points)
        return cls(track=track, opening=mouth_opening(track.points), boxes=boxes,
                   lips=lip_points(track.points, boxes))


def score_prediction(method: str, ref: Reference, opening: np.ndarray, lips: np.ndarray,
                     fail_pred: int = 0, max_lag: int = MAX_LAG) -> MetricRow:
    """Score a predicted mouth-opening series (N,) and lip track (N, 40, 2, crop units) against ``ref``.

    N may be shorter than the reference; only the common frames count.
    """
    n = min(len(opening), ref.track.n_frames)
    gt_open = ref.opening[:n]
    lag, r_lag = best_offset(opening[:n], gt_open, max_lag)
    return MetricRow(method=method, n_frames=n, r=pearson(opening[:n], gt_open), offset=lag, r_offset=r_lag,
                     lmd=lmd(lips[:n], ref.lips[:n]), amp=amplitude_ratio(opening[:n], gt_open),
                     fail_pred=fail_pred,
                     fail_gt=int((~ref.track.valid[:n]).sum()))


def check_lengths(n_pred: int, n_gt: int, what: str) -> int:
    """Number of frames to compare; a generated video may differ by a few frames (audio rounding)."""
    tolerance = max(2, int(0.1 * n_gt))
    if abs(n_pred - n_gt) > tolerance:
        raise UserInputError(f"{what}: {n_pred} frames vs {n_gt} in the ground truth (more than {tolerance} apart)")
    if n_pred != n_gt:
        log.warning("%s: %d frames vs %d in the ground truth; comparing the first %d", what, n_pred, n_gt,
                    min(n_pred, n_gt))
    return min(n_pred, n_gt)


def compare_videos(pred: PathLike, gt: PathLike, method: str = "model", max_lag: int = MAX_LAG,
                   progress: bool = True, ref: Optional[Reference] = None) -> MetricRow:
    """Score a generated video against its real counterpart (both decoded at 25 fps).

    ``ref`` (the real clip's :class:`Reference`) may be passed to avoid recomputing it.
    """
    gt_track = ref.track if ref is not None else track_video(gt, progress=progress)
    ref = ref or Reference.from_track(gt_track)
    pred_track = track_video(pred, size=gt_track.size, progress=progress)
    n = check_lengths(pred_track.n_frames, gt_track.n_frames, Path(pred).name)
    pred_points = pred_track.points[:n]
    row = score_prediction(method, ref, mouth_opening(pred_points), lip_points(pred_points, ref.boxes[:n]),
                           fail_pred=int((~pred_track.valid[:n]).sum()), max_lag=max_lag)
    row.psnr, row.ssim = mouth_image_scores(islice(iter_video_frames(pred), n), iter_video_frames(gt),
                                            gt_track.points[:n])
    return row
