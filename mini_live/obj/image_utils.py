"""Image-side helpers of the mini renderer: mouth crop, the 128 "standard" crop, rotations, drawMouth.

- The mouth crop itself lives in :mod:`talkingface.data.mouth_crop` (one place): :func:`crop_mouth` is
  the per-frame box and :func:`video_mouth_rects` the fixed-size video rectangles, which may cross the
  frame's borders (tight crops; the original refused a box crossing the right or bottom edge,
  docs/REFERENCE.md §9.18): crops are padded with repeated edge pixels and pasted back clipped.
- Standard crop: the asset pack stores every frame's landmarks in a ``model_size`` (128) square cut at
  the frame's rectangle (:func:`standard_points`, :func:`standard_image`); the renderer works at twice
  that size (:func:`render_inputs`).
- Rotation helpers build and read pose matrices from Euler angles (degrees; x right, y down, z away
  from the viewer, as the landmark space).
- :func:`drawMouth` paints the lip labels of a landmark set in the GL renderer's colours.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from talkingface.data.mouth_crop import crop_mouth, crop_rect, video_mouth_rects  # noqa: F401  (re-exported)
from talkingface.errors import UserInputError

MODEL_SIZE = 128
RENDER_SCALE = 2


# ------------------------------------------------------------------------------------ standard crop
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
    """Cut ``rect`` (x0, y0, x1, y1) and resize it to size x size; a rectangle crossing the frame's
    border is padded with repeated edge pixels (:func:`talkingface.data.mouth_crop.crop_rect`)."""
    try:
        return crop_rect(frame, rect, size)
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc


def render_inputs(std_points: np.ndarray, mats: np.ndarray, target_ids: np.ndarray,
                  scale: float = RENDER_SCALE) -> Tuple[np.ndarray, np.ndarray]:
    """Renderer inputs at ``scale`` x the standard crop (256 for 128, as demo_mini does).

    std_points (N, 478, 3), mats (N, 4, 4) canonical -> standard crop, target_ids (P,) ->
    (points (N, P, 2) output pixels, poses (N, 4, 4) canonical -> output pixels).
    """
    pts = np.asarray(std_points, np.float64)[:, np.asarray(target_ids), :2] * scale
    poses = np.diag([scale, scale, scale, 1.0]) @ np.asarray(mats, np.float64)
    return pts, poses


# -------------------------------------------------------------------------------------------- rotations
def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3x3 rotation R = Rz(roll) Ry(yaw) Rx(pitch), angles in degrees (x right, y down, z away)."""
    a, b, c = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotation_angles(rot: np.ndarray) -> Tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a rotation (3x3) or of a pose matrix's scaled 3x3 block."""
    r = np.asarray(rot, np.float64)[:3, :3]
    r = r / np.cbrt(np.linalg.det(r))
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(pitch), float(yaw), float(roll)


def pose_matrix(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, scale: float = 1.0,
                centre: Optional[Sequence[float]] = None, target: Optional[Sequence[float]] = None) -> np.ndarray:
    """4x4 pose: rotate and scale about model point ``centre`` and put it at ``target`` (default: origin)."""
    mat = np.eye(4)
    mat[:3, :3] = scale * rotation_matrix(pitch, yaw, roll)
    c = np.zeros(3) if centre is None else np.asarray(centre, np.float64)
    t = np.zeros(3) if target is None else np.asarray(target, np.float64)
    mat[:3, 3] = t - mat[:3, :3] @ c
    return mat


# ------------------------------------------------------------------------------------------- drawMouth
def drawMouth(landmarks: np.ndarray, size: Tuple[int, int], background: int = 128) -> np.ndarray:  # noqa: N802
    """The lip labels of ``landmarks`` (478, >=2, pixels) painted like the GL renderer: (h, w, 3) uint8 RGB.

    Upper lip (255, 0, 0), lower lip (127, 0, 0), mouth opening (0, 0, 0), elsewhere ``background``
    grey; ``size`` is (w, h). Teeth cannot be known from landmarks and are not drawn.
    """
    from talkingface.data.teeth_labels import CAVITY, LOWER_LIP, UPPER_LIP, lip_labels

    w, h = size
    labels = lip_labels(landmarks, (h, w))
    out = np.full((h, w, 3), background, np.uint8)
    out[labels == UPPER_LIP] = (255, 0, 0)
    out[labels == LOWER_LIP] = (127, 0, 0)
    out[labels == CAVITY] = (0, 0, 0)
    return out
