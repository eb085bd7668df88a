"""Shared helpers for every ``bench/bench_*.py`` script: timing, machine facts, memory, output.

Protocol (docs/EVALUATION.md §5): each measured stage runs ``warmup`` times unrecorded, then ``runs`` (≥ 5)
recorded times; the reported figure is the **median**. Every result carries the machine it ran on
(cores, torch threads, device) and the process's peak memory.

How a bench script uses this module (bench scripts are run as files, ``python bench/bench_x.py``,
so Python puts ``bench/`` on ``sys.path`` and ``from common import ...`` works; ``bench/run_all.py``
runs them the same way)::

    from common import BenchReport, bench_argparser, measure

    def main(argv=None):
        parser = bench_argparser("GL render speed")      # adds --quick --runs --warmup --json --device
        args = parser.parse_args(argv)
        report = BenchReport("gl", args)                 # records machine info, starts memory tracking
        frames = 25 if args.quick else 250
        report.add(measure(lambda: render(frames), name="render", items=frames,
                           runs=args.runs, warmup=args.warmup))
        report.note("resolution", "256x256")             # free-form facts shown beside the table
        return report.finish()                           # prints a markdown table, writes --json

    if __name__ == "__main__":
        from talkingface.util.cli import run_cli
        run_cli(main)

``measure`` returns a :class:`Timing` whose ``items`` is the work done per run (frames, usually):
it derives ms per item and items per second; give ``audio_seconds`` when the run processed that much
speech and the real-time factor (processing time / audio duration, < 1 is faster than real time)
is added. ``BenchReport.finish`` writes one JSON object::

    {"bench": "gl", "quick": true, "machine": {...}, "memory": {...}, "notes": {...},
     "timings": [Timing.to_dict(), ...]}

``run_all.py`` passes ``--quick`` through and ``--json <tmp>`` to every script and gathers these
objects into ``bench/results/<date>.json`` plus a markdown summary.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence
from talkingface.util import files

log = logging.getLogger("bench")

DEFAULT_RUNS = 5
DEFAULT_WARMUP = 1


# ------------------------------------------------------------------------------------------ timing


@dataclass
class Timing:
    """Wall-clock times (seconds) of ``len(runs_s)`` recorded runs of one stage.

    ``items`` is the work one run does (e.g. frames) and ``audio_seconds`` the duration of speech it
    processed, when that applies. Derived figures use the median run.
    """

    name: str
    runs_s: List[float]
    items: int = 1
    unit: str = "frame"
    audio_seconds: Optional[float] = None
    warmup: int = DEFAULT_WARMUP

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.runs_s))

    @property
    def ms_per_item(self) -> float:
        return 1000.0 * self.median_s / max(self.items, 1)

    @property
    def items_per_s(self) -> float:
        return self.items / self.median_s if self.median_s > 0 else float("inf")

    @property
    def rtf(self) -> Optional[float]:
        """Real-time factor: processing time / audio duration (None without ``audio_seconds``)."""
        if not self.audio_seconds:
            return None
        return self.median_s / self.audio_seconds

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d.update(median_s=self.median_s, min_s=min(self.runs_s), max_s=max(self.runs_s),
                 ms_per_item=self.ms_per_item, items_per_s=self.items_per_s, rtf=self.rtf)
        return d


def measure(fn: Callable[[], Any], name: str, *, runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
            items: int = 1, unit: str = "frame", audio_seconds: Optional[float] = None,
            sync: Optional[Callable[[], None]] = None) -> Timing:
    """Call ``fn()`` ``warmup`` times unrecorded, then ``runs`` times timed with ``perf_counter``.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before each clock read so asynchronous
    device work is counted. ``runs`` below 5 is raised to 5: the protocol reports medians of ≥ 5.
    """
    runs = max(int(runs), DEFAULT_RUNS)
    for _ in range(max(int(warmup), 0)):
        fn()
    if sync is not None:
        sync()
    times: List[float] = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    timing = Timing(name=name, runs_s=times, items=items, unit=unit, audio_seconds=audio_seconds,
                    warmup=warmup)
    log.info("%s: median %.4f s (%.2f ms/%s, %.1f %s/s)", name, timing.median_s, timing.ms_per_item,
             unit, timing.items_per_s, unit)
    return timing


# ------------------------------------------------------------------------------------ machine/memory


def _read_first(path: str, key: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_info(device: Optional[str] = None) -> Dict[str, Any]:
    """Facts that make timings comparable: CPU model and cores, RAM, torch threads/version, GPU."""
    info: Dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _read_first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpu_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        # other processes on a shared machine slow every stage: keep the load beside the numbers
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    mem = _read_first("/proc/meminfo", "MemTotal")
    if mem:
        info["ram_gb"] = round(int(mem.split()[0]) / 1024 ** 2, 1)
    try:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch"] = None
    if device is not None:
        info["device"] = device
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started, in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this program's own memory.
    ``getrusage``'s ``ru_maxrss`` is not used there: it carries over the memory of the process
    image before ``exec``, so a child started by a large parent (fork + exec) reports the parent's
    size. Elsewhere ``ru_maxrss``. It never decreases, which is why ``run_all.py`` runs each bench
    script in its own process.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 1024.0 ** 2 if sys.platform == "darwin" else peak / 1024.0


def memory_info() -> Dict[str, Any]:
    """Peak RSS, plus the tracemalloc peak of Python/numpy heap allocations when tracing is on,
    plus the CUDA allocator peak when torch has used a GPU."""
    out: Dict[str, Any] = {"peak_rss_mb": round(peak_rss_mb(), 1)}
    if tracemalloc.is_tracing():
        out["peak_traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 1024.0 ** 2, 1)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 1024.0 ** 2, 1)
    return out


# ---------------------------------------------------------------------------------------- reporting


def bench_argparser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the flags every bench script shares (extend it with your own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="small inputs so the whole suite runs in minutes (used by run_all.py --quick)")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="recorded runs per stage (min 5)")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="unrecorded warm-up runs")
    parser.add_argument("--json", type=Path, default=None, help="write the result object to this file")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="torch device: auto = CUDA when present, else CPU")
    parser.add_argument("--trace-memory", action="store_true",
                        help="also track the Python/numpy heap peak with tracemalloc (slows things down)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


@dataclass
class BenchReport:
    """Collects the timings of one bench script and writes them out once at the end."""

    bench: str
    args: Optional[argparse.Namespace] = None
    timings: List[Timing] = field(default_factory=list)
    notes: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        from talkingface.util.cli import setup_logging

        setup_logging(bool(getattr(self.args, "verbose", False)))
        if getattr(self.args, "trace_memory", False) and not tracemalloc.is_tracing():
            tracemalloc.start()

    @property
    def device(self) -> str:
        """The torch device string for ``--device`` (``auto`` resolved)."""
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        from talkingface.util.cli import resolve_device

        return resolve_device(getattr(self.args, "device", "auto"))

    @property
    def quick(self) -> bool:
        return bool(getattr(self.args, "quick", False))

    def add(self, timing: Timing) -> Timing:
        self.timings.append(timing)
        return timing

    def note(self, key: str, value: Any) -> None:
        """A free-form fact shown with the results (input clip, resolution, model size...)."""
        self.notes[key] = value

    def to_dict(self) -> Dict[str, Any]:
        return {
            "bench": self.bench,
            "quick": self.quick,
            "machine": machine_info(self.device),
            "memory": memory_info(),
            "notes": self.notes,
            "timings": [t.to_dict() for t in self.timings],
        }

    def finish(self) -> int:
        """Print the markdown table, write ``--json`` (atomically) if given; returns exit status 0."""
        result = self.to_dict()
        print(markdown_table([result]))
        out = getattr(self.args, "json", None)
        if out is not None:
            write_json(Path(out), result)
        return 0


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON via a temporary file and rename."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` via a temporary file and rename."""
    return files.write_text(path, text)


def _fmt(x: Optional[float], nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def markdown_table(results: Sequence[Dict[str, Any]]) -> str:
    """One markdown table over the ``timings`` of several bench result objects."""
    lines = ["| bench | stage | median s | ms/unit | units/s | RTF | runs | peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        rss = res.get("memory", {}).get("peak_rss_mb")
        for t in res.get("timings", []):
            lines.append(
                f"| {res['bench']} | {t['name']} | {_fmt(t['median_s'], 4)} | "
                f"{_fmt(t['ms_per_item'])} ({t['unit']}) | {_fmt(t['items_per_s'], 1)} | {_fmt(t['rtf'], 3)} | "
                f"{len(t['runs_s'])} | {_fmt(rss, 0)} |")
    return "\n".join(lines)
