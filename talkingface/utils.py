"""Landmark index groups, face/mouth measures, crops and feature-map drawing (one place for each).

Two index spaces are used across the toolkit:

- ``MP_*``: MediaPipe face-mesh ids (0..477) into a (478, 3) landmark array.
- ``INDEX_*``: positions (0..140) into the 141 "main keypoints" array ``lm[MAIN_KEYPOINTS]``, the
  order the original DH_live code uses for its masks, crops and line maps (docs/REFERENCE.md §3.0).

Landmark arrays are float pixel coordinates ``(x, y, z * width)`` as produced by
:mod:`talkingface.mediapipe_utils`.
"""
from __future__ import annotations

from typing import Dict, Iterable, Sequence, Tuple

import cv2
import numpy as np

# ------------------------------------------------------------------------- MediaPipe id groups (docs/REFERENCE.md §3.0)
MP_LEFT_EYEBROW = [276, 283, 282, 295, 285, 336, 296, 334, 293, 300]
MP_RIGHT_EYEBROW = [46, 53, 52, 65, 55, 107, 66, 105, 63, 70]
MP_NOSE_EDGE = [343, 355, 358, 327, 326, 2, 97, 98, 129, 126, 114]
MP_NOSE_MID = [6, 197, 195, 5, 4]
MP_LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191]
MP_LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
MP_LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
MP_RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
#: The whole face-oval ring, in order around the face (from the forehead's top, clockwise in the image).
MP_FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
                176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
#: Its lower part, ear to ear under the chin (the original's "oval" main keypoints).
MP_FACE_OVAL_LOWER = MP_FACE_OVAL[8:29]
MP_MUSCLE = [371, 266, 425, 427, 434, 394, 169, 214, 207, 205, 36, 142]

#: The 141 main keypoints, in the original's concatenation order.
MAIN_KEYPOINTS = (MP_LEFT_EYEBROW + MP_RIGHT_EYEBROW + MP_NOSE_EDGE + MP_NOSE_MID + MP_LIPS_INNER
                  + MP_LIPS_OUTER + MP_LEFT_EYE + MP_RIGHT_EYE + MP_FACE_OVAL_LOWER + MP_MUSCLE)
assert len(MAIN_KEYPOINTS) == 141

#: Four lip rings x 20 points (outer, semi-outer, semi-inner, inner). Each starts at the right mouth
#: corner (291/306/292/308), runs over the upper lip to the left corner, then back along the lower lip;
#: point i of one ring neighbours point i of the next ring in the face-mesh tessellation.
MP_LIPS_RINGS = [
    [291, 409, 270, 269, 267, 0, 37, 39, 40, 185, 61, 146, 91, 181, 84, 17, 314, 405, 321, 375],
    [306, 408, 304, 303, 302, 11, 72, 73, 74, 184, 76, 77, 90, 180, 85, 16, 315, 404, 320, 307],
    [292, 407, 272, 271, 268, 12, 38, 41, 42, 183, 62, 96, 89, 179, 86, 15, 316, 403, 319, 325],
    [308, 415, 310, 311, 312, 13, 82, 81, 80, 191, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324],
]

#: The 40 lip landmarks (outer + inner rings) used by LMD.
MP_LIPS_40 = MP_LIPS_OUTER + MP_LIPS_INNER

MP_UPPER_INNER_LIP_MID = 13
MP_LOWER_INNER_LIP_MID = 14
MP_RIGHT_EYE_OUTER = 33
MP_LEFT_EYE_OUTER = 263


def _positions(group: Sequence[int]) -> list:
    """Positions of MediaPipe ids ``group`` within MAIN_KEYPOINTS (first occurrence)."""
    return [MAIN_KEYPOINTS.index(i) for i in group]


