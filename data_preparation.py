"""Prepare a DH_live avatar from a video of one person.

Usage: python data_preparation.py VIDEO OUT_DIR

Writes OUT_DIR/circle.mp4 (the video at 25 fps followed by its reverse, a seamless loop of 2N frames)
and OUT_DIR/keypoint_rotate.pkl (float64 array (2N, 478, 3): MediaPipe face-mesh points in pixels,
x, y, z*width). Frames must show exactly one face, at least 100 px, turned at most 45 deg (yaw measured
from the face mesh), its mouth and eyes in the picture (a tight crop is fine). A jump cut or unusable
frames split the video: the longest usable stretch is kept and the log says which frames. A video with
no usable stretch of 1 s exits with status 2 and one line naming the reason, leaving no OUT_DIR.
"""
from __future__ import annotations

from talkingface.mediapipe_utils import add_avatar_source_args, avatar_rules
from talkingface.util.cli import run_cli, script_parser, setup_logging


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    add_avatar_source_args(ap)
    args = ap.parse_args(argv)
    rules = avatar_rules(args)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.preparation import PrepConfig, prepare_dhlive_avatar

    cfg = PrepConfig(progress=not args.quiet, rules=rules)
    prepare_dhlive_avatar(args.video, args.out_dir, cfg)
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
