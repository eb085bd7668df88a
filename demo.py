"""DH_live offline synthesis: make a prepared avatar say a speech file (docs/REFERENCE.md §1.5).

Usage: python demo.py AVATAR_DIR AUDIO OUT.mp4 [MODEL] [--ckpt render.pth] [--device auto]

AVATAR_DIR comes from data_preparation.py (circle.mp4 + keypoint_rotate.pkl). AUDIO is any speech
file ffmpeg reads. The video has one frame per 40 ms of audio, with the audio muxed in. The render
checkpoint defaults to checkpoint/render.pth (the original's published file loads as is); MODEL, the
original's optional 4th argument, names a file in checkpoint/ or a path.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.paths import user_checkpoint_dir
from talkingface.errors import UserInputError
from talkingface.util.cli import demo_parser, run_cli, setup_logging
from talkingface.util.files import check_input_file, check_output_file

log = logging.getLogger("demo")


def main(argv=None) -> int:
    ap = demo_parser(__doc__, "avatar_dir", "prepared avatar folder (data_preparation.py output)")
    ap.add_argument("model", nargs="?", default=None, help="render checkpoint name in checkpoint/ or a path")
    ap.add_argument("--ckpt", type=Path, default=None, help="render checkpoint (default: checkpoint/render.pth)")
    ap.add_argument("--audio_ckpt", type=Path, default=None, help="audio model (default: checkpoint/audio.pkl)")
    ap.add_argument("--basis", type=Path, default=None, help="pixel basis .npz (default: from the audio model's card)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.dhlive_pipeline import synthesize
    from talkingface.util.media import check_audio

    if not args.avatar_dir.is_dir():
        raise UserInputError(f"avatar folder not found: {args.avatar_dir}")
    check_output_file(args.out, "output video")
    check_audio(check_input_file(args.audio, "audio file"))  # bad audio fails before the models load
    ckpt = args.ckpt
    if ckpt is None and args.model is not None:
        named = Path(args.model)
        ckpt = named if named.is_file() else user_checkpoint_dir() / args.model
    synthesize(args.avatar_dir, args.audio, args.out, ckpt, args.audio_ckpt, args.basis, args.device)
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