# -------------------------------------------------------------- positions within the 141 main keypoints
INDEX_LEFT_EYEBROW = _positions(MP_LEFT_EYEBROW)
INDEX_RIGHT_EYEBROW = _positions(MP_RIGHT_EYEBROW)
INDEX_NOSE_EDGE = _positions(MP_NOSE_EDGE)
INDEX_NOSE_MID = _positions(MP_NOSE_MID)
INDEX_LIPS_INNER = _positions(MP_LIPS_INNER)
INDEX_LIPS_OUTER = _positions(MP_LIPS_OUTER)
INDEX_LEFT_EYE = _positions(MP_LEFT_EYE)
INDEX_RIGHT_EYE = _positions(MP_RIGHT_EYE)
INDEX_FACE_OVAL = _positions(MP_FACE_OVAL_LOWER)
INDEX_MUSCLE = _positions(MP_MUSCLE)
INDEX_NOSE = INDEX_NOSE_EDGE + INDEX_NOSE_MID
INDEX_EYES = INDEX_LEFT_EYE + INDEX_RIGHT_EYE
INDEX_EYEBROWS = INDEX_LEFT_EYEBROW + INDEX_RIGHT_EYEBROW
INDEX_LIPS = INDEX_LIPS_INNER + INDEX_LIPS_OUTER
#: Upper-lip polygon (22 points): inner[10:] + the two left corners + reversed outer[10:].
INDEX_LIPS_UPPER = INDEX_LIPS_INNER[10:] + [INDEX_LIPS_INNER[0], INDEX_LIPS_OUTER[0]] + INDEX_LIPS_OUTER[:9:-1]
#: Lower-lip polygon (22 points): inner[:11] + reversed outer[:11].
INDEX_LIPS_LOWER = INDEX_LIPS_INNER[:11] + INDEX_LIPS_OUTER[10::-1]
#: The face-mask part of the oval (oval[2:-2]) used for the DH_live jaw mask and crop.
FACE_MASK_INDEX = INDEX_FACE_OVAL[2:-2]
#: Every group except the lips: the rigid-ish points used to solve head pose (101 points).
ROTATE_REF_INDEX = INDEX_EYEBROWS + INDEX_NOSE + INDEX_EYES + INDEX_FACE_OVAL + INDEX_MUSCLE
#: Position of MediaPipe 195 (nose bridge) in the main keypoints; the DH_live crop's top edge.
INDEX_NOSE_BRIDGE = MAIN_KEYPOINTS.index(195)
assert len(INDEX_LIPS_UPPER) == 22 and len(INDEX_LIPS_LOWER) == 22 and len(ROTATE_REF_INDEX) == 101
assert INDEX_NOSE_BRIDGE == 33


#: The lip polygons above as MediaPipe ids (for drawing on a (478, C) landmark array).
MP_LIPS_UPPER = [MAIN_KEYPOINTS[i] for i in INDEX_LIPS_UPPER]
MP_LIPS_LOWER = [MAIN_KEYPOINTS[i] for i in INDEX_LIPS_LOWER]


def main_keypoints(lm: np.ndarray) -> np.ndarray:
    """(..., 478, C) MediaPipe landmarks -> (..., 141, C) main keypoints (float64); an array that
    already holds the 141 main keypoints (the original's files) is returned as is."""
    lm = np.asarray(lm, dtype=np.float64)
    return lm if lm.shape[-2] == len(MAIN_KEYPOINTS) else lm[..., MAIN_KEYPOINTS, :]


