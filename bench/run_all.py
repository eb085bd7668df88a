"""Run every ``bench/bench_*.py`` and write ``bench/results/<date>.json`` plus a markdown summary.

Each script runs in its own process (so its peak memory is its own) as
``python bench/bench_x.py --json <tmp> [--quick] [--device D]``; its result object (see
``bench/common.py``) is gathered into one JSON file::

    {"date": "...", "quick": true, "machine": {...}, "results": [...],
     "failed": [{"bench": "gl", "returncode": 1, "seconds": 3.2, "stderr_tail": "..."}]}

A failing or timed-out script is recorded under ``failed`` and the others still run; the exit
status is 1 when any failed. ``--quick`` keeps the whole suite under 5 minutes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_info, markdown_table, write_json, write_text

BENCH_DIR = Path(__file__).resolve().parent
QUICK_BUDGET_S = 280.0  # --quick: the whole suite stays under 5 minutes; later scripts get what is left
log = logging.getLogger("bench")


def discover(pattern: str = "bench_*.py") -> list:
    return sorted(p for p in BENCH_DIR.glob(pattern) if p.is_file())


def run_one(script: Path, quick: bool, device: str, timeout: float) -> dict:
    """Run one bench script; returns its result object or a failure record."""
    name = script.stem[len("bench_"):]
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script), "--json", str(out), "--device", device]
        if quick:
            cmd.append("--quick")
        log.info("running %s", " ".join(cmd[1:]))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                  cwd=BENCH_DIR.parent)
            rc, err = proc.returncode, proc.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired as exc:
            rc, err = "timeout", (exc.stderr or b"").decode("utf-8", "replace") + f"\ntimed out after {timeout:.0f} s"
        seconds = round(time.perf_counter() - t0, 1)
        if rc == 0 and out.exists():
            result = json.loads(out.read_text(encoding="utf-8"))
            result["seconds"] = seconds
            log.info("%s done in %.1f s", name, seconds)
            return result
    tail = "\n".join(err.strip().splitlines()[-15:])
    log.error("%s failed (%s) after %.1f s:\n%s", name, rc, seconds, tail)
    return {"bench": name, "failed": True, "returncode": rc, "seconds": seconds, "stderr_tail": tail}


def summary_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Benchmarks {report['date']}{' (quick)' if report['quick'] else ''}", "",
             f"Machine: {m.get('cpu_model')}, {m.get('cpu_usable', m.get('cpu_count'))} usable cores, "
             f"{m.get('ram_gb')} GB RAM, load average {m.get('load_avg_1m')} at the end; torch {m.get('torch')} with {m.get('torch_threads')} threads; "
             f"device {m.get('device')}{', GPU ' + m['gpu'] if m.get('gpu') else ''}. "
             "Medians of >= 5 runs after a warm-up; peak RSS per script.", "",
             markdown_table(report["results"]), ""]
    for res in report["results"]:
        if res.get("notes"):
            notes = ", ".join(f"{k}={v}" for k, v in res["notes"].items())
            lines.append(f"- {res['bench']} ({res['seconds']} s): {notes}")
    for fail in report["failed"]:
        lines.append(f"- **{fail['bench']} failed** ({fail['returncode']}, {fail['seconds']} s): "
                     f"`{fail['stderr_tail'].splitlines()[-1] if fail['stderr_tail'] else ''}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small inputs; whole suite under 5 minutes")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="passed to every script")
    parser.add_argument("--only", default="*", help="glob on the name after bench_, e.g. 'gl' or 'mini*'")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per script (default 150 with --quick, 1800 without)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="results folder")
    args = parser.parse_args(argv)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.util.cli import resolve_device, setup_logging

    setup_logging()
    scripts = discover(f"bench_{args.only}.py")
    if not scripts:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        from talkingface.errors import UserInputError

        raise UserInputError(f"no bench scripts match bench_{args.only}.py in {BENCH_DIR}")
    timeout = args.timeout or (150.0 if args.quick else 1800.0)
    started = time.perf_counter()
    outcomes = []
    for script in scripts:
        left = QUICK_BUDGET_S - (time.perf_counter() - started) if args.quick else timeout
        if left < 5.0:
            outcomes.append({"bench": script.stem[len("bench_"):], "failed": True, "returncode": "skipped",
                             "seconds": 0.0, "stderr_tail": f"the --quick budget of {QUICK_BUDGET_S:.0f} s was spent"})
            continue
        outcomes.append(run_one(script, args.quick, args.device, min(timeout, left)))
    date = dt.datetime.now(dt.timezone.utc)
    report = {
        "date": date.isoformat(timespec="seconds"),
        "quick": args.quick,
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info(resolve_device(args.device)),
        "results": [o for o in outcomes if not o.get("failed")],
        "failed": [o for o in outcomes if o.get("failed")],
    }
    stem = date.strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    json_path = write_json(args.out / f"{stem}.json", report)
    md = summary_markdown(report)
    md_path = write_text(args.out / f"{stem}.md", md)
    print(md)
    log.info("wrote %s and %s (%.1f s in all)", json_path, md_path, report["total_seconds"])
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
