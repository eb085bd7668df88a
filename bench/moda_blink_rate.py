"""Blink rate and head-pose spread of MODA-lite's prior draws on a folder of clip records (e.g. its own
training clips): the measure the blink term's weight was chosen by (docs/MODA.md, "Blink term").

For every record with audio and eyes (``--source`` prefixes filter by the record's source path), each seed
predicts the clip's motion from its own audio and mean face; FaCo-Net composes the dense mesh and
:func:`talkingface.eval.motion.blink_stats` counts blinks, pooled over all clips (blinks per minute of
footage, real against predicted, seeds averaged). Head spread: per clip and axis the predicted pose std over
the real one, median over clips and seeds.

Usage: python bench/moda_blink_rate.py RECORDS [--moda CKPT ...] [--faco CKPT] [--seeds 2]
       [--source av_more --source av/voxceleb2]

Several ``--moda`` checkpoints are scored on the same clips, one line each.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("records", type=Path, help="folder of clip records (data_preparation_moda.py output)")
    ap.add_argument("--moda", type=Path, action="append", default=[], help="MODA-lite checkpoint (default: shipped)")
    ap.add_argument("--faco", type=Path, default=None, help="FaCo-Net checkpoint (default: shipped)")
    ap.add_argument("--seeds", type=int, default=2, help="prior draws per clip")
    ap.add_argument("--source", action="append", default=[],
                    help="keep records whose source path starts with this (repeatable; default: all)")
    args = ap.parse_args(argv)
    if not args.records.is_dir():
        raise UserInputError(f"records folder not found: {args.records}")
    if args.seeds < 1:
        raise UserInputError("--seeds must be at least 1")
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.config.moda import FACO_CHECKPOINT, MODA_CHECKPOINT
    from talkingface.data.moda_clips import load_records
    from talkingface.eval.moda_eval import sample_motion
    from talkingface.eval.motion import FPS, blink_stats, pose_spread
    from talkingface.moda_pipeline import FaCoPredictor, MODAPredictor

    recs = [r for r in load_records(args.records) if r.has_audio and not r.lip_only
            and (not args.source or any(r.source.startswith(s) for s in args.source))]
    if not recs:
        raise UserInputError(f"no record with audio and eyes in {args.records}")
    faco = FaCoPredictor(args.faco or FACO_CHECKPOINT)
    minutes = sum(r.n_frames for r in recs) / FPS / 60.0
    real_rate = sum(blink_stats(r.dense)["n_blinks"] for r in recs) / minutes
    for path in args.moda or [MODA_CHECKPOINT]:
        moda = MODAPredictor(path)
        n_pred, ratios = 0.0, []
        for r in recs:
            sampled = sample_motion(r, moda, faco, range(args.seeds))
            n_pred += sum(b["n_blinks"] for b in sampled["blinks"]) / args.seeds
            real = pose_spread(r.head7)
            for head in sampled["heads"]:
                pred = pose_spread(head)
                ratios.append([pred[a] / max(real[a], 1e-6) for a in ("yaw", "pitch", "roll")])
        med = np.median(ratios, axis=0)
        print(f"{path}: {len(recs)} clips, {minutes * 60:.0f} s: blinks/min real {real_rate:.1f}, "
              f"predicted {n_pred / minutes:.1f}; head spread / real (median) yaw {med[0]:.2f}, "
              f"pitch {med[1]:.2f}, roll {med[2]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
