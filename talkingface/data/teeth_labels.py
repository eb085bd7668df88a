"""Mouth label maps for DH_live_mini training, teeth included, generated from the video itself.

The original trained DINet_mini on an external per-frame teeth segmentation (``teeth_seg/*.png``)
that no script produced (docs/REFERENCE.md §3.3, docs/REFERENCE.md §9.27). Here every label is derived from the
face-mesh landmarks and the pixels of the frame:

1. Lip polygons from the landmarks: upper lip (inner[10:] + corners + outer[10:] reversed), lower
   lip (inner[:11] + outer[:11] reversed) and the inner-lip polygon (the mouth opening).
2. Inside the opening, each pixel is **teeth** or **cavity** (tongue, gums and the dark gap).
   Teeth are the bright, un-red pixels: a pixel is teeth when its Lab lightness is above a
   per-frame threshold (the larger of an Otsu split of the opening's lightness and the lip
   lightness plus a margin) and its Lab a* (redness) is below the lips' median a*, which keeps
   the tongue and gums (red) out while admitting yellowish teeth. Small specks are removed.
3. Teeth are **upper** or **lower**: per column of the opening, the teeth pixels above the
   opening's vertical midline belong to the upper row, those below to the lower row, except that
   a run of teeth touching the upper (lower) lip edge keeps the upper (lower) class as a whole.

Label codes (uint8): 0 skin/background, 1 upper lip, 2 lower lip, 3 cavity, 4 upper teeth,
5 lower teeth. :func:`label_colours` turns them into the OpenGL renderer's colours (upper lip
(1,0,0), lower lip (127/255,0,0), upper teeth (0,1,0), lower teeth (0,0,1), cavity (0,0,0)), so a
training source carries exactly the 8-bit values of the GL-labelled inference input (docs/REFERENCE.md §5.3).
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from mini_live.obj.wrap_utils import make_teeth
from talkingface.utils import MP_LIPS_INNER, MP_LIPS_LOWER, MP_LIPS_UPPER

SKIN, UPPER_LIP, LOWER_LIP, CAVITY, UPPER_TEETH, LOWER_TEETH = 0, 1, 2, 3, 4, 5
#: RGB colours in [0, 1] the GL shader draws for each label (skin has none).
LABEL_RGB = {
    UPPER_LIP: (1.0, 0.0, 0.0),
    LOWER_LIP: (127.0 / 255.0, 0.0, 0.0),  # the shader's 127, not round(0.5 * 255) = 128
    CAVITY: (0.0, 0.0, 0.0),
    UPPER_TEETH: (0.0, 1.0, 0.0),
    LOWER_TEETH: (0.0, 0.0, 1.0),
}
#: Lip-map values of the 4th reference channel: upper lip 255, lower lip 127, else 0.
LIP_MAP_VALUES = {UPPER_LIP: 255, LOWER_LIP: 127}

_SUBPIXEL_BITS = 4
_LIGHTNESS_MARGIN = 0.0  # Lab L* units (0..255 scale in OpenCV) above the lips' median
_MIN_TEETH_PIXELS = 6




def _fill(mask: np.ndarray, pts: np.ndarray, value: int) -> None:
    scaled = np.round(pts[:, :2] * (1 << _SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(mask, [scaled], int(value), lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def lip_labels(lm: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Rasterise the lips and the mouth opening: lm (478, >=2) pixels of an image of ``shape``
    (h, w) -> (h, w) uint8 labels with SKIN, UPPER_LIP, LOWER_LIP and CAVITY."""
    lm = np.asarray(lm, dtype=np.float64)
    labels = np.zeros(shape, np.uint8)
    _fill(labels, lm[MP_LIPS_UPPER], UPPER_LIP)
    _fill(labels, lm[MP_LIPS_LOWER], LOWER_LIP)
    _fill(labels, lm[MP_LIPS_INNER], CAVITY)
    return labels


