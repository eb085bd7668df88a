"""Run avatar preparation over every video of one or more folders and tabulate what happens.

Each clip goes through ``data_preparation_mini.py`` and, when that succeeds, ``data_preparation_web.py``
(each as its own process, exactly as a user runs them). One TSV row per clip: clip, stage reached
(``prepared`` | ``mini`` | ``web``), exit status, seconds, the ``error:`` line of a failure, and the
notes the preparation logged (measured yaw, the stretch kept after a jump cut, talking-video
handling). Audio-only files (.m4a, .wav, ...) and non-video files are skipped.

Usage: python bench/prep_clips.py OUT_DIR ROOT [ROOT ...] [--resume] [--keep] [--in_process] [--max_seconds S]

``--resume`` skips clips already in OUT_DIR/prep_clips.tsv; prepared folders are deleted after each
clip unless ``--keep``. ``--in_process`` calls the same functions the two scripts call, in this
process (no per-clip start-up: much faster on a busy machine), and turns their user errors into the
same ``error:`` line; ``--max_seconds`` caps the source length read (the scripts' default is 120 s).
Clips are taken folder by folder, smaller folders first. A summary (counts per outcome and per error) is
printed at the end and written to OUT_DIR/prep_clips_summary.md.
"""
from __future__ import annotations

import argparse
import collections
import csv
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from talkingface.config.paths import PACKAGE_ROOT  # where the top-level scripts live
from talkingface.util.files import write_text

VIDEO_SUFFIXES = {".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm"}
FIELDS = ["clip", "outcome", "rc", "seconds", "error", "notes"]
#: Log lines worth keeping in the table (what preparation measured or decided).
NOTE_PATTERN = re.compile(r"(yaw|jump cut|stretch|talking|mouth|padded|neutral)", re.IGNORECASE)


def find_videos(roots: List[Path]) -> List[Path]:
    """Video files of ``roots`` (files as given; folders searched recursively, smaller sub-folders
    first), each once, in that order."""
    out: List[Path] = []
    for root in roots:
        if root.is_file():
            found = [root]
        else:
            found = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
            per_folder = collections.Counter(p.parent for p in found)
            found.sort(key=lambda p: (per_folder[p.parent], str(p)))
        out += [p for p in found if p not in out]
    return out


class _NoteHandler(logging.Handler):
    """Collects the log messages worth keeping in the table."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.notes: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if NOTE_PATTERN.search(msg):
            self.notes.append(msg)


def prepare_clip_in_process(video: Path, work: Path, keep: bool, max_seconds: float) -> Dict[str, str]:
    """Like :func:`prepare_clip`, calling ``prepare_mini_avatar`` and ``write_avatar_pack`` directly."""
    # Lazy: the pipeline loads only with --in_process (by default each clip runs the scripts in a subprocess).
    from talkingface.errors import UserInputError
    from talkingface.mini_pack import write_avatar_pack
    from talkingface.preparation import PrepConfig, prepare_mini_avatar

    out = work / (video.parent.name + "__" + video.stem)
    shutil.rmtree(out, ignore_errors=True)
    handler = _NoteHandler()
    logging.getLogger().addHandler(handler)
    t0 = time.time()
    row = {"clip": str(video), "outcome": "prepared", "rc": "0", "error": "", "notes": ""}
    stage = "mini"
    try:
        prepare_mini_avatar(video, out, PrepConfig(progress=False, max_seconds=max_seconds))
        stage = "web"
        write_avatar_pack(out)
    except UserInputError as exc:
        row.update(outcome=stage, rc="2", error="error: " + " ".join(str(exc).split()))
    except Exception as exc:  # a crash is a bug to report, not a refusal: keep going, record it
        row.update(outcome=stage, rc="1", error=f"crash: {type(exc).__name__}: {exc}"[:300])
    finally:
        logging.getLogger().removeHandler(handler)
    row["notes"] = " | ".join(handler.notes)[:600]
    row["seconds"] = f"{time.time() - t0:.1f}"
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return row


def _run(args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=PACKAGE_ROOT)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("error:")]
    return (errs or lines[-1:] or [""])[-1][:300]


def _notes(proc: subprocess.CompletedProcess) -> str:
    keep = []
    for ln in proc.stdout.splitlines():
        if NOTE_PATTERN.search(ln):
            keep.append(ln.split(": ", 1)[-1].strip())
    return " | ".join(keep)[:600]


def prepare_clip(video: Path, work: Path, keep: bool) -> Dict[str, str]:
    """Run both preparation scripts on ``video``; returns its TSV row."""
    out = work / (video.parent.name + "__" + video.stem)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    row = {"clip": str(video), "outcome": "prepared", "rc": "0", "error": "", "notes": ""}
    proc = _run(["data_preparation_mini.py", str(video), str(out), "--quiet"])
    notes = [_notes(proc)]
    if proc.returncode != 0:
        row.update(outcome="mini", rc=str(proc.returncode), error=_error_line(proc))
    else:
        proc = _run(["data_preparation_web.py", str(out)])
        notes.append(_notes(proc))
        if proc.returncode != 0:
            row.update(outcome="web", rc=str(proc.returncode), error=_error_line(proc))
    row["notes"] = " | ".join(n for n in notes if n)
    row["seconds"] = f"{time.time() - t0:.1f}"
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return row


def summary(rows: List[Dict[str, str]]) -> str:
    outcomes = collections.Counter(r["outcome"] for r in rows)
    errors = collections.Counter(re.sub(r"frame \d+", "frame N", r["error"].split(";")[0])[:120]
                                 for r in rows if r["outcome"] != "prepared")
    lines = [f"clips: {len(rows)}; " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())), ""]
    lines += ["| count | failure |", "|---|---|"] + [f"| {n} | {e} |" for e, n in errors.most_common()]
    lines += ["", "| failed clip | stage | error |", "|---|---|---|"]
    lines += [f"| {Path(r['clip']).parent.name}/{Path(r['clip']).name} | {r['outcome']} | {r['error']} |"
              for r in rows if r["outcome"] != "prepared"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    head, _, rest = __doc__.strip().partition("\n\n")
    ap = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("roots", type=Path, nargs="+", help="video files, or folders searched recursively for videos")
    ap.add_argument("--resume", action="store_true", help="skip clips already in the table")
    ap.add_argument("--keep", action="store_true", help="keep the prepared folders")
    ap.add_argument("--in_process", action="store_true", help="no subprocess per clip (faster)")
    ap.add_argument("--max_seconds", type=float, default=120.0, help="cap on the source length read")
    args = ap.parse_args(argv)
    if args.in_process:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        from talkingface.util.cli import setup_logging

        setup_logging()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    table = args.out_dir / "prep_clips.tsv"
    rows: List[Dict[str, str]] = []
    if args.resume and table.is_file():
        with open(table, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    done = {r["clip"] for r in rows}
    videos = find_videos(args.roots)
    with open(table, "a" if rows else "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS, delimiter="\t")
        if not rows:
            writer.writeheader()
        for i, video in enumerate(videos):
            if str(video) in done:
                continue
            if args.in_process:
                row = prepare_clip_in_process(video, args.out_dir / "work", args.keep, args.max_seconds)
            else:
                row = prepare_clip(video, args.out_dir / "work", args.keep)
            writer.writerow(row)
            fh.flush()
            rows.append(row)
            print(f"[{i + 1}/{len(videos)}] {row['outcome']:8s} {row['seconds']:>6s}s {video.name} {row['error']}",
                  flush=True)
    text = summary(rows)
    write_text(args.out_dir / "prep_clips_summary.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
