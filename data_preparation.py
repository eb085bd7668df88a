"""Prepare a DH_live avatar from a video of one person.

Usage: python data_preparation.py VIDEO OUT_DIR

Writes OUT_DIR/circle.mp4 (the video at 25 fps followed by its reverse, a seamless loop of 2N frames)
and OUT_DIR/keypoint_rotate.pkl (float64 array (2N, 478, 3): MediaPipe face-mesh points in pixels,
x, y, z*width). Every frame must show exactly one frontal face, inside the frame, at least 100 px,
without sudden jumps; otherwise the script names the frame and exits with status 2, leaving no OUT_DIR.
"""
from __future__ import annotations

from pathlib import Path

from talkingface.util.cli import run_cli, script_parser, setup_logging


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("video", type=Path, help="avatar source video (any format, any fps)")
    ap.add_argument("out_dir", type=Path, help="output folder (created)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.preparation import PrepConfig, prepare_dhlive_avatar

    prepare_dhlive_avatar(args.video, args.out_dir, PrepConfig(progress=not args.quiet))
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
