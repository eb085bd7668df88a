"""Evaluation outputs: one JSON file per clip, markdown table rows, a summary over a folder.

A clip's JSON object::

    {"clip": "bbaf2n.mpg", "kind": "selfrecon" | "compare", "pipeline": "mini" | null,
     "gt": "<path>", "pred": "<path or null>", "frames": 75, "date": "...",
     "rows": [MetricRow.to_dict(), ...]}
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from talkingface.errors import UserInputError
from talkingface.eval.metrics import MetricRow
from talkingface.util.files import write_text

HEADER = ("| clip | method | frames | r | offset | r@offset | amplitude | LMD px | mouth PSNR | mouth SSIM "
          "| no-face pred/gt |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
SUMMARY_HEADER = ("| method | clips | frames | r | r@offset | mean abs offset | amplitude | LMD px | mouth PSNR "
                  "| mouth SSIM | no-face pred |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def _f(x: Optional[float], nd: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


@dataclass
class ClipResult:
    """All methods' scores on one clip."""

    clip: str
    kind: str
    gt: str
    rows: List[MetricRow]
    pipeline: Optional[str] = None
    pred: Optional[str] = None
    date: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict:
        return {"clip": self.clip, "kind": self.kind, "pipeline": self.pipeline, "gt": self.gt, "pred": self.pred,
                "frames": self.rows[0].n_frames if self.rows else 0, "date": self.date,
                "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, d: dict) -> "ClipResult":
        return cls(clip=d["clip"], kind=d["kind"], gt=d["gt"], pipeline=d.get("pipeline"), pred=d.get("pred"),
                   date=d.get("date", ""), rows=[MetricRow.from_dict(r) for r in d["rows"]])

    def markdown_rows(self) -> List[str]:
        return [markdown_row(self.clip, r) for r in self.rows]

    def markdown(self) -> str:
        return "\n".join([HEADER, *self.markdown_rows()])

    def save(self, path: Path) -> Path:
        """Write the JSON object atomically (temporary file, then rename)."""
        return write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def markdown_row(clip: str, r: MetricRow) -> str:
    offset = "–" if math.isnan(r.r_offset) else f"{r.offset:+d}"
    return (f"| {clip} | {r.method} | {r.n_frames} | {_f(r.r)} | {offset} | {_f(r.r_offset)} | {_f(r.amp, 2)} | "
            f"{_f(r.lmd, 2)} | "
            f"{_f(r.psnr, 2)} | {_f(r.ssim)} | {r.fail_pred}/{r.fail_gt} |")


def load_results(folder: Path) -> List[ClipResult]:
    """Every clip result (``*.json`` with ``rows``) in ``folder``, sorted by clip name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"not a folder: {folder}")
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{p}: not valid JSON ({exc})") from exc
        if isinstance(d, dict) and "rows" in d and "clip" in d:
            out.append(ClipResult.from_dict(d))
    if not out:
        raise UserInputError(f"no evaluation results (*.json) in {folder}")
    return sorted(out, key=lambda c: c.clip)


def summarize(results: Sequence[ClipResult]) -> Dict[str, Dict[str, float]]:
    """Per method: clip count, total frames, and the mean over clips of each metric.

    Means skip clips where a metric is undefined (NaN); ``abs_offset`` is the mean |best lag|.
    """
    by_method: Dict[str, List[MetricRow]] = defaultdict(list)
    for res in results:
        for row in res.rows:
            by_method[row.method].append(row)

    def mean(vals):
        vals = [v for v in vals if not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan

    out = {}
    for method, rows in by_method.items():
        out[method] = {
            "clips": len(rows), "frames": sum(r.n_frames for r in rows),
            "r": mean([r.r for r in rows]), "r_offset": mean([r.r_offset for r in rows]),
            "abs_offset": mean([abs(r.offset) for r in rows if not math.isnan(r.r_offset)]),
            "amp": mean([r.amp for r in rows]), "lmd": mean([r.lmd for r in rows]), "psnr": mean([r.psnr for r in rows]),
            "ssim": mean([r.ssim for r in rows]), "fail_pred": sum(r.fail_pred for r in rows),
        }
    return out


def summary_markdown(results: Sequence[ClipResult]) -> str:
    """Per-clip rows followed by the per-method means."""
    lines = [HEADER]
    for res in results:
        lines += res.markdown_rows()
    lines += ["", SUMMARY_HEADER]
    for method, s in summarize(results).items():
        lines.append(f"| {method} | {s['clips']} | {s['frames']} | {_f(s['r'])} | {_f(s['r_offset'])} | "
                     f"{_f(s['abs_offset'], 1)} | {_f(s['amp'], 2)} | {_f(s['lmd'], 2)} | {_f(s['psnr'], 2)} | {_f(s['ssim'])} | "
                     f"{s['fail_pred']} |")
    return "\n".join(lines)
