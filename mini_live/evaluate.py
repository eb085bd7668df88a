"""Held-out self-reconstruction of DINet_mini versus warp-only (mouth-window PSNR/SSIM).

    python mini_live/evaluate.py --ckpt checkpoint/DINet_mini/epoch_40.pth VIDEO [VIDEO ...] [--json OUT.json]

See talkingface.eval.mini_selfrecon for the protocol. Prints a markdown table; ``--mosaic DIR`` writes
one PNG per clip (rows: source crop | GL input | warp-only | model | model with the interior blend |
true labels | model on true labels | real frame).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2

from talkingface.config.paths import DINET_MINI_CHECKPOINT
from talkingface.errors import UserInputError
from talkingface.util.cli import resolve_device, run_cli, setup_logging

log = logging.getLogger("mini_live.evaluate")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", type=Path, nargs="+", help="held-out clips (one person each)")
    parser.add_argument("--ckpt", type=Path, default=DINET_MINI_CHECKPOINT)
    parser.add_argument("--max_targets", type=int, default=30, help="evaluated frames per clip")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--mosaic", type=Path, default=None, help="folder for per-clip mosaic PNGs")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda")
    args = parser.parse_args(argv)
    setup_logging()
    from talkingface.eval.mini_selfrecon import METHODS, format_table, selfrecon_clip, summarize

    if not args.ckpt.is_file():
        raise UserInputError(f"checkpoint not found: {args.ckpt}")
    for v in args.videos:
        if not v.is_file():
            raise UserInputError(f"video not found: {v}")
    device = resolve_device(args.device)
    results = []
    for v in args.videos:
        r = selfrecon_clip(v, args.ckpt, max_targets=args.max_targets, device=device)
        mosaic = r.pop("mosaic")
        if args.mosaic is not None and mosaic is not None:
            args.mosaic.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.mosaic / f"{v.stem}.png"), cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR))
        results.append(r)
        log.info("%s: mouth PSNR/SSIM %s", v.name, ", ".join(f"{k} {r[k]['psnr']:.2f} / {r[k]['ssim']:.4f}"
                                                              for k in METHODS))
    summary = summarize(results)
    print(format_table(results, summary))
    if args.json is not None:
        args.json.write_text(json.dumps({"checkpoint": str(args.ckpt), "clips": results, "mean": summary}, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main)
