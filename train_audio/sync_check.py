"""Measure each cached training clip's own audio/video offset and decide how it may be used.

    python train_audio/sync_check.py CACHE OUT.tsv --teacher TEACHER.pkl [--pool GLOB ...]

CACHE is the output of ``train_audio/cache_clips.py`` (``index.tsv`` + ``<name>.clip.npz``/``.wav``).
For every clip with sound that training may read (not in ``never_train_on()``), a probe audio
model (the teacher: its coefficient 0 is closed-to-open mouth, with its own lookahead) runs on the
clip's audio and is correlated with the clip's measured mouth opening (inner-lip gap / eye
distance, 25 fps) at lags -5..+5; the log energy of the audio is a second, model-free probe.
``late`` = how many frames the picture trails the sound (the probe's best lag with its sign
flipped: a positive ``late`` means the audio-predicted mouth leads the real one).

Clips matching one ``--pool`` glob (e.g. the pieces of one long interview) share one offset: the
lag maximising their mean r. Decision per clip (see :func:`decide`): ``keep`` (|late| <= 1: within
the probe's own jitter), ``shift`` (targets moved by ``late`` frames so picture and sound line up),
or ``drop`` (probe too weak to trust the timing, or an offset at the edge of the search range).
"""
from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from talkingface.audio_model import AudioModel
from talkingface.errors import UserInputError
from talkingface.eval.baselines import frame_log_energy
from talkingface.eval.heldout import never_train_on
from talkingface.eval.metrics import MAX_LAG, best_offset, lagged_r
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_file, write_text
from talkingface.util.media import load_audio
from talkingface.utils import mouth_opening

log = logging.getLogger("sync_check")

MIN_PROBE_R = 0.3  # best-lag r of the probe below which its timing is not trusted
MIN_POOLED_MEMBER_R = 0.15  # a pooled piece still needs some speech motion to be a training clip
MAX_KEEP = 1  # |late| up to this is the probe's own jitter: kept unshifted


@dataclass
class SyncRow:
    name: str
    path: str
    frames: int
    r0: float  # probe r at lag 0
    r_best: float
    late: int  # frames the picture trails the sound (probe)
    energy_late: int  # same, from the log-energy probe
    energy_r: float
    pool: str = ""
    pool_late: int = 0
    decision: str = ""
    shift: int = 0  # applied to targets: audio frame t is paired with video frame t + shift
    reason: str = ""


def read_index(cache: Path, idx: Path = None) -> List[tuple]:
    """(name, relative path) of every clip with sound in ``idx`` (default ``cache/index.tsv``)."""
    idx = idx or cache / "index.tsv"
    if not idx.is_file():
        raise UserInputError(f"no {idx}: run train_audio/cache_clips.py first")
    out = []
    for line in idx.read_text().splitlines()[1:]:
        name, rel, _audio, _frames, status = line.split("\t")
        if status == "ok":
            out.append((name, rel))
    return out


def lag_curve(pred: np.ndarray, truth: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """r of ``pred[t + k]`` vs ``truth[t]`` for k = -max_lag..max_lag."""
    return np.array([lagged_r(pred, truth, k) for k in range(-max_lag, max_lag + 1)])


def decide(row: SyncRow) -> None:
    """Fill ``decision``, ``shift`` and ``reason`` of one measured row (pooled offset if any)."""
    late = row.pool_late if row.pool else row.late
    if row.pool:
        if not (row.r_best >= MIN_POOLED_MEMBER_R):
            row.decision, row.reason = "drop", f"little speech motion (probe r_best {row.r_best:.2f})"
            return
    elif not (row.r_best >= MIN_PROBE_R):
        row.decision, row.reason = "drop", f"probe too weak to trust the timing (r_best {row.r_best:.2f})"
        return
    if abs(late) >= MAX_LAG:
        row.decision, row.reason = "drop", f"offset at the edge of the search range ({late:+d})"
    elif abs(late) <= MAX_KEEP:
        row.decision, row.reason = "keep", f"in sync within the probe's jitter ({late:+d})"
    else:
        row.decision, row.shift, row.reason = "shift", late, f"picture {late:+d} frames against the sound"


def read_decisions(path: Path) -> Dict[str, SyncRow]:
    """The rows of a written sync table, by clip name."""
    lines = Path(path).read_text().splitlines()
    head = lines[0].split("\t")
    out = {}
    for line in lines[1:]:
        d = dict(zip(head, line.split("\t")))
        out[d["name"]] = SyncRow(d["name"], d["path"], int(d["frames"]), float(d["r0"]), float(d["r_best"]),
                                 int(d["late"]), int(d["energy_late"]), float(d["energy_r"]), d["pool"],
                                 int(d["pool_late"]), d["decision"], int(d["shift"]), d["reason"])
    return out


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("cache", type=Path, help="cache_clips.py output folder")
    ap.add_argument("out", type=Path, help="output table (.tsv)")
    ap.add_argument("--teacher", type=Path, required=True, help="probe audio model (Audio2Feature state dict)")
    ap.add_argument("--index", type=Path, help="clip list (default CACHE/index.tsv)")
    ap.add_argument("--pool", action="append", default=[], help="glob on the relative path of clips that share "
                    "one offset (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    check_output_file(args.out)
    entries = read_index(args.cache, args.index)  # a missing cache fails before the models load
    if not args.teacher.is_file():
        raise UserInputError(f"teacher not found: {args.teacher}")
    probe = AudioModel(args.teacher, lookahead_steps=4)
    held = never_train_on()
    rows, curves = [], {}
    for name, rel in entries:
        if rel in held:
            continue
        with np.load(args.cache / f"{name}.clip.npz") as d:
            truth = mouth_opening(d["normalized"])
        audio = load_audio(args.cache / f"{name}.wav")
        pred = probe.interface_wav(audio)[: len(truth), 0]
        energy = frame_log_energy(audio, len(truth))
        lag, rb = best_offset(pred, truth)
        elag, er = best_offset(energy, truth)
        curves[name] = lag_curve(pred, truth)
        pool = next((g for g in args.pool if fnmatch.fnmatch(rel, g)), "")
        rows.append(SyncRow(name, rel, len(truth), float(lagged_r(pred, truth, 0)), float(rb), -lag, -elag,
                            float(er), pool))
    for g in args.pool:
        members = [r for r in rows if r.pool == g]
        if members:
            mean = np.nanmean(np.stack([curves[r.name] for r in members]), axis=0)
            pooled = -(int(np.nanargmax(mean)) - MAX_LAG)
            log.info("pool %s: %d clips, offset %+d (mean r %.3f)", g, len(members), pooled, np.nanmax(mean))
            for r in members:
                r.pool_late = pooled
    for r in rows:
        decide(r)
    head = list(SyncRow.__dataclass_fields__)
    lines = ["\t".join(head)]
    for r in rows:
        vals = [getattr(r, k) for k in head]
        lines.append("\t".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in vals))
    write_text(args.out, "\n".join(lines) + "\n")
    counts = {k: sum(r.decision == k for r in rows) for k in ("keep", "shift", "drop")}
    log.info("%d clips: %s -> %s", len(rows), counts, args.out)
    return 0


if __name__ == "__main__":
    run_cli(main)
