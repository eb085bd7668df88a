"""Cross-half results re-read with each clip's own audio/video offset taken out of the real half.

An extra reading beside the protocol's raw rows (``python -m talkingface.eval crosshalf``), never a
replacement: it reads the per-frame series a cross-half run kept (``<workdir>/<clip>/series.<pipeline>.npz``)
and each clip's offset between its own picture and sound as measured with the original's audio model
(``best_lag`` of ``av_more/SYNC_CHECK.tsv``, > 0: picture late), moves the real second half by that offset
(:func:`talkingface.eval.crosshalf.shift_real`) and scores every row again. No rendering, no tracking.

Usage: python bench/crosshalf_sync_shift.py WORKDIR [--pipeline mini] [--sync TSV] [--out FILE.md]

Prints per clip: each row's raw best lag, the SYNC_CHECK offset, and the shifted r at lag 0 / best r (lag);
then the means (same columns as the protocol's acceptance table, rows named ``<row> (real shifted)``).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Dict

import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.crosshalf import shifted_row
from talkingface.eval.heldout import sync_check_lags
from talkingface.eval.metrics import best_offset
from talkingface.util.cli import run_cli, script_parser
from talkingface.util.files import write_text


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("workdir", type=Path, help="the --workdir of the cross-half run")
    ap.add_argument("--pipeline", default="mini")
    ap.add_argument("--sync", type=Path, default=None, help="default: av_more/SYNC_CHECK.tsv of the sample data")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables here (markdown)")
    args = ap.parse_args(argv)
    offsets = {Path(rel).stem: lag for rel, lag in sync_check_lags(args.sync).items()}
    if not any(args.workdir.glob(f"*/series.{args.pipeline}.npz")):
        raise UserInputError(f"no series.{args.pipeline}.npz below {args.workdir} (run the cross-half evaluation first)")
    per_method: Dict[str, list] = {}
    lines = ["| clip | SYNC_CHECK best_lag (picture late) | " + "raw best lag: mini / audio-ours / audio-original | "
             "shifted r@0 / best (lag): mini | audio-ours | audio-original |", "|---|---:|---|---|---|---|"]
    for path in sorted(args.workdir.glob(f"*/series.{args.pipeline}.npz")):
        clip = path.parent.name
        if clip not in offsets:
            print(f"{clip}: no SYNC_CHECK offset, left out", file=sys.stderr)
            continue
        with np.load(path) as d:
            series = {k: d[k] for k in d.files}
        real = series.pop("real")
        raw, cells = [], []
        for method in (args.pipeline, "audio-ours", "audio-original"):
            if method not in series:
                raw.append("–")
                cells.append("–")
                continue
            pred = series[method]
            raw.append(f"{best_offset(pred[:len(real)], real[:len(pred)])[0]:+d}")
            row = shifted_row(method, pred, real, offsets[clip], with_amplitude=method != "audio-original")
            per_method.setdefault(method, []).append(row)
            cells.append(f"{row.r:.3f} / {row.r_offset:.3f} ({row.offset:+d})")
        lines.append(f"| {clip[:16]} | {offsets[clip]:+d} | {' / '.join(raw)} | " + " | ".join(cells) + " |")
    lines += ["", "(a mouth that follows the sound shows the raw best lag -best_lag on a clip whose picture is "
              "best_lag frames late)", "",
              "| row (real half shifted by its SYNC_CHECK offset) | clips | mean r at lag 0 | mean best-lag r "
              "| abs(lag) <= 1 | lags | mean amplitude |", "|---|---:|---:|---:|---:|---|---:|"]
    for method, rows in per_method.items():
        amps = [r.amp for r in rows if not math.isnan(r.amp)]
        lines.append(f"| {method} (real shifted) | {len(rows)} | {np.nanmean([r.r for r in rows]):.3f} | "
                     f"{np.nanmean([r.r_offset for r in rows]):.3f} | "
                     f"{np.mean([abs(r.offset) <= 1 for r in rows]):.0%} | "
                     f"{', '.join(f'{r.offset:+d}' for r in rows)} | "
                     + (f"{np.mean(amps):.2f} |" if amps else "– |"))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    run_cli(main)
