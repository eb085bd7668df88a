"""Train MODA-lite (speech -> lips, eyes, head pose, torso) on clip records of data_preparation_moda.py.

Usage:
  python train_moda/train_moda.py DATA_DIR... OUT --stage lips --max_steps 1500
  python train_moda/train_moda.py DATA_DIR... OUT2 --stage all --init OUT/moda_lite.pth --max_steps 1500

Stage ``lips`` trains only the lip head's loss on speech pseudo-labels and real audio-visual clips;
stage ``all`` adds eyes and head from video clips (silent clips read a learned no-audio token).
Writes OUT/last.pth every --save_every steps (--resume continues exactly), TensorBoard logs in
OUT/log, and at the end OUT/moda_lite.pth with its card (moda_lite.json / moda_lite.md).
Records of held-out clips (talkingface/eval/heldout.py) are refused.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.flags import add_config_flags, config_dict, config_from_args
from talkingface.config.moda import MODAConfig, MODATrainConfig
from talkingface.data.moda_dataset import prepare
from talkingface.errors import UserInputError
from talkingface.eval.heldout import never_train_on
from talkingface.moda_training import MODATrainer
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_dir
from talkingface.moda_recipes import add_run_args, select_records, set_threads, write_card

log = logging.getLogger("train_moda")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("data", nargs="+", type=Path, help="folders of *.moda.npz records")
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--init", type=Path, default=None, help="start from this moda_lite.pth (or a run's last.pth)")
    add_config_flags(ap, MODATrainConfig)
    add_config_flags(ap, MODAConfig, only=("audio_head", "prob_mode", "vae_pe_fix", "vae_causal",
                                           "lip_from_spec_only", "latent_dim", "latent_chunk", "z_to_query"))
    ap.set_defaults(speech_fraction=None)  # None: 0.75 for --stage lips, 0.3 for all
    add_run_args(ap)
    args = ap.parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    if args.max_steps < 1 or args.batch_size < 2 or args.window < 2:
        raise UserInputError("--max_steps >= 1, --batch_size >= 2 and --window >= 2 are required")
    model = config_from_args(MODAConfig, args, no_audio_token=True)
    frac = args.speech_fraction if args.speech_fraction is not None else (0.75 if args.stage == "lips" else 0.3)
    cfg = config_from_args(MODATrainConfig, args, speech_fraction=frac, model=model)
    check_output_dir(args.out)
    train_recs, val_recs = select_records(args.data, args.exclude, args.val or [])
    log.info("%d training records (%d speech), %d validation", len(train_recs),
             sum(r.lip_only for r in train_recs), len(val_recs))
    train = [prepare(r, model) for r in train_recs]
    val = [prepare(r, model) for r in val_recs]
    trainer = MODATrainer(cfg, train, val, args.out, resume=args.resume, init=args.init)
    result = trainer.run()
    path = trainer.export(args.out / "moda_lite.pth")
    write_card(path, "MODA-lite (speech -> lips, eyes, head pose)", {
        "steps": result["steps"], "wall_s": result["wall_s"], "metrics": {"val": result["val"]},
        "train_records": sorted(r.source for r in train_recs), "val_records": sorted(r.source for r in val_recs),
        "held_out": sorted(never_train_on()), "init": str(args.init) if args.init else None,
        "config": config_dict(cfg)})
    log.info("wrote %s (%s)", path, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
