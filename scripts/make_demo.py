"""The `make demo` job: prepare the default sample avatar, build its asset pack, synthesise speech.

Usage: python scripts/make_demo.py [--data DATA_DIR] [--out OUT_DIR] [--wav WAV]

Runs, with the shipped checkpoints, on CPU and without a display:
  1. data_preparation_mini.py DATA/dh_live/video_data/000002/video.mp4 video_data/mini
  2. data_preparation_web.py  video_data/mini
  3. demo_mini.py             video_data/mini/assets WAV OUT/demo.mp4 --mosaic OUT/demo_mouths.png
Steps 1-2 are skipped when the pack already exists (demo_avatar.py uses the same default avatar). The sample media are read from DATA (default:
$TALKINGFACE_DATA or ../shared/data) and never copied into the repository.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from talkingface.errors import UserInputError
from talkingface.sample_avatar import DEFAULT_MINI_AVATAR, ensure_sample_mini_avatar
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.sample_data import find_sample_data

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WAV = ("speech", "speech_orig_16k.wav")
log = logging.getLogger("make_demo")


def _run(args) -> None:
    cmd = [sys.executable, *map(str, args)]
    log.info("$ %s", " ".join(str(a) for a in args))
    if subprocess.run(cmd, cwd=REPO).returncode != 0:
        raise UserInputError(f"step failed: {' '.join(str(a) for a in args)}")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--data", type=Path, default=None, help="sample data folder (default: auto)")
    ap.add_argument("--out", type=Path, default=REPO / "output", help="output folder")
    ap.add_argument("--wav", type=Path, default=None, help="speech to synthesise (default: a sample wav)")
    args = ap.parse_args(argv)
    setup_logging()
    data = args.data if args.data is not None and args.data.is_dir() else find_sample_data()
    if data is None:
        raise UserInputError("sample data not found: set $TALKINGFACE_DATA or pass --data "
                             "(or run demo_mini.py on your own asset pack and wav)")
    wav = args.wav or data.joinpath(*DEFAULT_WAV)
    if not wav.is_file():
        raise UserInputError(f"sample file missing: {wav}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    avatar = ensure_sample_mini_avatar(DEFAULT_MINI_AVATAR, data=data)
    result = out / "demo.mp4"
    _run(["demo_mini.py", avatar / "assets", wav, result, "--mosaic", out / "demo_mouths.png", "--quiet"])
    print(f"demo written: {result}  (mouth mosaic: {out / 'demo_mouths.png'})")
    return 0


if __name__ == "__main__":
    run_cli(main)
