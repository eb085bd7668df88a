"""The DH_live_mini mouth crop (docs/REFERENCE.md §1.4 step 1, docs/REFERENCE.md §3.1).

The crop is a square around the mouth whose side follows the size of the lower face:

- centre c = mean of the 20 outer-lip points;
- half-size h = 0.46 x the larger extent (width or height) of the 21 lower face-oval points;
- x from c_x - h to c_x + h; y from c_y - 0.89 h to c_y + 1.11 h (a little more chin than nose).

It is resized to the 128x128 model crop (``MODEL_SIZE``), whose central 72x72 window is the
network's mouth patch. Coordinates here are pixels of the video frame. The *standard crop*: the asset
pack stores every frame's landmarks in a ``model_size`` (128) square cut at the frame's rectangle
(:func:`standard_points`, :func:`standard_image`).
"""
from __future__ import annotations

import logging
from typing import Sequence, Tuple

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.models.DINet_mini import MODEL_SIZE
from talkingface.run_utils import smooth_sequence
from talkingface.utils import INDEX_FACE_OVAL, INDEX_LIPS_OUTER, box_outside, main_keypoints, safe_crop

log = logging.getLogger(__name__)

HALF_SIZE_RATIO = 0.46
ABOVE_RATIO = 0.89
BELOW_RATIO = 1.11
#: Temporal kernel the web-pack builder applies to the crop centres.
CENTRE_SMOOTH_KERNEL = (0.1, 0.2, 0.4, 0.2, 0.1)


def mouth_centre_and_half(lm: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """lm: (..., 478|141, >=2) pixels -> (centre (..., 2), half-size (...,))."""
    kps = main_keypoints(lm)
    centre = kps[..., INDEX_LIPS_OUTER, :2].mean(axis=-2)
    oval = kps[..., INDEX_FACE_OVAL, :2]
    extent = (oval.max(axis=-2) - oval.min(axis=-2)).max(axis=-1)
    return centre, HALF_SIZE_RATIO * extent


def box_from_centre(cx: float, cy: float, size: float) -> Tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the mouth square of side ``size`` around the outer-lip centre."""
    half = size / 2.0
    return cx - half, cy - ABOVE_RATIO * half, cx + half, cy + BELOW_RATIO * half


def crop_mouth(lm: np.ndarray, v_jitter: float = 0.0) -> Tuple[float, float, float, float]:
    """Per-frame mouth box (x0, y0, x1, y1) in frame pixels (float); ``v_jitter`` shifts it
    vertically by that fraction of its side (training uses U(-0.04, 0.04))."""
    centre, half = mouth_centre_and_half(lm)
    size = 2.0 * float(half)
    return box_from_centre(float(centre[0]), float(centre[1]) + v_jitter * size, size)


def video_mouth_rects(lm_seq: np.ndarray, frame_size: Tuple[int, int], smooth: bool = True) -> np.ndarray:
    """Integer mouth rectangles of a whole video, as the web asset pack stores them.

    lm_seq: (N, 478|141, >=2) pixels; frame_size: (width, height). One side for the whole video,
    (mean width + mean height) / 2 of the per-frame boxes made even; centres smoothed over time.
    Returns (N, 4) int64 [x0, y0, x1, y1]. A rectangle may cross the frame's borders (a tight crop
    whose chin touches the edge): the crops are then padded (:func:`standard_image`) and pasted back
    clipped. Raises ValueError naming the first frame whose mouth itself (an outer-lip point) lies
    outside the frame: that face is truly out of frame.
    """
    w, h = frame_size
    lips = main_keypoints(lm_seq)[..., INDEX_LIPS_OUTER, :2]
    off = np.nonzero(((lips < 0) | (lips >= np.array([w, h]))).any(axis=(1, 2)))[0]
    if len(off):
        raise ValueError(f"frame {int(off[0])}: the mouth is outside the {w}x{h} frame; "
                         "keep the mouth inside the picture")
    centre, half = mouth_centre_and_half(lm_seq)
    size = int(round(float(np.mean(2.0 * half))))
    size += size % 2
    if smooth and len(centre) > 1:
        centre = smooth_sequence(centre, CENTRE_SMOOTH_KERNEL)
    x0 = np.round(centre[:, 0] - size / 2.0).astype(np.int64)
    y0 = np.round(centre[:, 1] - ABOVE_RATIO * size / 2.0).astype(np.int64)
    rects = np.stack([x0, y0, x0 + size, y0 + size], axis=1)
    padded = int(sum(box_outside(r, w, h) for r in rects))
    if padded:
        log.info("mouth crop crosses the %dx%d frame's border in %d of %d frames: padded (edge pixels "
                 "repeated) and pasted back clipped", w, h, padded, len(rects))
    return rects


def box_to_crop_matrix(box: Tuple[float, float, float, float], out_size: int) -> np.ndarray:
    """2x3 affine mapping frame pixels of ``box`` onto an ``out_size`` square (pixel-centre exact)."""
    x0, y0, x1, y1 = box
    sx = out_size / (x1 - x0)
    sy = out_size / (y1 - y0)
    return np.array([[sx, 0.0, -x0 * sx + 0.5 * sx - 0.5], [0.0, sy, -y0 * sy + 0.5 * sy - 0.5]])


def standard_points(landmarks: np.ndarray, rects: np.ndarray, model_size: int = MODEL_SIZE) -> np.ndarray:
    """Landmarks in the standard crop: (N, 478, 3) frame pixels, rects (N, 4) -> (N, 478, 3).

    x, y are shifted to each rectangle and scaled by model_size / side; z is shifted so its per-frame
    maximum is 0, then scaled the same way (docs/REFERENCE.md §1.4 step 1).
    """
    lm = np.asarray(landmarks, np.float64)
    rects = np.asarray(rects, np.float64).reshape(-1, 4)
    if lm.ndim != 3 or lm.shape[-1] != 3 or len(rects) != len(lm):
        raise UserInputError(f"standard_points: landmarks {lm.shape} and rects {rects.shape} do not match")
    side = rects[:, 2] - rects[:, 0]
    out = lm.copy()
    out[..., :2] -= rects[:, None, :2]
    out[..., 2] -= out[..., 2].max(axis=1, keepdims=True)
    return out * (model_size / side)[:, None, None]


def standard_image(frame: np.ndarray, rect: Sequence[int], size: int = MODEL_SIZE) -> np.ndarray:
    """Cut ``rect`` (x0, y0, x1, y1) from ``frame`` and resize it to size x size. Where the rectangle
    leaves the frame (a tight crop) the edge pixels are repeated; an empty rectangle or one that does
    not touch the frame at all is an error."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    h, w = frame.shape[:2]
    if x1 <= x0 or y1 <= y0 or x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise UserInputError(f"crop {[x0, y0, x1, y1]} does not overlap the {w}x{h} frame")
    inside = x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h
    crop = frame[y0:y1, x0:x1] if inside else safe_crop(frame, (x0, y0, x1, y1), border="replicate")
    interp = cv2.INTER_AREA if (x1 - x0) > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
