"""Train MODA's per-person TPE renderer (landmark drawing + reference + TPE -> the person's frame).

Usage:
  python data_preparation_moda.py --avatar ../shared/data/av/mead --exclude 'W011*' --exclude 'M030*' person/
  python train_moda/train_renderer.py person/ OUT [--resolution 256] [--ngf 16] [--max_steps 1900] [--val_clip 5]
  python demo_moda.py person/ speech.wav out.mp4 --renderer OUT/renderer.pth

--val_clip K holds the person's K-th clip (order of subject.npz's sources) out whole for validation.
Writes OUT/last.pth (--resume continues exactly), TensorBoard logs in OUT/log and OUT/renderer.pth with
its card. A renderer embeds the person's likeness: do not publish one without the person's consent.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from talkingface.config.moda import RendererConfig
from talkingface.errors import UserInputError
from talkingface.moda_recipes import add_run_args, set_threads, write_card
from talkingface.moda_renderer_training import RendererTrainConfig, RendererTrainer, load_person
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_dir

log = logging.getLogger("train_renderer")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("person", type=Path, help="person folder of data_preparation_moda.py --avatar")
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--n_downs", type=int, default=7)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--tpe", choices=["on", "off"], default="on")
    ap.add_argument("--d_scales", type=int, default=2)
    ap.add_argument("--d_layers", type=int, default=3)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--batch_size", type=int, default=4)
    ap.add_argument("--val_clip", type=int, default=-1)
    add_run_args(ap, max_steps=1900, save_every=100)
    args = ap.parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    check_output_dir(args.out)
    if not (args.person / "subject.npz").is_file():
        raise UserInputError(f"not a person folder (no subject.npz): {args.person}")
    model = RendererConfig(resolution=args.resolution, n_downs=args.n_downs, ngf=args.ngf, tpe=args.tpe == "on",
                           d_scales=args.d_scales, d_layers=args.d_layers, ndf=args.ndf)
    if args.resolution % (2 ** args.n_downs) or args.batch_size < 2:
        raise UserInputError("--resolution must be divisible by 2^n_downs and --batch_size >= 2")
    cfg = RendererTrainConfig(batch_size=args.batch_size, max_steps=args.max_steps, val_clip=args.val_clip,
                              save_every=args.save_every, seed=args.seed, model=model)
    person = load_person(args.person, args.resolution)
    trainer = RendererTrainer(cfg, person, args.out, resume=args.resume)
    if len(trainer.train_idx) < args.batch_size:
        raise UserInputError("too few training frames")
    result = trainer.run()
    path = trainer.export(args.out / "renderer.pth")
    write_card(path, "MODA per-person TPE renderer", {
        "steps": result["steps"], "wall_s": result["wall_s"], "metrics": {"val_psnr_db": result["val_psnr_db"]},
        "train_records": [str(args.person)], "val_records": [f"clip {args.val_clip}"], "config": asdict(cfg)})
    log.info("wrote %s (%s)", path, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
