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
from dataclasses import asdict
from pathlib import Path

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
    ap.add_argument("--stage", choices=["lips", "all"], default="all")
    ap.add_argument("--init", type=Path, default=None, help="start from this moda_lite.pth (or a run's last.pth)")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--window", type=int, default=100, help="frames per training window")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--speech_fraction", type=float, default=None,
                    help="share of speech pseudo-label windows (default 0.75 lips, 0.3 all)")
    ap.add_argument("--audio_head", choices=["conv", "mel"], default="conv")
    ap.add_argument("--prob_mode", choices=["moda", "cvae"], default="moda")
    ap.add_argument("--kl_weight", type=float, default=0.0, help="0: the code (no KL); > 0: the paper")
    ap.add_argument("--kl_anneal_steps", type=int, default=1000, help="KL weight ramps up linearly over N steps")
    ap.add_argument("--vae_pe_fix", action="store_true")
    ap.add_argument("--vae_causal", action="store_true")
    ap.add_argument("--lip_from_spec_only", action="store_true")
    ap.add_argument("--val", action="append", default=[], help="record names containing this validate")
    ap.add_argument("--exclude", action="append", default=[], help="record names containing this are unused")
    add_run_args(ap, max_steps=3000, save_every=200)
    args = ap.parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    if args.max_steps < 1 or args.batch_size < 2 or args.window < 2:
        raise UserInputError("--max_steps >= 1, --batch_size >= 2 and --window >= 2 are required")
    model = MODAConfig(audio_head=args.audio_head, prob_mode=args.prob_mode, vae_pe_fix=args.vae_pe_fix,
                       vae_causal=args.vae_causal, lip_from_spec_only=args.lip_from_spec_only,
                       no_audio_token=True)
    frac = args.speech_fraction if args.speech_fraction is not None else (0.75 if args.stage == "lips" else 0.3)
    cfg = MODATrainConfig(stage=args.stage, window=args.window, batch_size=args.batch_size, lr=args.lr,
                          max_steps=args.max_steps, kl_weight=args.kl_weight,
                          kl_anneal_steps=args.kl_anneal_steps, speech_fraction=frac,
                          save_every=args.save_every, seed=args.seed, model=model)
    check_output_dir(args.out)
    train_recs, val_recs = select_records(args.data, args.exclude, args.val)
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
        "config": asdict(cfg)})
    log.info("wrote %s (%s)", path, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
