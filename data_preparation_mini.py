"""Prepare a mini (DH_live_mini) avatar from a silent video of one person, mouth mostly closed.

Usage: python data_preparation_mini.py VIDEO OUT_DIR [--resize]

Writes OUT_DIR/data/processed.mp4 (25 fps, no audio) and OUT_DIR/data/processed.pkl (float64 array
(N, 478, 3): face-mesh points in pixels, tracked on every frame). Then run
`python data_preparation_web.py OUT_DIR` to build the asset pack. Bad input (unreadable video, no face,
several faces, profile, too short) exits with status 2 and one line, leaving no OUT_DIR.
"""
from __future__ import annotations

from pathlib import Path

from talkingface.util.cli import run_cli, script_parser, setup_logging


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("video", type=Path, help="avatar source video (any format, any fps)")
    ap.add_argument("out_dir", type=Path, help="output folder (created)")
    ap.add_argument("--resize", action="store_true", help="scale down to fit 720x1280 first")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.preparation import PrepConfig, prepare_mini_avatar

    prepare_mini_avatar(args.video, args.out_dir, PrepConfig(progress=not args.quiet), resize=args.resize)
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
