"""Build the canonical mean face (talkingface/assets/mean_face.npz) from real talking-face videos.

Usage: python scripts/build_mean_face.py VIDEO_OR_DIR [...] [--out PATH] [--stride 3]

Every frame's 478-point face mesh is similarity-aligned (generalised Procrustes) and averaged; the
result is placed at the canonical scale documented in talkingface/run_utils.py. The shipped table was
built from the MEAD, VoxCeleb2 and dh_live video_data clips of the sample data (GRID and misc/d20_zh
are kept out: they are evaluation clips).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from talkingface.errors import UserInputError
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.run_utils import MEAN_FACE_PATH, build_mean_face
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.media import list_videos, read_video
from talkingface.util.files import atomic_write, check_output_file

log = logging.getLogger("build_mean_face")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("inputs", nargs="+", help="videos or folders of videos")
    ap.add_argument("--out", type=Path, default=MEAN_FACE_PATH, help="output .npz (default: the shipped table)")
    ap.add_argument("--stride", type=int, default=3, help="use every k-th frame")
    args = ap.parse_args(argv)
    setup_logging()
    check_output_file(args.out)
    videos = []
    for item in map(Path, args.inputs):
        if item.is_dir():
            videos += list_videos(item)
        elif item.is_file():
            videos.append(item)
        else:
            raise UserInputError(f"not found: {item}")
    sets, used = [], []
    for video in videos:
        lm = landmarks_for_video(read_video(video), progress=False, allow_missing=True)[::args.stride]
        lm = lm[np.isfinite(lm).all(axis=(1, 2))]
        if len(lm):
            sets.append(lm)
            used.append(video.name)
        log.info("%s: %d frames", video.name, len(lm))
    if not sets:
        raise UserInputError("no face found in any input video")
    mean = build_mean_face(sets)
    with atomic_write(args.out) as tmp:
        np.savez(tmp, mean_face=mean.astype(np.float32), videos=np.array(used), frames=sum(len(s) for s in sets))
    log.info("wrote %s from %d videos, %d frames", args.out, len(used), sum(len(s) for s in sets))
    return 0


if __name__ == "__main__":
    run_cli(main)
