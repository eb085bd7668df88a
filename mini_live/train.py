"""Train DINet_mini (the DH_live_mini mouth renderer) on prepared videos (docs/REFERENCE.md §5.6).

    python mini_live/prepare_training_data.py DATA_DIR videos...      # once
    python mini_live/train.py DATA_DIR --out checkpoint/DINet_mini --val W011_ --val d20_zh

Recipe, validation and outputs: :mod:`talkingface.mini_training` (hyper-parameter flags below,
defaults = the original's). Checkpoints ``OUT/epoch_N.pth`` use the original's training layout
``{"epoch", "step", "state_dict": {"net_g", "net_d"}, "optimizer": {"net_g", "net_d"}}`` with a
``.json`` card (resolved config, data, metrics); ``--resume`` continues from one, ``--init`` starts
G from any DINet_mini weights with a fresh schedule. Runs on CPU (``--threads``) or CUDA.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.flags import add_config_flags, config_from_args
from talkingface.config.paths import user_checkpoint_dir
from talkingface.config.training import MiniTrainConfig
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging

log = logging.getLogger("mini_live.train")


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("data_dir", type=Path, help="folder of prepared *.npz videos")
    parser.add_argument("--out", type=Path, default=user_checkpoint_dir() / "DINet_mini")
    parser.add_argument("--resume", type=Path, default=None, help="training checkpoint to continue from")
    parser.add_argument("--init", type=Path, default=None,
                        help="start G from these weights (any DINet_mini layout); a fresh schedule, unlike --resume")
    parser.add_argument("--vgg_weights", default=None, help="ImageNet VGG19 weights file (else L1+SSIM fallback)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--workers", type=int, default=1, help="data-loading worker processes")
    parser.add_argument("--max_minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_config_flags(parser, MiniTrainConfig)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    # torch and the trainer load after parsing, so --help and bad arguments answer at once
    import torch

    from talkingface.mini_training import train_mini

    if args.threads:
        torch.set_num_threads(args.threads)
    train_mini(config_from_args(MiniTrainConfig, args), args.data_dir, args.out, resolve_device(args.device),
               resume=args.resume, init=args.init, vgg_weights=args.vgg_weights, workers=args.workers,
               max_minutes=args.max_minutes)
    return 0


if __name__ == "__main__":
    run_cli(main)
