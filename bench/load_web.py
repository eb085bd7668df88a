"""Bounded load test of the stream websocket on loopback: N clients for T seconds, then it stops.

Starts ``serve_web.py`` on 127.0.0.1 (no other address is ever contacted), connects ``--clients``
websocket clients to ``/ws/drive``; each asks for the sample speech again and again for ``--seconds``
and records every frame's arrival. Also sends each client one malformed message (expects an
``error`` reply, connection kept) and posts one oversized upload (expects 413). Reports: errors,
frames per client, inter-arrival pacing (median / p95 / max gap, ms), frames per second per client,
the server's CPU time per streamed frame (independent of other load on the machine) and its resident
memory sampled every second.

Usage: python bench/load_web.py [--clients 20] [--seconds 30] [--json OUT]
"""
from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import BenchReport, Timing, bench_argparser

from talkingface.errors import UserInputError

HOST = "127.0.0.1"
MAX_SECONDS = 120.0  # hard cap, whatever is asked


async def client(url: str, seconds: float, speech: str, stats: dict) -> None:
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import websockets

    arrivals = []
    errors = []
    utterances = 0
    deadline = time.monotonic() + seconds
    async with websockets.connect(url, max_size=1 << 20, open_timeout=30) as ws:
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            errors.append(f"first message {ready}")
        await ws.send("{malformed")
        reply = json.loads(await ws.recv())
        if reply.get("type") != "error":
            errors.append(f"malformed message not rejected: {reply}")
        await ws.send(json.dumps({"type": "say", "audio": speech}))
        while time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(ws.recv(), timeout=max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if isinstance(msg, bytes):
                arrivals.append((time.monotonic(), utterances))
                continue
            m = json.loads(msg)
            if m["type"] == "end":
                utterances += 1
                await ws.send(json.dumps({"type": "say", "audio": speech}))
            elif m["type"] == "error":
                errors.append(m["error"])
        await ws.send(json.dumps({"type": "clear"}))
    stats["arrivals"] = arrivals
    stats["errors"] = errors
    stats["utterances"] = utterances


def oversized_upload(base: str) -> int:
    """Announce a 30 MB speech upload, send its first 64 kB, and return the status the server answers
    (413 expected before the body is read)."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import http.client
    from urllib.parse import urlparse

    u = urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/audio")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(30 * 1024 * 1024))
        conn.endheaders()
        try:
            conn.send(b"\0" * 65536)
        except OSError:
            pass  # the server may already have answered and closed
        return conn.getresponse().status
    finally:
        conn.close()


async def run_load(base: str, pid: int, clients: int, seconds: float, speech: str):
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import psutil

    proc = psutil.Process(pid)
    url = base.replace("http://", "ws://") + "ws/drive"
    stats = [dict() for _ in range(clients)]
    memory = []

    async def sample_memory():
        while True:
            memory.append(proc.memory_info().rss / 2 ** 20)
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_memory())
    cpu0 = sum(proc.cpu_times()[:2])
    results = await asyncio.gather(*(client(url, seconds, speech, s) for s in stats), return_exceptions=True)
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    sampler.cancel()
    memory.append(proc.memory_info().rss / 2 ** 20)
    return stats, results, memory, cpu


def main(argv=None) -> int:
    parser = bench_argparser(__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent websocket clients (1..64)")
    parser.add_argument("--seconds", type=float, default=30.0, help=f"duration (at most {MAX_SECONDS:.0f} s)")
    parser.add_argument("--speech", default="sample-zh", help="speech id each client asks for")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 64:
        raise UserInputError("--clients must be 1..64")
    seconds = min(max(args.seconds, 1.0), MAX_SECONDS)
    if args.quick:
        seconds = min(seconds, 10.0)
    report = BenchReport("web_load", args)

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.web.harness import Server

    tmp = Path(tempfile.mkdtemp(prefix="load_web_"))
    try:
        server = Server(tmp / "packs", tmp / "work", tmp / "models", extra=["--max_clients", str(args.clients + 4)])
        try:
            base = server.url
            if not base.startswith(f"http://{HOST}:"):
                raise UserInputError(f"the server is not on loopback ({base}): refusing to load it")
            upload_status = oversized_upload(base)
            t0 = time.monotonic()
            stats, results, memory, server_cpu = asyncio.run(run_load(base, server.proc.pid, args.clients, seconds, args.speech))
            wall = time.monotonic() - t0
            alive = server.proc.poll() is None
        finally:
            server.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    errors = failures + [e for s in stats for e in s.get("errors", [])]
    gaps, rates, frames, late = [], [], [], []
    for s in stats:
        arr = s.get("arrivals", [])
        frames.append(len(arr))
        if len(arr) > 12:
            times = np.array([a for a, _ in arr])
            utt = np.array([u for _, u in arr])
            same = utt[1:] == utt[:-1]
            d = np.diff(times)[same][10:] * 1000.0  # within one utterance, after the initial burst
            k = np.arange(len(times))
            for u in np.unique(utt):
                sel = utt == u
                if sel.sum() > 10:  # arrival against a 25 fps schedule fitted to the utterance (after the burst)
                    x = times[sel][5:] - (k[sel][5:] - k[sel][0]) * 0.04
                    late.extend((x - np.median(x)).tolist())
            gaps.extend(d.tolist())
            rates.append(len(arr) / seconds)
    report.add(Timing("frame_gap", [g / 1000.0 for g in gaps] or [0.0], unit="frame"))
    report.note("clients", f"{args.clients} for {seconds:.0f} s (wall {wall:.1f} s), server alive after: {alive}")
    report.note("errors", f"{len(errors)}" + (f": {errors[:3]}" if errors else ""))
    report.note("frames_per_client", f"min {min(frames)} median {int(np.median(frames))} max {max(frames)}")
    report.note("fps_per_client", f"median {np.median(rates):.2f} (25 = real time)" if rates else "n/a")
    if gaps:
        report.note("pacing_ms", f"median {np.median(gaps):.1f}, p95 {np.percentile(gaps, 95):.1f}, "
                                 f"p99 {np.percentile(gaps, 99):.1f}, max {max(gaps):.1f}")
    q = [memory[min(len(memory) - 1, int(f * (len(memory) - 1)))] for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    if late:
        report.note("schedule_jitter_ms", f"arrival minus a 25 fps schedule: p5 {1000 * np.percentile(late, 5):.1f}, "
                                          f"p95 {1000 * np.percentile(late, 95):.1f}, max {1000 * max(late):.1f}")
    report.note("server_rss_mb", "at 0/25/50/75/100 % of the run: " + " / ".join(f"{v:.0f}" for v in q)
                + f", peak {max(memory):.0f} ({len(memory)} samples)")
    report.note("oversized_upload_status", str(upload_status))
    total = sum(frames)
    if total:
        per_frame = 1000.0 * server_cpu / total
        report.note("server_cpu", f"{server_cpu:.1f} s for {total} frames = {per_frame:.2f} ms CPU per streamed frame "
                                  f"(one core streams {1000.0 / per_frame / 25:.0f} clients at 25 fps)")
    for key, value in report.notes.items():
        print(f"{key}: {value}")
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
