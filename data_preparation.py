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

from pathlib import Path

from talkingface.errors import UserInputError
from talkingface.mediapipe_utils import FaceRules, MAX_AVATAR_YAW
from talkingface.util.cli import run_cli, script_parser, setup_logging


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("video", type=Path, help="avatar source video (any format, any fps)")
    ap.add_argument("out_dir", type=Path, help="output folder (created)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--max_yaw", type=float, default=MAX_AVATAR_YAW,
                    help="largest head turn in degrees accepted (default %(default)s: measured for the renderer)")
    args = ap.parse_args(argv)
    if not 0 < args.max_yaw <= 90:
        raise UserInputError(f"--max_yaw must be in (0, 90] degrees, not {args.max_yaw}")
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.preparation import PrepConfig, prepare_dhlive_avatar

    cfg = PrepConfig(progress=not args.quiet, rules=FaceRules(max_yaw=args.max_yaw))
    prepare_dhlive_avatar(args.video, args.out_dir, cfg)
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
