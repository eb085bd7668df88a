"""Prepare a mini (DH_live_mini) avatar from a video of one person (best: silent, mouth mostly closed).

Usage: python data_preparation_mini.py VIDEO OUT_DIR [--resize]

Writes OUT_DIR/data/processed.mp4 (25 fps, no audio) and OUT_DIR/data/processed.pkl (float64 array
(N, 478, 3): face-mesh points in pixels, tracked on every frame). Then run
`python data_preparation_web.py OUT_DIR` to build the asset pack. Tight crops (chin at the edge) are
padded; 3/4 views are accepted up to 45 deg yaw (measured, logged); a jump cut keeps the longest
cut-free stretch (logged); a talking video is detected and logged, and its asset pack takes its
reference from a closed-mouth frame (the output mouth follows the audio). Bad input (unreadable video,
no face, several faces, face turned further, mouth outside the picture, too short) exits with status
2 and one line, leaving no OUT_DIR.
"""
from __future__ import annotations

from talkingface.mediapipe_utils import add_avatar_source_args, avatar_rules
from talkingface.util.cli import run_cli, script_parser, setup_logging


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    add_avatar_source_args(ap)
    ap.add_argument("--resize", action="store_true", help="scale down to fit 720x1280 first")
    args = ap.parse_args(argv)
    rules = avatar_rules(args)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.preparation import PrepConfig, prepare_mini_avatar

    cfg = PrepConfig(progress=not args.quiet, rules=rules)
    prepare_mini_avatar(args.video, args.out_dir, cfg, resize=args.resize)
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
