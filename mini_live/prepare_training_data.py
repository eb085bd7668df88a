"""Prepare DH_live_mini training data: face mesh, mouth canvases and teeth labels of each video.

    python mini_live/prepare_training_data.py OUT_DIR VIDEO [VIDEO ...]

Writes one ``OUT_DIR/<folder>_<video name>.npz`` per video (see talkingface.data.DHLive_mini_dataset)
and a label mosaic ``OUT_DIR/<folder>_<video name>_labels.png`` of its six most open frames for a visual check.
Videos already prepared are skipped unless --overwrite.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_input_file, check_output_dir, write_image

log = logging.getLogger("prepare_training_data")


def label_mosaic(video) -> np.ndarray:
    """Six most open frames: canvas | painted labels, stacked (BGR uint8, 2x enlarged)."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.teeth_labels import paint_labels

    rows = [np.concatenate([video.images[i], paint_labels(video.images[i], video.labels[i])], 1)
            for i in np.argsort(video.opening)[-6:]]
    mosaic = np.concatenate(rows, 0)[..., ::-1]
    return cv2.resize(mosaic, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--max_frames", type=int, default=None, help="frames per video (default: all)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.DHLive_mini_dataset import prepare_video, save_prepared

    for video in args.videos:
        check_input_file(video, "video")
    check_output_dir(args.out_dir)
    for video in args.videos:
        stem = f"{video.parent.name}_{video.name}"
        out = args.out_dir / f"{stem}.npz"
        if out.exists() and not args.overwrite:
            log.info("%s exists, skipped", out)
            continue
        prepared = prepare_video(video, max_frames=args.max_frames, progress=True)
        save_prepared(prepared, out)
        write_image(args.out_dir / f"{stem}_labels.png", label_mosaic(prepared))
        log.info("%s: %d frames, %d with teeth", video.name, len(prepared),
                 int(((prepared.labels == 4) | (prepared.labels == 5)).any(axis=(1, 2)).sum()))
    return 0


if __name__ == "__main__":
    run_cli(main)
