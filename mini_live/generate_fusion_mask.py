"""The two fusion masks of the mini pipeline (docs/REFERENCE.md §5.5), computed by code.

Nothing is stored in the repository: :func:`load_fusion_masks` computes both masks (well under a
millisecond); the command line writes them as PNGs for inspection.

- ``face_fusion_mask.png``: 128x128 grey. Pixel value min(255, ramp_step * d), d = distance in pixels
  from the crop border (0 on the outermost ring), so with the default step 16 it ramps 0 -> 255 over
  16 px. It multiplies the GL warp field, so the deformation is 0 at the crop border.
- ``mouth_fusion_mask.png``: 72x72 grey stored as RGB. 19 nested rounded rectangles (corner radius 25,
  inset 1 px each, grey 14 i for i = 0..18) on a 100x100 canvas; the 20-px border bands are then
  squeezed (top to 8 px, bottom to 10, sides to 10) and the result resized to 72x72: about 0 at the
  edge, 252 inside. It blends the network's mouth patch into the warped crop.

    python mini_live/generate_fusion_mask.py --out DIR   # writes both PNGs into DIR
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from talkingface.util.cli import ScriptParser, run_cli, setup_logging
from talkingface.util.files import check_output_dir, write_image

log = logging.getLogger(__name__)

FACE_MASK_NAME = "face_fusion_mask.png"
MOUTH_MASK_NAME = "mouth_fusion_mask.png"


def face_fusion_mask(size: int = 128, ramp_step: int = 16) -> np.ndarray:
    """(size, size) uint8: min(255, ramp_step * distance to the nearest border pixel row/column)."""
    idx = np.arange(size)
    d1 = np.minimum(idx, size - 1 - idx)
    dist = np.minimum(d1[:, None], d1[None, :])
    return np.minimum(255, ramp_step * dist).astype(np.uint8)


def _rounded_rect_levels(canvas: int, levels: int, radius: float) -> np.ndarray:
    """Per pixel of a canvas x canvas grid, how many nested rounded rectangles (inset 0..levels-1 px)
    contain its centre, minus one (-1 outside the outermost)."""
    c = np.arange(canvas) + 0.5
    y, x = np.meshgrid(c, c, indexing="ij")
    out = np.full((canvas, canvas), -1, np.int32)
    for i in range(levels):
        x0, x1 = i, canvas - i
        dx = np.maximum(np.maximum(x0 + radius - x, x - (x1 - radius)), 0.0)
        dy = np.maximum(np.maximum(x0 + radius - y, y - (x1 - radius)), 0.0)
        inside = (dx ** 2 + dy ** 2 <= radius ** 2) & (x >= x0) & (x <= x1) & (y >= x0) & (y <= x1)
        out[inside] = i
    return out


def _squeeze(img: np.ndarray, band: int, top: int, bottom: int, side: int) -> np.ndarray:
    """Resample the ``band``-px border strips of ``img`` to the given widths, keeping the interior."""
    def along(a: np.ndarray, first: int, last: int, axis: int) -> np.ndarray:
        n = a.shape[axis]
        parts = np.split(a, [band, n - band], axis=axis)
        out = []
        for part, width in zip(parts, (first, n - 2 * band, last)):
            shape = (part.shape[1], width) if axis == 0 else (width, part.shape[0])
            out.append(cv2.resize(part, shape, interpolation=cv2.INTER_AREA))
        return np.concatenate(out, axis=axis)

    return along(along(img, top, bottom, 0), side, side, 1)


def mouth_fusion_mask(size: Tuple[int, int] = (72, 72), canvas: int = 100, levels: int = 19, step: int = 14,
                      radius: float = 25.0, band: int = 20, squeeze: Tuple[int, int, int] = (8, 10, 10)) -> np.ndarray:
    """(h, w) uint8 rounded-rectangle feather (see the module docstring); size is (w, h)."""
    grey = (_rounded_rect_levels(canvas, levels, radius) * step).clip(0, 255).astype(np.float32)
    top, bottom, side = squeeze
    squeezed = _squeeze(grey, band, top, bottom, side)
    return np.clip(np.round(cv2.resize(squeezed, size, interpolation=cv2.INTER_AREA)), 0, 255).astype(np.uint8)


def write_fusion_masks(out_dir: Path) -> Tuple[Path, Path]:
    """Write both masks into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    face_path, mouth_path = out_dir / FACE_MASK_NAME, out_dir / MOUTH_MASK_NAME
    write_image(face_path, face_fusion_mask())
    write_image(mouth_path, cv2.cvtColor(mouth_fusion_mask(), cv2.COLOR_GRAY2BGR))
    return face_path, mouth_path


def load_fusion_masks() -> Tuple[np.ndarray, np.ndarray]:
    """(face 128x128, mouth 72x72) float32 in [0, 1], computed from code (cheap; no files involved)."""
    return face_fusion_mask().astype(np.float32) / 255.0, mouth_fusion_mask().astype(np.float32) / 255.0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = ScriptParser(description="Write face_fusion_mask.png and mouth_fusion_mask.png.")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    check_output_dir(args.out)
    for p in write_fusion_masks(args.out):
        log.info("wrote %s", p)
    return 0


if __name__ == "__main__":
    run_cli(main)
