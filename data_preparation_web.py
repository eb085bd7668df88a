"""Build the DH_live_mini asset pack (web/demo format) from a prepared mini avatar.

Usage: python data_preparation_web.py OUT_DIR [--ckpt checkpoint/DINet_mini/epoch_40.pth]

Reads OUT_DIR/data/processed.mp4 and OUT_DIR/data/processed.pkl (from data_preparation_mini.py) and
writes OUT_DIR/assets/01.mp4 + OUT_DIR/assets/combined_data.json.gz in the original's JSON layout
(rects, poses, wrap mesh, ref_data). Deterministic: the same inputs give the same pack.
"""
from __future__ import annotations

from pathlib import Path

from talkingface.config.paths import DINET_MINI_CHECKPOINT
from talkingface.data.teeth_labels import DEFAULT_TEETH_SEED
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("out_dir", type=Path, help="folder given to data_preparation_mini.py")
    ap.add_argument("--ckpt", type=Path, default=DINET_MINI_CHECKPOINT, help="DINet_mini weights for ref_data")
    ap.add_argument("--teeth_seed", type=int, default=DEFAULT_TEETH_SEED,
                    help="seed of the procedural teeth references (used when the video never shows teeth)")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.mini_pack import write_avatar_pack

    write_avatar_pack(args.out_dir, checkpoint=args.ckpt, teeth_seed=args.teeth_seed,
                      device=resolve_device(args.device))
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
