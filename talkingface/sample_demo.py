"""The built-in demo (`make demo`, `talkingface-demo`): the sample avatar speaks a sample clip.

Usage: talkingface-demo [--out OUT_DIR] [--wav AUDIO] [--avatar AVATAR_DIR]
       (in a clone: python scripts/make_demo.py ...)

Needs nothing but the package: the sample avatar is built on first use from the committed sample video
(about a minute on one CPU core) into the default avatar folder (``video_data/mini`` in a clone,
``$TALKINGFACE_HOME/video_data/mini`` or ``~/.cache/talkingface/video_data/mini`` when installed), then
the speech (default: the built-in English clip) is synthesised with the shipped checkpoints, on CPU
and without a display. Writes OUT_DIR/demo.mp4 (25 fps, with the audio) and OUT_DIR/demo_mouths.png
(8 output mouth crops to check the motion by eye). Sample licences: talkingface/assets/sample/NOTICE.md.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.paths import CLONE_ROOT, SAMPLE_SPEECH_EN
from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_input_file, check_output_file

log = logging.getLogger("talkingface.sample_demo")


def default_out_dir() -> Path:
    """``output/`` of the clone, else ``./output``."""
    return (CLONE_ROOT or Path.cwd()) / "output"


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: output/)")
    ap.add_argument("--wav", type=Path, default=SAMPLE_SPEECH_EN, help="speech to synthesise (any audio format)")
    ap.add_argument("--avatar", type=Path, default=None,
                    help="an existing mini avatar folder (default: the sample avatar, built on first use)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy imports: torch / OpenGL / MediaPipe load only after the arguments are valid (fast --help).
    from talkingface.mini_pipeline import synthesize
    from talkingface.sample_avatar import ensure_sample_mini_avatar
    from talkingface.util.media import check_audio

    check_audio(check_input_file(args.wav, "audio file"))  # bad audio fails before the avatar is built
    if args.avatar is not None and not (args.avatar / "assets" / "combined_data.json.gz").is_file():
        raise UserInputError(f"{args.avatar} is not a mini avatar (no assets/combined_data.json.gz): make one "
                             "with data_preparation_mini.py and data_preparation_web.py, or leave out --avatar")
    out = (args.out or default_out_dir()).resolve()
    result, mosaic = out / "demo.mp4", out / "demo_mouths.png"
    for path in (result, mosaic):
        check_output_file(path)
    avatar = ensure_sample_mini_avatar(args.avatar, progress=not args.quiet)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        stats = synthesize(avatar / "assets", args.wav, result, mosaic=mosaic, progress=not args.quiet)
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # leave no trace of a failed or interrupted run
        raise
    log.info("%d frames, %.2f s of audio in %.1f s", stats.frames, stats.audio_seconds, stats.total)
    print(f"demo written: {result}  (mouth mosaic: {mosaic})")
    return 0


def cli() -> None:
    """Console entry point ``talkingface-demo``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
