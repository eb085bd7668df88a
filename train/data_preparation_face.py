"""Prepare DH_live render-model training data from a folder of talking-face videos.

Usage: python train/data_preparation_face.py DATA_DIR [--out OUT_DIR]

For each video DATA_DIR/NAME.ext, writes OUT_DIR/NAME/ (OUT_DIR defaults to DATA_DIR) with
image/%06d.png (512x512 face crops, 25 fps, from 000001), keypoint_rotate.pkl ((N, 478, 3) face-mesh
points in crop pixels) and face_mat_mask.pkl ([pose matrices (N, 4, 4), personal mean face (141, 3)
with the jaw-mask contour in its oval rows]). A video that fails the face checks is reported in one
line and skipped; the exit status is 2 when no video could be prepared.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging

log = logging.getLogger("data_preparation_face")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("data_dir", type=Path, help="folder of videos")
    ap.add_argument("--out", type=Path, default=None, help="output root (default: DATA_DIR)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.preparation import PrepConfig, prepare_training_face
    from talkingface.util.media import list_videos

    videos = list_videos(args.data_dir, recursive=False)
    if not videos:
        raise UserInputError(f"no videos in {args.data_dir}")
    out_root = args.out or args.data_dir
    done = 0
    for video in videos:
        try:
            prepare_training_face(video, out_root / video.stem, PrepConfig(progress=not args.quiet))
            done += 1
        except UserInputError as exc:
            log.warning("skipped %s: %s", video.name, exc)  # stderr stays for the one error line
    log.info("prepared %d of %d videos into %s", done, len(videos), out_root)
    if done == 0:
        raise UserInputError(f"no video in {args.data_dir} could be prepared")
    return 0


if __name__ == "__main__":
    run_cli(main)
