"""Train FaCo-Net (40 lip + 60 eye points -> dense 478-point face) on clip records of real faces.

Usage:
  python train_moda/train_faco.py DATA_DIR... OUT [--max_steps 2000] [--lambda_l1 100] [--resume]

Uses every face frame of the records (speech pseudo-label records are skipped: they have no face);
records whose name contains a --val pattern are the validation set (default: MEAD W011, the unseen
subject). Writes OUT/last.pth (--resume continues exactly), TensorBoard logs in OUT/log and at the
end OUT/faco.pth with its card (faco.json / faco.md), including the dense error of FaCo and of the two
baselines (mean mesh with lips and eyes pasted in; ridge regression) on the validation frames.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.flags import add_config_flags, config_dict, config_from_args
from talkingface.config.moda import FaCoTrainConfig
from talkingface.errors import UserInputError
from talkingface.eval.heldout import never_train_on
from talkingface.eval.motion import dense_error_table
from talkingface.moda_recipes import add_run_args, select_records, set_threads, write_card
from talkingface.moda_training import FaCoTrainer, faco_rows
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_dir

log = logging.getLogger("train_faco")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("data", nargs="+", type=Path, help="folders of *.moda.npz records")
    ap.add_argument("out", type=Path, help="output folder")
    add_config_flags(ap, FaCoTrainConfig)
    add_run_args(ap, val_default=" (default: W011)")
    args = ap.parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    if args.max_steps < 1 or args.batch_size < 2:
        raise UserInputError("--max_steps >= 1 and --batch_size >= 2 are required")
    check_output_dir(args.out)
    train_recs, val_recs = select_records(args.data, args.exclude, args.val or ["W011"])
    train_recs = [r for r in train_recs if not r.lip_only]
    val_recs = [r for r in val_recs if not r.lip_only]
    if not train_recs or not val_recs:
        raise UserInputError("FaCo needs face records for both training and validation")
    train, val = faco_rows(train_recs), faco_rows(val_recs)
    log.info("%d training frames from %d clips, %d validation frames", len(train["dense"]), len(train_recs),
             len(val["dense"]))
    cfg = config_from_args(FaCoTrainConfig, args)
    trainer = FaCoTrainer(cfg, train, val, args.out, resume=args.resume)
    result = trainer.run()
    path = trainer.export(args.out / "faco.pth")
    table = dense_error_table(trainer.g, train, val)
    write_card(path, "FaCo-Net (sparse lips and eyes -> dense 478-point face)", {
        "steps": result["steps"], "wall_s": result["wall_s"], "metrics": {"val_dense_error_px": table},
        "train_records": sorted(r.source for r in train_recs), "val_records": sorted(r.source for r in val_recs),
        "held_out": sorted(never_train_on()), "config": config_dict(cfg)})
    log.info("wrote %s: %s", path, table)
    return 0


if __name__ == "__main__":
    run_cli(main)