def segment_teeth(image_rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Split the CAVITY pixels of ``labels`` into cavity / upper teeth / lower teeth.

    image_rgb: HxWx3 uint8 RGB; labels: HxW uint8 from :func:`lip_labels`. Returns a new label map.
    """
    out = labels.copy()
    opening = labels == CAVITY
    lips = (labels == UPPER_LIP) | (labels == LOWER_LIP)
    if opening.sum() < _MIN_TEETH_PIXELS or lips.sum() < _MIN_TEETH_PIXELS:
        return out
    lab = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lightness = lab[..., 0]
    redness = lab[..., 1]
    inside = lightness[opening]
    otsu, _ = cv2.threshold(inside.astype(np.uint8).reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = max(float(otsu), float(np.median(lightness[lips])) + _LIGHTNESS_MARGIN)
    redness_limit = float(np.median(redness[lips]))
    teeth = opening & (lightness > threshold) & (redness < redness_limit)
    teeth = cv2.morphologyEx(teeth.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)
    # a 2x2 kernel has no centre pixel: OpenCV's opening can move a pixel by one, out of the opening
    teeth &= opening
    if teeth.sum() < _MIN_TEETH_PIXELS:
        return out
    out[teeth] = _assign_rows(teeth, opening)[teeth]
    return out


def _assign_rows(teeth: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """Per column: runs of teeth touching the top (bottom) of the opening are upper (lower); other
    teeth pixels go by the opening's midline. Returns an HxW map of UPPER_TEETH / LOWER_TEETH."""
    h, w = teeth.shape
    classes = np.zeros((h, w), np.uint8)
    for x in np.nonzero(teeth.any(axis=0))[0]:
        rows = np.nonzero(opening[:, x])[0]
        top, bottom = rows.min(), rows.max()
        mid = 0.5 * (top + bottom)
        col = teeth[:, x]
        y = top
        while y <= bottom:
            if not col[y]:
                y += 1
                continue
            start = y
            while y <= bottom and col[y]:
                y += 1
            end = y - 1
            if start <= top + 1 and end < bottom - 1:
                cls = UPPER_TEETH
            elif end >= bottom - 1 and start > top + 1:
                cls = LOWER_TEETH
            else:
                cls = None
            if cls is None:
                for yy in range(start, end + 1):
                    classes[yy, x] = UPPER_TEETH if yy <= mid else LOWER_TEETH
            else:
                classes[start:end + 1, x] = cls
    return classes


def mouth_labels(image_rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Full label map of one image: lips from the landmarks, teeth from the pixels (HxW uint8)."""
    return segment_teeth(image_rgb, lip_labels(lm, image_rgb.shape[:2]))


def renderer_teeth_labels(labels: np.ndarray, lm: np.ndarray, follow_segmentation: bool = False) -> np.ndarray:
    """The mouth opening labelled as the mini renderer draws it, instead of segmented from the pixels.

    labels: HxW uint8 from :func:`mouth_labels` (or :func:`lip_labels`); lm: (478, >=2) landmarks in the
    same pixels. Inside the opening (CAVITY / teeth pixels), the procedural teeth bands of
    :func:`mini_live.obj.wrap_utils.make_teeth` fitted to these landmarks become UPPER_TEETH / LOWER_TEETH
    (lower drawn over upper) and the rest CAVITY; lips and skin are kept. Returns a new label map.

    ``follow_segmentation``: draw a band only when ``labels`` shows that row of teeth (at least
    ``_MIN_TEETH_PIXELS`` pixels of UPPER_TEETH / LOWER_TEETH). The renderer's shape then stays, but a
    teeth label always pairs with teeth in the target image: without it, every open mouth gets
    bands, also where the real frame shows a dark cavity or the tongue, and the network learns
    to paint a dim average of teeth and cavity into the bands.
    """
    face = np.zeros((len(lm), 3))
    face[:, :2] = np.asarray(lm, np.float64)[:, :2]
    out = labels.copy()
    opening = labels >= CAVITY
    out[opening] = CAVITY
    upper, lower, _, _ = make_teeth(face)
    for band, code in ((upper, UPPER_TEETH), (lower, LOWER_TEETH)):
        if follow_segmentation and int((labels == code).sum()) < _MIN_TEETH_PIXELS:
            continue
        poly = np.concatenate([band[0::2, :2], band[1::2, :2][::-1]])
        mask = np.zeros(labels.shape, np.uint8)
        _fill(mask, poly, 1)
        out[(mask > 0) & opening] = code
    return out


def label_colours(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """labels HxW -> (colour HxWx3 float32 RGB in [0,1], mask HxW float32: 1 on mouth labels)."""
    colour = np.zeros(labels.shape + (3,), np.float32)
    mask = np.zeros(labels.shape, np.float32)
    for code, rgb in LABEL_RGB.items():
        sel = labels == code
        colour[sel] = rgb
        mask[sel] = 1.0
    return colour, mask


def paint_labels(image_rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The training *source*: the image with lips/teeth/cavity replaced by label colours (uint8 RGB)."""
    colour, mask = label_colours(labels)
    out = image_rgb.astype(np.float32) * (1.0 - mask[..., None]) + colour * 255.0 * mask[..., None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def lip_map(labels: np.ndarray) -> np.ndarray:
    """The 4th reference channel: upper lip 255, lower lip 127, else 0 (HxW uint8)."""
    out = np.zeros(labels.shape, np.uint8)
    for code, value in LIP_MAP_VALUES.items():
        out[labels == code] = value
    return out


def inner_mouth(image_rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Teeth reference image: the pixels of the mouth opening (teeth and cavity), black elsewhere."""
    keep = np.isin(labels, (CAVITY, UPPER_TEETH, LOWER_TEETH))
    return np.where(keep[..., None], image_rgb, 0).astype(np.uint8)


#: Seed of the procedural teeth references of an avatar whose video never shows its teeth (recorded in packs).
DEFAULT_TEETH_SEED = 1009


def procedural_teeth_reference(seed: int, size: Tuple[int, int] = (72, 72)) -> np.ndarray:
    """A synthetic teeth reference drawn by code: HxWx4 uint8 = RGB of an open mouth (teeth rows
    and cavity, black outside the opening) + the lip map (upper lip 255, lower lip 127).

    Used where an avatar video never shows its teeth; the layout follows the mouth window of the
    128 crop (mouth centre near (0.5 W, 0.4 H), width about 0.7 W). Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    ss = 2  # draw at 2x and shrink, for smooth edges
    cx = (0.5 + rng.uniform(-0.03, 0.03)) * w * ss
    cy = (0.40 + rng.uniform(-0.03, 0.03)) * h * ss
    a = rng.uniform(0.30, 0.38) * w * ss
    b_up = rng.uniform(0.06, 0.12) * h * ss
    b_lo = b_up * rng.uniform(1.0, 1.6)
    t_up = rng.uniform(0.05, 0.09) * h * ss
    t_lo = rng.uniform(0.07, 0.12) * h * ss
    xs = np.linspace(-1.0, 1.0, 41)
    prof = np.sqrt(np.clip(1.0 - xs ** 2, 0.0, 1.0))
    top = np.stack([cx + a * xs, cy - b_up * prof], 1)
    bottom = np.stack([cx + a * xs, cy + b_lo * prof], 1)
    upper_outer = np.stack([cx + a * xs, cy - b_up * prof - t_up * (1.0 - 0.5 * xs ** 2)], 1)
    lower_outer = np.stack([cx + a * xs, cy + b_lo * prof + t_lo * (1.0 - 0.5 * xs ** 2)], 1)
    big = (h * ss, w * ss)
    opening = np.zeros(big, np.uint8)
    cv2.fillPoly(opening, [np.round(np.vstack([top, bottom[::-1]])).astype(np.int32)], 1)
    lips = np.zeros(big, np.uint8)
    cv2.fillPoly(lips, [np.round(np.vstack([upper_outer, top[::-1]])).astype(np.int32)], 255)
    cv2.fillPoly(lips, [np.round(np.vstack([bottom, lower_outer[::-1]])).astype(np.int32)], 127)
    lips[opening > 0] = 0

    yy, xx = np.mgrid[0:big[0], 0:big[1]].astype(np.float32)
    u = np.clip((xx - cx) / a, -1.0, 1.0)
    cavity = np.array([rng.uniform(40, 90), rng.uniform(10, 35), rng.uniform(15, 40)], np.float32)
    rgb = np.ones(big + (3,), np.float32) * cavity
    grey = rng.uniform(180, 235)
    tint = rng.uniform(0, 15)
    tooth_rgb = np.array([grey + tint / 2, grey, grey - tint], np.float32)
    tooth_w = rng.uniform(0.07, 0.10) * w * ss
    top_y = cy - b_up * np.sqrt(np.clip(1.0 - u ** 2, 0.0, 1.0))
    bot_y = cy + b_lo * np.sqrt(np.clip(1.0 - u ** 2, 0.0, 1.0))
    upper_len = rng.uniform(0.35, 0.65) * (b_up + b_lo)
    upper = (yy >= top_y) & (yy < top_y + upper_len)
    teeth = upper.copy()
    if rng.random() < 0.6:
        lower_len = rng.uniform(0.15, 0.4) * (b_up + b_lo)
        teeth |= (yy <= bot_y) & (yy > bot_y - lower_len) & ~upper
    gaps = np.abs(((xx - cx) / tooth_w + 0.5) % 1.0 - 0.5) < 0.06
    shade = (1.0 - 0.55 * u ** 2)[..., None]
    rgb = np.where((teeth & ~gaps)[..., None], tooth_rgb * shade, rgb)
    rgb = np.where(gaps[..., None] & teeth[..., None], tooth_rgb * shade * 0.6, rgb)
    rgb = rgb * (opening > 0)[..., None]
    rgb_small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    lips_small = cv2.resize(lips, (w, h), interpolation=cv2.INTER_NEAREST)
    rgb_small[lips_small > 0] = 0
    out = np.dstack([np.clip(np.round(rgb_small), 0, 255).astype(np.uint8), lips_small])
    return out
