"""Train the DH_live render model (DINet_five_Ref) on prepared videos (reference §6.1 step 3).

    python train/train_render_model.py --train_data DATA_DIR [--out_dir checkpoint/Dinet_five_ref]
        [--max_steps N] [--resume epoch_k.pth] [--vgg_weights vgg19.pth] [--device auto]

DATA_DIR holds the folders written by ``train/data_preparation_face.py``. Checkpoints (the original's
training layout) go to OUT_DIR/epoch_k.pth every 2 epochs and OUT_DIR/last.pth at the end, the
generator alone to OUT_DIR/render.pth (+ render.json model card); TensorBoard logs to OUT_DIR/log/train.
"""
from __future__ import annotations

import json
import logging
from dataclasses import fields

import torch

from talkingface.render_training import DINetTrainingOptions, RenderTrainer
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging

log = logging.getLogger("train_render_model")


def main(argv=None) -> int:
    defaults = DINetTrainingOptions()
    parser = script_parser(__doc__)
    parser.add_argument("--train_data", nargs="+", required=True, help="prepared data folder(s)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch default; 1 is much faster on a busy shared CPU)")
    for f in fields(DINetTrainingOptions):
        if f.name in ("train_data", "device"):
            continue
        default = getattr(defaults, f.name)
        kind = type(default) if default is not None else (int if f.name in ("max_steps",) else str)
        parser.add_argument(f"--{f.name}", type=kind, default=default, help=f"(default: {default})")
    args = parser.parse_args(argv)
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    opts = DINetTrainingOptions(**{f.name: getattr(args, f.name) for f in fields(DINetTrainingOptions)
                                   if f.name != "device"}, device=resolve_device(args.device))
    summary = RenderTrainer(opts).run()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main)
