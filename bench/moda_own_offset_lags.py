"""MODA evaluation lags re-read against each clip's own audio/video offset.

An extra reading beside ``python -m talkingface.eval moda`` (never a replacement). Many clips' pictures
trail or lead their own sound (GRID's by 2-3 frames), so a model that is on time shows that offset as its
best lag there. Each clip's offset is measured with a probe audio model on the clip itself
(``train_audio/evaluate.py --model probe=<the original's audio.pkl> --json PROBE.json`` over the same
clips: the probe's best lag of coefficient 0 against the real mouth, < 0 when the picture is late); this
script prints, per clip and per method of the MODA evaluation, the best lag minus the probe's, and the
share of clips within 0 +- 1 frame.

Usage: python bench/moda_own_offset_lags.py MODA.json PROBE.json [--probe NAME]

A clip's key in both files is :func:`talkingface.eval.audio_sync.clip_name` of its video.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.audio_sync import clip_name
from talkingface.util.cli import run_cli, script_parser


def probe_lags(probe_json: Path, probe: str) -> Dict[str, int]:
    rows = json.loads(probe_json.read_text(encoding="utf-8"))["rows"]
    lags = {r["clip"]: int(r["best_lag"]) for r in rows if r["method"] == probe}
    if not lags:
        raise UserInputError(f"{probe_json}: no rows of method {probe!r}")
    return lags


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("moda_json", type=Path, help="output of python -m talkingface.eval moda --out")
    ap.add_argument("probe_json", type=Path, help="output of train_audio/evaluate.py --json on the same clips")
    ap.add_argument("--probe", default="probe", help="the probe's method name in PROBE.json")
    args = ap.parse_args(argv)
    for p in (args.moda_json, args.probe_json):
        if not p.is_file():
            raise UserInputError(f"not found: {p}")
    own = probe_lags(args.probe_json, args.probe)
    clips = json.loads(args.moda_json.read_text(encoding="utf-8"))["clips"]
    rel: Dict[str, list] = {}
    print("| clip | probe lag | per method: raw lag -> relative lag |")
    print("|---|---:|---|")
    for c in clips:
        key = clip_name(Path(c["clip"]))
        if key not in own:
            raise UserInputError(f"{key}: no probe row (run evaluate.py on the same clips)")
        cells = []
        for row in c["rows"]:
            method, _, seed = row["method"].partition("/")
            if seed not in ("", "seed0"):  # one row per method (seeds share the lips)
                continue
            shifted = int(row["offset"]) - own[key]
            rel.setdefault(method, []).append(shifted)
            cells.append(f"{method} {int(row['offset']):+d} -> {shifted:+d}")
        print(f"| {key[-40:]} | {own[key]:+d} | " + ", ".join(cells) + " |")
    print("\n| method | clips | mean relative lag | median | within 0 +- 1 |\n|---|---:|---:|---:|---:|")
    for method, v in rel.items():
        a = np.asarray(v)
        print(f"| {method} | {len(a)} | {a.mean():+.2f} | {np.median(a):+.1f} | {int((np.abs(a) <= 1).sum())} / {len(a)} |")
    return 0


if __name__ == "__main__":
    run_cli(main)
