"""Strip a DINet_mini training checkpoint down to the generator for shipping.

    python mini_live/export_checkpoint.py RUN/epoch_40.pth checkpoint/DINet_mini/epoch_40.pth

Writes ``{"epoch", "step", "state_dict": {"net_g": ...}}`` - the layout the original's loaders read
(``ckpt["state_dict"]["net_g"]``) - without the discriminator and optimiser states, and copies the
training sidecar ``.json`` beside it.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import atomic_write, check_output_file, reading

log = logging.getLogger("export_checkpoint")


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("src", type=Path, help="training checkpoint (mini_live/train.py)")
    parser.add_argument("dst", type=Path, help="output .pth")
    args = parser.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.models.DINet_mini import DINet_mini

    check_output_file(args.dst)
    with reading(args.src, "training checkpoint"):
        ckpt = torch.load(str(args.src), map_location="cpu", weights_only=True)
        net_g = ckpt["state_dict"]["net_g"]
        DINet_mini(3, 12).load_state_dict(net_g, strict=True)
    with atomic_write(args.dst) as tmp:
        torch.save({"epoch": ckpt.get("epoch"), "step": ckpt.get("step"), "state_dict": {"net_g": net_g}}, tmp)
    side = args.src.with_suffix(".json")
    if side.is_file():
        shutil.copyfile(side, args.dst.with_suffix(".json"))
    log.info("wrote %s (%.1f kB)", args.dst, args.dst.stat().st_size / 1024)
    return 0


if __name__ == "__main__":
    run_cli(main)
