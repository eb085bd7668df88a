"""Shared parts of the MODA training scripts (train_moda/): record selection with the held-out guard,
threads, model cards."""
from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

import torch

from talkingface.data.moda_clips import ClipRecord, load_records
from talkingface.errors import UserInputError
from talkingface.eval.heldout import never_train_on
from talkingface.util.files import write_model_card, write_text

log = logging.getLogger(__name__)


def select_records(folders: Sequence[Path], exclude: Sequence[str], val: Sequence[str]
                   ) -> Tuple[List[ClipRecord], List[ClipRecord]]:
    """Records of ``folders`` split into (train, validation): names containing a ``val`` pattern go to
    validation, names containing an ``exclude`` pattern are dropped. A record whose source is on the
    never-train list is an error (it was prepared with --include_heldout)."""
    blocked = never_train_on()
    train, valid = [], []
    for folder in folders:
        for rec in load_records(folder):
            if rec.source in blocked:
                raise UserInputError(f"{rec.name}: {rec.source} is held out (talkingface/eval/heldout.py)")
            if any(p in rec.name for p in exclude):
                continue
            (valid if any(p in rec.name for p in val) else train).append(rec)
    if not train:
        raise UserInputError("no training records left")
    return train, valid


def set_threads(n: int) -> None:
    torch.set_num_threads(max(1, n))


def add_run_args(ap, records: bool = True, val_default: str = "") -> None:
    """The options every MODA training script shares beside its config's flags (``records``: the
    --val / --exclude record selection of the scripts that read clip records)."""
    ap.add_argument("--resume", action="store_true", help="continue OUT/last.pth exactly")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    if records:
        ap.add_argument("--val", action="append", default=None,
                        help=f"record names containing this validate{val_default}")
        ap.add_argument("--exclude", action="append", default=[], help="record names containing this are unused")


def write_card(path: Path, title: str, card: dict) -> None:
    """``<path>.json`` sidecar and ``<path>.md`` model card (data, steps, wall time, command, numbers,
    resolved config)."""
    card = dict(card, command="python " + " ".join(shlex.quote(a) for a in sys.argv))
    write_model_card(path, card)
    lines = [f"# {title}", "", f"Checkpoint `{path.name}`; this card and `{path.with_suffix('.json').name}` "
             "were written by the training script.", ""]
    for key in ("command", "steps", "wall_s", "metrics", "train_records", "val_records", "held_out"):
        if key in card:
            val = card[key]
            if isinstance(val, (list, dict)):
                val = "\n```\n" + json.dumps(val, indent=1) + "\n```"
            lines.append(f"- **{key}**: {val}")
    lines += ["", "Resolved configuration:", "```", json.dumps(card.get("config", {}), indent=1), "```", ""]
    write_text(path.with_suffix(".md"), "\n".join(lines))
