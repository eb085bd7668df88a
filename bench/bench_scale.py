"""Scale case of demo_mini.py: peak memory against the length of the speech.

Target (issue 11): a 1-hour wav through ``demo_mini.py`` peaks within 150 MB of a 10-s run. The
synthesis streams the audio (ffmpeg decode -> fbank -> LSTM rows -> frames -> encoder, see
:func:`talkingface.mini_pipeline.synthesize`), so nothing per frame is kept for the whole file.

Each duration runs ``demo_mini.py`` as its own process on the sample avatar (built once into
``--cache`` from the built-in sample video) and a speech file of that length (the built-in English
clip repeated, written as a 16 kHz wav). Measured: the demo process's own peak RSS (its ``VmHWM``),
the peak RSS of its whole process tree (demo + ffmpeg, sampled every 0.2 s), wall time and the
real-time factor, and the output's frame count (25 x duration).

    python bench/bench_scale.py [--seconds 10 600 1800 3600] [--quick] [--json OUT.json]
      --quick: 4 s and 30 s.  Long runs: `nice -n 10` and OMP_NUM_THREADS=1 on a shared machine.
      --stage audio: only the length-dependent half (streamed decode + fbank + audio model rows), which
      runs a 1-hour file in minutes where the whole demo takes about an hour per hour of speech.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from common import BenchReport, bench_argparser
from talkingface.config.paths import CLONE_ROOT

REPO = CLONE_ROOT or Path(__file__).resolve().parent.parent  # the clone whose demo_mini.py is measured


def speech_of_length(seconds: float, out: Path) -> Path:
    """A 16 kHz mono wav of ``seconds``: the built-in English clip repeated (written in blocks)."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import soundfile as sf

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.config.paths import SAMPLE_SPEECH_EN
    from talkingface.util.media import load_audio

    clip = load_audio(SAMPLE_SPEECH_EN)
    total = int(round(seconds * 16000))
    with sf.SoundFile(str(out), "w", samplerate=16000, channels=1, subtype="PCM_16", format="WAV") as fh:
        done = 0
        while done < total:
            piece = clip[: total - done]
            fh.write(piece)
            done += piece.size
    return out


def _status_kb(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` memory field in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith(key + ":"))
    except (OSError, StopIteration):
        return 0


def _tree_rss_kb(pid: int) -> int:
    """Resident memory (kB) of ``pid`` and its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(children.get(p, []))
        total += _status_kb(p, "VmRSS")
    return total


#: ``--stage audio``: only the part of demo_mini whose work grows with the speech - streamed decoding,
#: fbank and the audio model's rows - in its own process (frames are produced one by one and never kept).
AUDIO_STAGE = """
import sys
from talkingface.audio_loader import load_audio_model
from talkingface.util.media import iter_audio
model, _ = load_audio_model(None, "blendshape", basis_required=False)
rows = sum(len(block) for block in model.interface_stream(iter_audio(sys.argv[1])))
print(rows)
"""


def run_demo(pack: Path, wav: Path, out: Path, stage: str = "demo") -> dict:
    """One ``demo_mini.py`` process (or the audio stage alone): its own peak RSS, the tree's sampled
    peak, wall time.

    The process's peak is its ``VmHWM`` (high-water mark of the memory of the program it runs),
    polled until it exits. Not ``wait4``'s ``ru_maxrss``: Linux carries the pre-``exec`` memory of
    the forked child - a copy of this (large) bench process - into that figure."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [sys.executable, str(REPO / "demo_mini.py"), str(pack), str(wav), str(out), "--quiet"]
    if stage == "audio":
        cmd = [sys.executable, "-c", AUDIO_STAGE, str(wav)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_tree, peak_own = [0], [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak_own[0] = max(peak_own[0], _status_kb(proc.pid, "VmHWM"))
            peak_tree[0] = max(peak_tree[0], _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, still readable in /proc
    peak_own[0] = max(peak_own[0], _status_kb(proc.pid, "VmHWM"))
    _, status, _ = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"demo_mini failed ({proc.returncode}): {stderr[-2000:]}")
    return {"peak_rss_mb": peak_own[0] / 1024.0, "peak_tree_rss_mb": peak_tree[0] / 1024.0, "wall_s": wall}


def main(argv=None) -> int:
    parser = bench_argparser("demo_mini peak memory against speech length")
    parser.add_argument("--seconds", type=float, nargs="+", default=None,
                        help="speech durations to run (default 10 3600; --quick: 4 30)")
    parser.add_argument("--cache", type=Path, default=REPO / "output" / "bench_cache",
                        help="where the sample avatar is built once")
    parser.add_argument("--stage", choices=("demo", "audio"), default="demo",
                        help="demo: the whole demo_mini.py; audio: only its length-dependent audio half")
    args = parser.parse_args(argv)
    report = BenchReport("scale", args)
    report.note("stage", args.stage)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.sample_avatar import ensure_sample_mini_avatar
    from talkingface.util.media import count_frames

    durations = args.seconds or ([4.0, 30.0] if args.quick else [10.0, 3600.0])
    pack = ensure_sample_mini_avatar(args.cache / "avatar") / "assets" if args.stage == "demo" else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        for seconds in durations:
            wav = speech_of_length(seconds, Path(tmp) / f"speech_{seconds:g}s.wav")
            out = Path(tmp) / f"out_{seconds:g}s.mp4"
            result = run_demo(pack, wav, out, args.stage)
            frames = count_frames(out) if args.stage == "demo" else None
            result.update(seconds=seconds, frames=frames, expected_frames=int(np.ceil(seconds * 25)),
                          rtf=result["wall_s"] / seconds)
            rows.append(result)
            report.note(f"{seconds:g}s", {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
            print(f"{seconds:8.0f} s speech: peak RSS {result['peak_rss_mb']:.0f} MB (tree {result['peak_tree_rss_mb']:.0f}"
                  f" MB), {frames} frames, wall {result['wall_s']:.0f} s (RTF {result['rtf']:.2f})", flush=True)
            out.unlink(missing_ok=True)
            wav.unlink()
    base = rows[0]
    for r in rows[1:]:
        growth = r["peak_rss_mb"] - base["peak_rss_mb"]
        report.note(f"growth_{r['seconds']:g}s_vs_{base['seconds']:g}s_mb", round(growth, 1))
        print(f"peak RSS growth {base['seconds']:g} s -> {r['seconds']:g} s: {growth:+.0f} MB "
              f"(target: within 150 MB for 1 h)")
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
