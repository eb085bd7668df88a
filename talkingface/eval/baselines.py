"""Trivial baselines scored beside every model (docs/EVALUATION.md §1).

- **static mouth**: the avatar's neutral mouth on every frame. We build it as a video: the clip's
  most-closed-mouth frame is aligned to each frame (similarity transform on eyes, brows and nose)
  and its mouth region pasted in with a feathered mask, so the baseline runs through the same
  detection and image metrics as a model's output.
- **audio energy**: mouth opening and lip landmarks regressed linearly on the log energy of each
  frame's 40 ms of audio (lips in the neutral frame's pose; each frame's head pose is given). The fit uses the clip's own landmarks (in-sample), so it is an optimistic
  bound for any energy-driven mouth; its r is simply corr(log energy, real opening). It has no
  images, so no PSNR/SSIM.

A reference row, when an audio checkpoint is given (``audio_model_row``): the same in-sample linear
read-out, but from the audio model's 6 coefficients instead of log energy (opening from coefficient
0, the open/close mode; lips from all 6). It measures the shared audio front end on its own, before
any renderer.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Tuple

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.metrics import MetricRow, Reference, score_prediction, to_crop
from talkingface.util.media import SAMPLES_PER_FRAME, PathLike, VideoWriter, iter_video_frames
from talkingface.utils import INDEX_EYEBROWS, INDEX_EYES, INDEX_NOSE, MAIN_KEYPOINTS, MP_LIPS_40, MP_LIPS_OUTER

log = logging.getLogger(__name__)

#: MediaPipe ids that do not move with the mouth: the static-mouth alignment points.
STABLE_IDS = [MAIN_KEYPOINTS[i] for i in INDEX_EYEBROWS + INDEX_EYES + INDEX_NOSE]
MASK_MARGIN = 0.25  # mask dilation, fraction of the mouth width
ENERGY_FLOOR = 1e-8


def neutral_frame_index(ref: Reference) -> int:
    """Index of the real frame with the smallest mouth opening (the avatar's neutral mouth)."""
    opening = np.where(np.isfinite(ref.opening), ref.opening, np.inf)
    if not np.isfinite(opening).any():
        raise UserInputError("no face found in any frame of the clip")
    return int(np.argmin(opening))


def _mouth_mask(shape: Tuple[int, int], polys, margin_px: float) -> np.ndarray:
    """Feathered float mask (H, W) in [0, 1] covering the convex hull of ``polys``, dilated."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.concatenate(polys).astype(np.float32)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    k = max(3, int(2 * margin_px) | 1)
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32) / 255.0


def write_static_mouth_video(clip: PathLike, ref: Reference, out: PathLike) -> Path:
    """Write the static-mouth baseline of ``clip`` (same frame count, size and 25 fps) to ``out``.

    ref: the clip's own :class:`Reference` (its face-mesh track). Frames without a face are copied.
    """
    pts = ref.track.points
    k = neutral_frame_index(ref)
    neutral = _nth_frame(clip, k)
    mats = stable_alignments(ref, k)
    with VideoWriter(out) as writer:
        for t, frame in enumerate(iter_video_frames(clip)):
            if t >= len(pts) or not np.isfinite(mats[t]).all():
                writer.write(frame)  # no face in this frame
                continue
            m = mats[t]
            h, w = frame.shape[:2]
            warped = cv2.warpAffine(neutral, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            lips_k = pts[k, MP_LIPS_OUTER, :2] @ m[:, :2].T + m[:, 2]
            lips_t = pts[t, MP_LIPS_OUTER, :2]
            width = float(np.linalg.norm(lips_t.max(axis=0) - lips_t.min(axis=0)))
            alpha = _mouth_mask((h, w), [lips_k, lips_t], MASK_MARGIN * width)[..., None]
            writer.write((alpha * warped + (1.0 - alpha) * frame).round().astype(np.uint8))
    return Path(out)


def _nth_frame(clip: PathLike, k: int) -> np.ndarray:
    for i, frame in enumerate(iter_video_frames(clip, max_frames=k + 1)):
        if i == k:
            return frame
    raise UserInputError(f"{clip}: frame {k} not found")


def frame_log_energy(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames,) natural-log mean power of each frame's 640 samples (16 kHz audio, zero-padded)."""
    need = n_frames * SAMPLES_PER_FRAME
    audio = np.asarray(audio, np.float64)
    audio = np.pad(audio[:need], (0, max(0, need - len(audio))))
    power = (audio.reshape(n_frames, SAMPLES_PER_FRAME) ** 2).mean(axis=1)
    return np.log(power + ENERGY_FLOOR)


def _linear_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares ``y ≈ a + x b`` over rows where y is finite; returns the fitted y for every x.

    x: (N,) or (N, F) features, y: (N, D). Rows of y with NaN are left out of the fit.
    """
    ok = np.isfinite(y).all(axis=1)
    x = x.reshape(len(x), -1)
    design = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    if ok.sum() <= design.shape[1]:
        return np.full_like(y, math.nan)
    coef, *_ = np.linalg.lstsq(design[ok], y[ok], rcond=None)
    return design @ coef


def stable_alignments(ref: Reference, k: int) -> np.ndarray:
    """(N, 2, 3) similarity transforms mapping frame ``k`` to each frame t (eyes, brows, nose), NaN
    where frame t has no face. They carry head motion, so a baseline only has to model the mouth."""
    pts = ref.track.points
    mats = np.full((len(pts), 2, 3), np.nan)
    for t in np.flatnonzero(ref.track.valid):
        m, _ = cv2.estimateAffinePartial2D(pts[k, STABLE_IDS, :2].astype(np.float32),
                                           pts[t, STABLE_IDS, :2].astype(np.float32))
        if m is not None:
            mats[t] = m
    return mats


def _apply(mats: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (N, 2, 3) affine maps to (N, K, 2) points."""
    return np.einsum("nij,nkj->nki", mats[:, :, :2], points) + mats[:, None, :, 2]


def _invert(mats: np.ndarray) -> np.ndarray:
    """Inverse of (N, 2, 3) affine maps (NaN rows stay NaN)."""
    out = np.full_like(mats, np.nan)
    ok = np.isfinite(mats).all(axis=(1, 2))
    a_inv = np.linalg.inv(mats[ok, :, :2])
    out[ok, :, :2] = a_inv
    out[ok, :, 2] = -np.einsum("nij,nj->ni", a_inv, mats[ok, :, 2])
    return out


def _score_linear_readout(method: str, ref: Reference, opening_feature: np.ndarray,
                          lip_features: np.ndarray) -> MetricRow:
    """Fit opening on one feature (N,) and the lips on features (N, F), in-sample; score the fit.

    The lips are fitted in the neutral frame's pose (each frame's lips mapped back by its stable
    alignment) and the prediction is mapped into each frame's pose, so head motion is given and
    only the mouth shape comes from the features.
    """
    n = ref.track.n_frames
    opening = _linear_fit(opening_feature[:n], ref.opening[:, None])[:, 0]
    mats = stable_alignments(ref, neutral_frame_index(ref))
    lips_px = ref.track.points[:, MP_LIPS_40, :2]
    lips_neutral = _apply(_invert(mats), lips_px)
    fit = _linear_fit(lip_features[:n], lips_neutral.reshape(n, -1)).reshape(n, -1, 2)
    row = score_prediction(method, ref, opening, to_crop(_apply(mats, fit), ref.boxes))
    row.amp = math.nan  # an in-sample least-squares fit has amplitude |r| by construction
    return row


def energy_baseline(ref: Reference, audio: np.ndarray) -> MetricRow:
    """Score the audio-energy baseline: opening and lips linear in per-frame log energy.

    audio: the clip's own 16 kHz mono float audio.
    """
    x = frame_log_energy(audio, ref.track.n_frames)
    return _score_linear_readout("energy", ref, x, x[:, None])


def audio_model_row(ref: Reference, audio: np.ndarray, checkpoint: PathLike, device: str = "cpu") -> MetricRow:
    """Score the linear read-out of an audio checkpoint's (N, 6) coefficients (method ``audio-lin``).

    audio: the clip's 16 kHz mono float audio; checkpoint: an Audio2Feature state dict.
    """
    # Lazy: torch loads only when this row is scored (`python -m talkingface.eval --help` imports this module).
    from talkingface.audio_model import AudioModel

    coef = AudioModel(checkpoint, device=device).interface_wav(audio).astype(np.float64)
    n = ref.track.n_frames
    if len(coef) < n:
        coef = np.pad(coef, ((0, n - len(coef)), (0, 0)), mode="edge")
    return _score_linear_readout("audio-lin", ref, coef[:, 0], coef)
