"""Train the DH_live render model (DINet_five_Ref) on prepared videos (docs/REFERENCE.md §6.1 step 3).

    python train/train_render_model.py --train_data DATA_DIR [--out_dir checkpoint/Dinet_five_ref]
        [--max_steps N] [--resume epoch_k.pth] [--vgg_weights vgg19.pth] [--device auto]

DATA_DIR holds the folders written by ``train/data_preparation_face.py``. Checkpoints (the original's
training layout) go to OUT_DIR/epoch_k.pth every 2 epochs and OUT_DIR/last.pth at the end, the
generator alone to OUT_DIR/render.pth (+ render.json model card); TensorBoard logs to OUT_DIR/log/train.
"""
from __future__ import annotations

import json
import logging
from talkingface.config.flags import add_config_flags, config_from_args
from talkingface.config.training import DINetTrainingOptions
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging

log = logging.getLogger("train_render_model")


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch default; 1 is much faster on a busy shared CPU)")
    add_config_flags(parser, DINetTrainingOptions)
    args = parser.parse_args(argv)
    setup_logging()
    # torch and the trainer load after parsing, so --help and bad arguments answer at once
    import torch

    from talkingface.render_training import RenderTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    opts = config_from_args(DINetTrainingOptions, args, device=resolve_device(args.device))
    summary = RenderTrainer(opts).run()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main)
