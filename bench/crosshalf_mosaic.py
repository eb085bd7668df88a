"""Real vs generated mouths of cross-half runs, side by side in one PNG (for looking, not scoring).

For each clip folder of a cross-half work directory (``python -m talkingface.eval crosshalf --workdir W``),
takes the real second half (``real_second_half.mp4``, its cached track) and the pipeline's output on the
same frames (``<pipeline>/<pipeline>.mp4``, tracked here), picks frames by the real mouth opening (from
closed to the widest) and tiles the lower-face crops: one row real, one row generated, per clip. Each tile
is labelled with the frame number and that frame's opening (real / generated).

Usage: python bench/crosshalf_mosaic.py WORKDIR OUT.png CLIP_STEM [CLIP_STEM ...] [--pipeline mini] [--frames 6]

The mosaic shows people of the sample data: write it outside the repository.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.tracking import track_video
from talkingface.util.cli import run_cli, script_parser
from talkingface.util.files import write_image
from talkingface.util.media import read_video
from talkingface.utils import inter_ocular, mouth_opening, safe_crop

TILE = 192
QUANTILES = (0.1, 0.5, 0.75, 0.9, 0.97, 1.0)  # of the real opening: mostly open mouths (teeth, inner mouth)


def lower_face(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Square crop centred on the mouth, 1.5 inter-ocular distances wide, resized to TILE."""
    if not np.isfinite(points[0, 0]):
        return np.zeros((TILE, TILE, 3), np.uint8)
    cx, cy = (points[13, :2] + points[14, :2]) / 2
    half = max(0.75 * float(inter_ocular(points)), 8.0)
    box = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
    return cv2.resize(safe_crop(frame, box), (TILE, TILE), interpolation=cv2.INTER_AREA)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.rectangle(tile, (0, 0), (TILE, 18), (0, 0, 0), -1)
    cv2.putText(tile, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def clip_rows(folder: Path, pipeline: str, n_frames: int) -> List[np.ndarray]:
    real_path, gen_path = folder / "real_second_half.mp4", folder / pipeline / f"{pipeline}.mp4"
    for needed in (real_path, gen_path, folder / "real_second_half.track.npz"):
        if not needed.is_file():
            raise UserInputError(f"{needed} not found (a cross-half run of --pipeline {pipeline} writes it)")
    with np.load(folder / "real_second_half.track.npz") as d:
        real_pts = d["points"]
    real = read_video(real_path)
    gen = read_video(gen_path)
    gen_pts = track_video(gen_path, progress=False).points
    n = min(len(real), len(gen), len(real_pts), len(gen_pts))
    opening_real, opening_gen = mouth_opening(real_pts[:n]), mouth_opening(gen_pts[:n])
    ok = np.flatnonzero(np.isfinite(opening_real) & np.isfinite(opening_gen))
    order = ok[np.argsort(opening_real[ok])]
    picks = sorted({int(order[min(len(order) - 1, int(q * (len(order) - 1)))]) for q in QUANTILES[-n_frames:]})
    top, bottom = [], []
    for i in picks:
        top.append(label(lower_face(real[i], real_pts[i]), f"real f{i} o={opening_real[i]:.2f}"))
        bottom.append(label(lower_face(gen[i], gen_pts[i]), f"{pipeline} f{i} o={opening_gen[i]:.2f}"))
    title = np.zeros((20, TILE * len(picks), 3), np.uint8)
    cv2.putText(title, folder.name, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1, cv2.LINE_AA)
    return [title, np.hstack(top), np.hstack(bottom)]


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("clips", nargs="+", help="clip folder names inside WORKDIR (the clip file stems)")
    ap.add_argument("--pipeline", default="mini")
    ap.add_argument("--frames", type=int, default=len(QUANTILES), choices=range(1, len(QUANTILES) + 1))
    args = ap.parse_args(argv)
    rows: List[np.ndarray] = []
    for clip in args.clips:
        rows += clip_rows(args.workdir / clip, args.pipeline, args.frames)
    width = max(r.shape[1] for r in rows)
    rows = [cv2.copyMakeBorder(r, 0, 0, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_image(args.out, np.vstack(rows))
    print(args.out)
    return 0


if __name__ == "__main__":
    run_cli(main)