# ------------------------------------------------------------------------------------------- measures
def inter_ocular(lm: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (MediaPipe 33 and 263) in the landmarks' units."""
    lm = np.asarray(lm, dtype=np.float64)
    return np.linalg.norm(lm[..., MP_RIGHT_EYE_OUTER, :2] - lm[..., MP_LEFT_EYE_OUTER, :2], axis=-1)


def mouth_opening(lm: np.ndarray) -> np.ndarray:
    """Inner-lip gap |p14 - p13| divided by the inter-ocular distance.

    lm: (..., 478, >=2) landmarks in any consistent 2-D units. Returns (...,) float64, ~0 for a
    closed mouth and ~0.3-0.5 for a wide-open one. This is the lip-sync signal of docs/EVALUATION.md §1.
    """
    lm = np.asarray(lm, dtype=np.float64)
    gap = np.linalg.norm(lm[..., MP_LOWER_INNER_LIP_MID, :2] - lm[..., MP_UPPER_INNER_LIP_MID, :2], axis=-1)
    return gap / np.maximum(inter_ocular(lm), 1e-6)


# ---------------------------------------------------------------------------------------------- crops
def crop_face(kps: np.ndarray, jitter: int = 0, rng: np.random.Generator | None = None) -> Tuple[int, int, int, int]:
    """DH_live square face crop box ``(x0, y0, x1, y1)`` from 141 main keypoints (docs/REFERENCE.md §3.1).

    The square is centred on the bounding box of the face-mask oval points whose top edge is replaced
    by the nose bridge (main keypoint 33); half-side = 0.6 x max(w, h). ``jitter`` adds up to that many
    pixels of random offset (training). The box may extend beyond the image; see :func:`safe_crop`.
    """
    kps = np.asarray(kps)
    pts = kps[FACE_MASK_INDEX, :2]
    x_min, y_min = pts.min(axis=0)
    x_max, y_max = pts.max(axis=0)
    y_min = kps[INDEX_NOSE_BRIDGE, 1]
    cx, cy = (x_min + x_max) / 2.0, (y_min + y_max) / 2.0
    half = 0.6 * max(x_max - x_min, y_max - y_min)
    if jitter:
        rng = rng or np.random.default_rng()
        cx += rng.integers(-jitter, jitter + 1)
        cy += rng.integers(-jitter, jitter + 1)
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    side = int(round(2 * half))
    return x0, y0, x0 + side, y0 + side


def safe_crop(image: np.ndarray, box: Tuple[int, int, int, int], border_value=0,
              border: str = "constant") -> np.ndarray:
    """Crop ``box = (x0, y0, x1, y1)`` from ``image``, padding where the box leaves the image, so the
    crop always has the box's size and keypoints stay aligned with it.

    ``border``: "constant" fills with ``border_value``; "replicate" repeats the nearest edge pixel
    (tight face crops: the padded band then continues the chin/neck instead of a black bar).
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape[:2]
    if border == "replicate":
        sx0, sy0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        sx1, sy1 = max(min(x1, w), sx0 + 1), max(min(y1, h), sy0 + 1)
        pads = (sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1)  # top, bottom, left, right
        if min(pads) >= 0 and image.dtype == np.uint8 and image.ndim in (2, 3):
            inner = image[sy0:sy1, sx0:sx1]
            if max(pads) == 0:
                return inner.copy()
            return cv2.copyMakeBorder(inner, *pads, cv2.BORDER_REPLICATE).reshape((y1 - y0, x1 - x0) + image.shape[2:])
        # a box wholly outside the frame (or an unusual array): repeat the nearest pixel by index
        rows = np.clip(np.arange(y0, y1), 0, h - 1)
        cols = np.clip(np.arange(x0, x1), 0, w - 1)
        return image[rows[:, None], cols[None, :]]
    if border != "constant":
        raise ValueError(f"border must be 'constant' or 'replicate', not {border!r}")
    out_shape = (y1 - y0, x1 - x0) + image.shape[2:]
    out = np.full(out_shape, border_value, dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def box_outside(box: Tuple[float, float, float, float], width: int, height: int) -> bool:
    """True when ``box = (x0, y0, x1, y1)`` crosses any border of a ``width`` x ``height`` frame."""
    x0, y0, x1, y1 = box
    return x0 < 0 or y0 < 0 or x1 > width or y1 > height


# ----------------------------------------------------------------------------------- feature maps
#: Line-map colours (BGR) of the original's reference feature maps (docs/REFERENCE.md §3.2).
FEATURE_COLOURS: Dict[str, Tuple[int, int, int]] = {
    "mouth": (255, 0, 0),
    "nose": (0, 255, 0),
    "eye": (0, 255, 0),
    "oval": (0, 0, 255),
    "muscle": (255, 255, 255),
}
_FEATURE_LINES: Dict[str, list] = {
    "mouth": [INDEX_LIPS_OUTER + INDEX_LIPS_OUTER[:1], INDEX_LIPS_INNER + INDEX_LIPS_INNER[:1]],
    "nose": [INDEX_NOSE_EDGE, INDEX_NOSE_MID],
    "eye": [INDEX_LEFT_EYE + INDEX_LEFT_EYE[:1], INDEX_RIGHT_EYE + INDEX_RIGHT_EYE[:1]],
    "oval": [INDEX_FACE_OVAL],
    "muscle": [INDEX_MUSCLE[:6], INDEX_MUSCLE[6:]],
}


def draw_face_feature_map(kps: np.ndarray, size: Tuple[int, int],
                          parts: Iterable[str] = ("mouth", "nose", "eye", "oval", "muscle"),
                          thickness: int = 2, image: np.ndarray | None = None) -> np.ndarray:
    """Draw the DH_live line map of 141 main keypoints.

    kps: (141, >=2) pixel coordinates in the target image frame. size: (width, height).
    Returns HxWx3 uint8 BGR (drawn onto a copy of ``image`` when given, else onto black).
    """
    w, h = size
    canvas = np.zeros((h, w, 3), np.uint8) if image is None else image.copy()
    pts = np.round(np.asarray(kps)[:, :2]).astype(np.int32)
    for part in parts:
        for line in _FEATURE_LINES[part]:
            cv2.polylines(canvas, [pts[line].reshape(-1, 1, 2)], isClosed=False,
                          color=FEATURE_COLOURS[part], thickness=thickness, lineType=cv2.LINE_AA)
    return canvas


def draw_landmarks(image: np.ndarray, lm: np.ndarray, colour=(0, 255, 0), radius: int = 1) -> np.ndarray:
    """Return a copy of ``image`` with every landmark drawn as a dot (for visual checks)."""
    out = image.copy()
    for x, y in np.round(np.asarray(lm)[:, :2]).astype(int):
        cv2.circle(out, (int(x), int(y)), radius, colour, -1, lineType=cv2.LINE_AA)
    return out
