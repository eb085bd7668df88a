"""Train MODA's per-person TPE renderer (landmark drawing + reference + TPE -> the person's frame).

Usage:
  python data_preparation_moda.py --avatar ../shared/data/av/mead --exclude 'W011*' --exclude 'M030*' person/
  python train_moda/train_renderer.py person/ OUT [--resolution 256] [--ngf 16] [--no-tpe] [--val_clip 5]
  python demo_moda.py person/ speech.wav out.mp4 --renderer OUT/renderer.pth

--val_clip K holds the person's K-th clip (order of subject.npz's sources) out whole for validation.
Writes OUT/last.pth (--resume continues exactly), TensorBoard logs in OUT/log and OUT/renderer.pth with
its card. A renderer embeds the person's likeness: do not publish one without the person's consent.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.flags import add_config_flags, config_dict, config_from_args
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
    add_config_flags(ap, RendererTrainConfig)
    add_config_flags(ap, RendererConfig, exclude=("tpe_channels",))
    add_run_args(ap, records=False)
    args = ap.parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    check_output_dir(args.out)
    if not (args.person / "subject.npz").is_file():
        raise UserInputError(f"not a person folder (no subject.npz): {args.person}")
    model = config_from_args(RendererConfig, args)
    if args.resolution % (2 ** args.n_downs) or args.batch_size < 2:
        raise UserInputError("--resolution must be divisible by 2^n_downs and --batch_size >= 2")
    cfg = config_from_args(RendererTrainConfig, args, model=model)
    person = load_person(args.person, args.resolution)
    trainer = RendererTrainer(cfg, person, args.out, resume=args.resume)
    if len(trainer.train_idx) < args.batch_size:
        raise UserInputError("too few training frames")
    result = trainer.run()
    path = trainer.export(args.out / "renderer.pth")
    write_card(path, "MODA per-person TPE renderer", {
        "steps": result["steps"], "wall_s": result["wall_s"], "metrics": {"val_psnr_db": result["val_psnr_db"]},
        "train_records": [str(args.person)], "val_records": [f"clip {args.val_clip}"], "config": config_dict(cfg)})
    log.info("wrote %s (%s)", path, result)
    return 0


if __name__ == "__main__":
    run_cli(main)
