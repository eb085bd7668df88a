"""How real a rendered mouth looks: mouth sharpness and teeth visibility, generated versus real.

    python -m talkingface.eval.mouth_quality VIDEO [--gt REAL_VIDEO] [--png DIR] [--json OUT.json]

Both measures work on a **mouth crop** cut from each frame with its face mesh (478 MediaPipe
landmarks): a square of side ``crop_scale`` x the inter-ocular distance (outer eye corners 33-263),
centred on the mean of the 20 outer-lip landmarks, rotated so the eye line is horizontal, resampled
to ``crop_size`` pixels (area averaging when shrinking). The crop is therefore the same part of the
face at the same scale whatever the video's resolution or the head's roll.

- **Mouth sharpness**: the variance of the Laplacian (3x3 kernel, 8-bit grey levels) of the crop over
  the mouth region (the outer-lip polygon grown by ``mouth_margin_px`` = 4 crop pixels: lips, opening
  and their edges, not the cheeks, whose warp artefacts would count as detail), averaged over the
  frames with a face. Report it as generated / real on the same frames: a blurry
  rendered mouth scores well below 1.
- **Teeth visibility**: among the **open-mouth** frames (inner-lip gap / inter-ocular distance, the
  ``talkingface.utils.mouth_opening`` signal, above ``open_threshold`` = 0.08), the share whose
  inner-lip polygon (eroded by ``erode_px``) holds teeth-bright pixels. A pixel is teeth-bright when,
  relative to the median of the same frame's lip ring (outer-lip polygon minus the opening grown by
  ``lip_gap_px``), its HSV value is at least 0.9 x the lips', its HSV saturation at most 0.7 x the
  lips' and its redness (Lab a* above neutral) at most 0.7 x the lips'. A frame "shows teeth" when such
  pixels cover at least 4 % of the polygon and 6 pixels. Teeth are as bright as lit lips or brighter,
  much less saturated and less red; the lips, tongue and gums are red, the cavity is dark. Measuring
  relative to the lips of the same frame keeps the rule independent of exposure, white balance and
  skin tone (a rule relative to the skin failed on pale skin, where teeth and skin look alike).

The thresholds were set by eye on contact sheets of real open-mouth crops (``--png`` writes them:
crop | crop with the teeth pixels green and the eroded opening outlined red, a white bar under
frames that show teeth) of seven clips with dark, pink-lit and bright-teeth mouths and pale to dark
skin: teeth are flagged where they are visible; small, faint teeth at a narrow gap are sometimes
missed (the rule errs towards "no teeth"). Frames are BGR uint8 throughout.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.tracking import track_video
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import write_image, write_text
from talkingface.util.media import read_video
from talkingface.utils import MP_LEFT_EYE_OUTER, MP_LIPS_INNER, MP_LIPS_OUTER, MP_RIGHT_EYE_OUTER, mouth_opening

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MouthQualityConfig:
    """Crop geometry and the teeth rule (see the module docstring)."""

    crop_size: int = 96  # crop side in pixels
    crop_scale: float = 1.0  # crop side / inter-ocular distance (a wide smile spans ~0.8)
    open_threshold: float = 0.08  # mouth_opening above this = an open-mouth frame
    erode_px: int = 2  # inner-lip polygon erosion (crop pixels)
    mouth_margin_px: int = 4  # the sharpness region: outer-lip polygon grown by this (crop pixels)
    lip_gap_px: int = 2  # lip pixels this close to the opening are left out of the lip colour
    teeth_value_ratio: float = 0.9  # teeth V >= this x the lips' median V
    teeth_saturation_ratio: float = 0.7  # teeth S <= this x the lips' median S
    teeth_redness_ratio: float = 0.7  # teeth Lab a* (redness above neutral) <= this x the lips' median a*
    teeth_min_share: float = 0.04  # of the eroded inner-lip polygon
    teeth_min_pixels: int = 6


DEFAULT = MouthQualityConfig()


def crop_matrix(lm: np.ndarray, cfg: MouthQualityConfig = DEFAULT) -> np.ndarray:
    """2x3 similarity transform from frame pixels to the mouth crop of (478, >=2) pixel landmarks."""
    lm = np.asarray(lm, np.float64)
    right, left = lm[MP_RIGHT_EYE_OUTER, :2], lm[MP_LEFT_EYE_OUTER, :2]
    eye = left - right
    angle = np.arctan2(eye[1], eye[0])
    scale = cfg.crop_size / max(cfg.crop_scale * float(np.hypot(*eye)), 1e-6)
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    centre = lm[MP_LIPS_OUTER, :2].mean(axis=0)
    rot = np.array([[c, -s], [s, c]])
    shift = cfg.crop_size / 2.0 - rot @ centre
    return np.hstack([rot, shift[:, None]])


def mouth_crop(frame_bgr: np.ndarray, lm: np.ndarray, cfg: MouthQualityConfig = DEFAULT
               ) -> Tuple[np.ndarray, np.ndarray]:
    """(crop_size x crop_size x 3 uint8 BGR crop, (478, 2) landmarks in crop pixels).

    A face larger than the crop is first shrunk with area averaging (a plain bilinear warp would
    alias and inflate the sharpness of large faces); the border is replicated where the crop leaves
    the frame.
    """
    mat = crop_matrix(lm, cfg)
    scale = float(np.hypot(mat[0, 0], mat[0, 1]))
    pts = np.asarray(lm, np.float64)[:, :2] @ mat[:, :2].T + mat[:, 2]
    image, warp = frame_bgr, mat
    if scale < 1.0:
        # cut a generous axis-aligned box first so only that region is resized
        centre = np.asarray(lm, np.float64)[MP_LIPS_OUTER, :2].mean(axis=0)
        half = int(np.ceil(cfg.crop_size / scale))
        x0, y0 = int(centre[0]) - half, int(centre[1]) - half
        h, w = frame_bgr.shape[:2]
        region = cv2.copyMakeBorder(frame_bgr[max(y0, 0):min(y0 + 2 * half, h), max(x0, 0):min(x0 + 2 * half, w)],
                                    max(-y0, 0), max(y0 + 2 * half - h, 0), max(-x0, 0), max(x0 + 2 * half - w, 0),
                                    cv2.BORDER_REPLICATE)
        image = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sx, sy = image.shape[1] / region.shape[1], image.shape[0] / region.shape[0]
        warp = mat.copy()
        warp[:, 0] /= sx
        warp[:, 1] /= sy
        warp[:, 2] += mat[:, :2] @ np.array([x0, y0], np.float64)
    crop = cv2.warpAffine(image, warp, (cfg.crop_size, cfg.crop_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop, pts


def sharpness(crop_bgr: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Variance of the 3x3 Laplacian of the crop's grey levels (0..255 scale), over ``mask`` (HxW bool)
    when given, else over the whole crop."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    return float(lap[mask].var()) if mask is not None and mask.any() else float(lap.var())


def mouth_region(lm_crop: np.ndarray, size: int, cfg: MouthQualityConfig = DEFAULT) -> np.ndarray:
    """HxW bool: the outer-lip polygon grown by ``cfg.mouth_margin_px`` (lips, opening and their edges)."""
    outer = _polygon_mask(lm_crop[MP_LIPS_OUTER], size)
    k = 2 * cfg.mouth_margin_px + 1
    return cv2.dilate(outer, np.ones((k, k), np.uint8)) > 0


def _polygon_mask(pts: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def teeth_mask(crop_bgr: np.ndarray, lm_crop: np.ndarray, cfg: MouthQualityConfig = DEFAULT
               ) -> Tuple[np.ndarray, np.ndarray]:
    """(teeth-bright pixels, eroded inner-lip polygon): two HxW bool masks of the crop."""
    size = crop_bgr.shape[0]
    inner_full = _polygon_mask(lm_crop[MP_LIPS_INNER], size)
    inner = inner_full
    if cfg.erode_px > 0:
        inner = cv2.erode(inner_full, np.ones((2 * cfg.erode_px + 1,) * 2, np.uint8))
    outer = _polygon_mask(lm_crop[MP_LIPS_OUTER], size)
    # the lip ring: inside the outer polygon, away from the opening's edge
    lips = (outer > 0) & (cv2.dilate(inner_full, np.ones((2 * cfg.lip_gap_px + 1,) * 2, np.uint8)) == 0)
    inner = inner > 0
    if lips.sum() < 16 or not inner.any():
        return np.zeros_like(inner), inner
    hsv = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2HSV)
    sat, val = hsv[..., 1].astype(np.float32), hsv[..., 2].astype(np.float32)
    red = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2LAB)[..., 1].astype(np.float32) - 128.0  # Lab a*, 0 = neutral
    lip_s, lip_v, lip_red = (float(np.median(x[lips])) for x in (sat, val, red))
    teeth = (inner & (val >= cfg.teeth_value_ratio * lip_v) & (sat <= cfg.teeth_saturation_ratio * max(lip_s, 1.0))
             & (red <= cfg.teeth_redness_ratio * max(lip_red, 1.0)))
    return teeth, inner


def shows_teeth(teeth: np.ndarray, inner: np.ndarray, cfg: MouthQualityConfig = DEFAULT) -> bool:
    n = int(teeth.sum())
    return n >= cfg.teeth_min_pixels and n >= cfg.teeth_min_share * max(int(inner.sum()), 1)


@dataclass
class MouthFrames:
    """Per-frame measurements of one video (N frames; NaN where the frame has no face).

    opening: mouth_opening; sharpness: Laplacian variance of the crop; teeth_share: teeth-bright
    pixels / eroded inner-lip polygon pixels (0 when the polygon is empty); teeth: the frame shows teeth.
    """

    opening: np.ndarray
    sharpness: np.ndarray
    teeth_share: np.ndarray
    teeth: np.ndarray


def measure_frames(frames: Iterable[np.ndarray], landmarks: np.ndarray, cfg: MouthQualityConfig = DEFAULT,
                   keep_crops: Optional[List] = None) -> MouthFrames:
    """Measure every frame (BGR uint8) against its (478, >=2) pixel landmarks (N x 478 x C; NaN rows skipped).

    ``keep_crops``: a list that receives (frame index, crop, teeth mask, inner mask) of each frame.
    """
    landmarks = np.asarray(landmarks, np.float64)
    n = len(landmarks)
    opening = np.full(n, np.nan)
    sharp = np.full(n, np.nan)
    share = np.full(n, np.nan)
    teeth = np.zeros(n, bool)
    for i, frame in enumerate(frames):
        if i >= n:
            break
        lm = landmarks[i]
        if not np.isfinite(lm[:, :2]).all():
            continue
        crop, pts = mouth_crop(frame, lm, cfg)
        opening[i] = float(mouth_opening(lm))
        sharp[i] = sharpness(crop, mouth_region(pts, crop.shape[0], cfg))
        t, inner = teeth_mask(crop, pts, cfg)
        share[i] = float(t.sum()) / max(int(inner.sum()), 1)
        teeth[i] = shows_teeth(t, inner, cfg)
        if keep_crops is not None:
            keep_crops.append((i, crop, t, inner))
    return MouthFrames(opening=opening, sharpness=sharp, teeth_share=share, teeth=teeth)


def summarize(m: MouthFrames, cfg: MouthQualityConfig = DEFAULT, frames: Optional[np.ndarray] = None) -> Dict:
    """{"frames", "sharpness" (mean), "open_frames", "teeth_rate" (share of open frames showing teeth;
    NaN without open frames)} over the frames with a face (or the given frame indices)."""
    valid = np.isfinite(m.sharpness)
    if frames is not None:
        sel = np.zeros_like(valid)
        sel[np.asarray(frames, int)] = True
        valid &= sel
    open_ = valid & (m.opening > cfg.open_threshold)
    n_open = int(open_.sum())
    return {"frames": int(valid.sum()),
            "sharpness": float(np.mean(m.sharpness[valid])) if valid.any() else float("nan"),
            "open_frames": n_open,
            "teeth_rate": float(m.teeth[open_].mean()) if n_open else float("nan")}


def compare(generated: Dict, real: Dict) -> Dict:
    """The two headline numbers from two :func:`summarize` results: sharpness generated / real, and the
    teeth rates side by side with their ratio (generated / real; NaN when the real clip never shows teeth)."""
    ratio = lambda a, b: float(a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")  # noqa: E731
    return {"sharpness_ratio": ratio(generated["sharpness"], real["sharpness"]),
            "teeth_rate": generated["teeth_rate"], "teeth_rate_real": real["teeth_rate"],
            "teeth_ratio": ratio(generated["teeth_rate"], real["teeth_rate"]),
            "open_frames": generated["open_frames"], "open_frames_real": real["open_frames"]}


def contact_sheet(crops: List, opening: np.ndarray, cfg: MouthQualityConfig = DEFAULT, max_tiles: int = 48,
                  cols: int = 8) -> Optional[np.ndarray]:
    """Open-mouth crops (most open first), each beside a copy with the teeth pixels in green and the
    eroded inner-lip outline in red; a black (white) bar under a tile = no teeth (teeth). BGR uint8."""
    tiles = []
    open_crops = [c for c in crops if opening[c[0]] > cfg.open_threshold]
    for i, crop, teeth, inner in sorted(open_crops, key=lambda c: -opening[c[0]])[:max_tiles]:
        marked = crop.copy()
        marked[teeth] = (0, 255, 0)
        contours, _ = cv2.findContours(inner.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(marked, contours, -1, (0, 0, 255), 1)
        bar = np.full((6, 2 * crop.shape[1], 3), 255 if shows_teeth(teeth, inner, cfg) else 0, np.uint8)
        tiles.append(np.vstack([np.hstack([crop, marked]), bar]))
    if not tiles:
        return None
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[k:k + cols]) for k in range(0, len(tiles), cols)]
    return np.vstack(rows)


def measure_video(path: Path, cfg: MouthQualityConfig = DEFAULT, keep_crops: Optional[List] = None) -> MouthFrames:
    """Decode a video at 25 fps, run the face mesh (cached per process) and measure every frame."""
    track = track_video(path, progress=False)
    return measure_frames(read_video(path), track.points, cfg, keep_crops)


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("video", type=Path, help="the (generated) video to measure")
    parser.add_argument("--gt", type=Path, default=None, help="the real video, same frames: report generated / real")
    parser.add_argument("--png", type=Path, default=None, help="folder for contact sheets of the open-mouth crops")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    for p in (args.video, args.gt):
        if p is not None and not p.is_file():
            raise UserInputError(f"video not found: {p}")
    result = {"config": asdict(DEFAULT)}
    for key, path in (("generated", args.video), ("real", args.gt)):
        if path is None:
            continue
        crops: List = [] if args.png is not None else None
        m = measure_video(path, keep_crops=crops)
        result[key] = summarize(m)
        if args.png is not None:
            sheet = contact_sheet(crops, m.opening)
            if sheet is not None:
                write_image(args.png / f"{path.stem}.{key}.teeth.png", sheet)
    if "real" in result:
        result["compare"] = compare(result["generated"], result["real"])
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
