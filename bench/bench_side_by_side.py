"""Eager torch against the fast path, side by side in one process, plus demo_mini end to end.

Pairs (each measured in interleaved rounds: eager block, fast block, eager block, ...; the reported
figure is the median over rounds of the per-call time; ratio = eager_ms / fast_ms):

- ``mini_network``: DINet_mini on one 3x72x72 patch, reference cached. Eager: the plain module
  (BatchNorm layers, 5-D AdaAT sampling: the reference implementation's speed). Fast: the network
  the fast pipeline below runs (ONNX Runtime; int8 when its calibration check passes, as in the
  product).
- ``mini_pipeline``: one frame of the renderer's network stage, from the uint8 crop and GL renders
  to the BGR change pasted into the frame. Eager: tensor conversions + the plain
  ``DINet_mini_pipeline.interface`` (interior blend). Fast: :class:`talkingface.fast.mini.FastMiniPipeline`
  (cv2.remap warp, label swap and blend in numpy, the network in ONNX Runtime; calibrated for int8 on
  4 other random frames and kept int8 only within 40 dB of float32 there, as the product does with
  the avatar's own frames; random GL input: the mouth interior is visible, so the network always runs).
- ``dinet_interface``: DINet_five_Ref.interface at 256x256 (random weights with non-trivial
  BatchNorm statistics, cached references). Fast: :class:`talkingface.fast.dinet.FastDINet`, int8
  (calibrated on 4 other inputs, kept only if within 35 dB of float32 there).
- ``audio_step``: one 40 ms Audio2Feature step with carried LSTM state. Eager: the torch module.
  Fast: the ONNX Runtime step graph.

Each pair runs at every ``--threads`` count (torch threads = ORT intra-op threads = OpenCV threads). Output lines:
``ratio <name> <eager_ms/fast_ms> threads=<n> eager_ms=<..> fast_ms=<..>`` (wall-clock medians; the
process CPU-time medians and their ratio follow in parentheses: on a machine shared with other jobs
the wall clock also counts waiting for a core), then ``psnr <name> <dB>`` of the fast output against
eager on the same inputs (outputs scaled to 0..255; audio: max |delta|).

``demo_mini``: :func:`talkingface.render_model_mini.synthesize` on a 60 s wav made of the sample
speech recordings (concatenated), in a child process (so its peak RSS is its own), with the fast
path and, unless ``--quick``, with ``--engine torch`` for comparison: ms/frame by stage, CPU time
per frame (this process + ffmpeg), RTF = CPU time / audio time, peak RSS.

    python bench/bench_side_by_side.py [--quick] [--threads 1,2] [--rounds 15] [--skip-demo]
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
from common import BenchReport, Timing, bench_argparser, peak_rss_mb

BENCH_DIR = Path(__file__).resolve().parent
CALLS = {"mini_network": 40, "mini_pipeline": 30, "dinet_interface": 1, "audio_step": 200}


def interleaved(pairs: Dict[str, Tuple[Callable, Callable]], rounds: int, calls: Dict[str, int]
                ) -> Dict[str, Dict[str, List[float]]]:
    """Per pair: per-call wall ms and process-CPU ms of ``rounds`` eager blocks and fast blocks,
    alternated round by round (keys eager, fast, eager_cpu, fast_cpu)."""
    out = {name: {"eager": [], "fast": [], "eager_cpu": [], "fast_cpu": []} for name in pairs}
    for name, (eager, fast) in pairs.items():  # warm-up
        eager()
        fast()
    for _ in range(rounds):
        for name, (eager, fast) in pairs.items():
            n = calls[name]
            for fn, key in ((eager, "eager"), (fast, "fast")):
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(n):
                    fn()
                out[name][key].append(1000.0 * (time.perf_counter() - t0) / n)
                out[name][key + "_cpu"].append(1000.0 * (time.process_time() - c0) / n)
    return out


def build_pairs(threads: int, quick: bool):
    """(pairs, quality): the callables of every pair at ``threads`` and the fast-vs-eager figures."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import cv2
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.export import graphs
    from talkingface.export.onnx_export import audio_module, mini_modules
    from talkingface.export.runtime import session_for
    from talkingface.fast import psnr_db
    from talkingface.fast.dinet import FastDINet
    from talkingface.fast.mini import FastMiniPipeline
    from talkingface.models.DINet import DINet_five_Ref

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)  # as the product does (talkingface.mini_pipeline.synthesize)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    pairs, quality = {}, {}

    # --- DINet_mini: the plain eager pipeline (reference speed) and its network
    pipe, _, _ = mini_modules(None)
    net = pipe.infer_model
    with torch.no_grad():
        feature = pipe.ref_input(torch.rand(1, 12, 72, 72, generator=gen))
    patch = torch.rand(1, 3, 72, 72, generator=gen)
    patch_np, feature_np = patch.numpy(), feature.numpy()

    def frame_inputs():
        crop = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        gl = rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)
        gl_warp = rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)
        gl_warp[..., :2] = 120 + gl_warp[..., :2] // 16  # displacements of a few pixels, like a real render
        return crop, gl, gl_warp

    crop, gl, gl_warp = frame_inputs()
    fast_pipe = FastMiniPipeline(pipe, threads)
    fast_pipe.set_reference(feature, calibration=[frame_inputs() for _ in range(4)])  # int8 if within 40 dB
    print(f"mini fast path: {fast_pipe.precision} network (calibration PSNR {fast_pipe.int8_psnr_db} dB "
          "against float32)")

    def eager_net():
        with torch.no_grad():
            return net.interface(patch)

    pairs["mini_network"] = (eager_net, lambda: fast_pipe.net(patch_np, feature_np)[0])
    quality["mini_network"] = psnr_db(eager_net().numpy(), pairs["mini_network"][1](), peak=1.0)

    def chw(img):
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float().div_(255.0)

    def eager_pipe():
        src = np.dstack([crop[..., ::-1], np.full(crop.shape[:2], 255, np.uint8)])
        with torch.no_grad():
            out = pipe.interface(chw(src), chw(gl), gl_warp=chw(gl_warp))[0, :3].permute(1, 2, 0).numpy()
        return out[..., ::-1] * 255.0 - crop.astype(np.float32)

    pairs["mini_pipeline"] = (eager_pipe, lambda: fast_pipe.delta(crop, gl, gl_warp))
    quality["mini_pipeline"] = psnr_db(crop + eager_pipe(), crop + fast_pipe.delta(crop, gl, gl_warp), peak=255.0)

    # --- DINet_five_Ref, random weights with non-trivial BatchNorm statistics
    torch.manual_seed(0)
    dinet = DINet_five_Ref(6, 30).eval()
    for m in dinet.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
    src, prompt = torch.rand(1, 3, 256, 256, generator=gen), torch.rand(1, 3, 256, 256, generator=gen)
    with torch.no_grad():
        dinet.ref_input(torch.rand(1, 30, 256, 256, generator=gen))
    fast_dinet = FastDINet(dinet, threads)  # int8, calibrated on 4 other random inputs and checked
    fast_dinet.set_reference(dinet, [(torch.rand(1, 3, 256, 256, generator=gen), torch.rand(1, 3, 256, 256, generator=gen))
                                     for _ in range(4)])
    print(f"dinet fast path: {fast_dinet.precision} (calibration PSNR {fast_dinet.int8_psnr_db} dB against float32)")

    def eager_dinet():
        with torch.no_grad():
            return dinet.interface(src, prompt)

    pairs["dinet_interface"] = (eager_dinet, lambda: fast_dinet.interface(src, prompt))
    quality["dinet_interface"] = psnr_db(eager_dinet().numpy(), pairs["dinet_interface"][1]().numpy(), peak=1.0)

    # --- Audio2Feature streaming step
    anet, _ = audio_module(None)
    step = session_for(graphs.AudioStepGraph(anet), "audio_step", threads)
    fb = (2.0 * torch.randn(1, 2, 80, generator=gen) + 8.0)
    h, c = anet.init_state(1)
    fb_np, h_np, c_np = fb.numpy(), h.numpy(), c.numpy()

    def eager_step():
        with torch.no_grad():
            return anet(fb, h, c)[0][:, 0]

    pairs["audio_step"] = (eager_step, lambda: step(fb_np, h_np, c_np)[0])
    quality["audio_step_max_abs"] = float(np.abs(eager_step().numpy() - pairs["audio_step"][1]()).max())
    return pairs, quality


# ------------------------------------------------------------------------------------ demo_mini
def speech_wav(seconds: float, out: Path) -> Path:
    """``seconds`` of real speech: the sample speech recordings concatenated (repeated if short)."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.util.media import load_audio, save_wav
    from talkingface.util.sample_data import sample_data_dir

    clips = [load_audio(p) for p in sorted((sample_data_dir() / "speech").glob("*.wav"))]
    audio = np.concatenate(clips)
    audio = np.tile(audio, int(np.ceil(seconds * 16000 / audio.size)))[: int(seconds * 16000)]
    return save_wav(out, audio)


def demo_child(pack: str, wav: str, out: str, engine: str, threads: int) -> int:
    """Run synthesize once in this (fresh) process and print one JSON line of its figures."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.mini_pipeline import synthesize

    stats = synthesize(pack, wav, out, progress=False, threads=threads, engine=engine)
    peak = peak_rss_mb()  # this child's own peak (not getrusage's: it inherits the parent's, see there)
    print(json.dumps({"engine": engine, "frames": stats.frames, "audio_s": stats.audio_seconds,
                      "per_frame_ms": stats.per_frame_ms(), "load_s": stats.load, "wall_s": stats.total,
                      "cpu_s": stats.cpu, "cpu_ms_per_frame": 1000.0 * stats.cpu / max(stats.frames, 1),
                      "rtf_cpu": stats.cpu_rtf, "rtf_wall": stats.rtf, "peak_rss_mb": peak,
                      "stage_cpu_ms": {k: 1000.0 * v / max(stats.frames, 1) for k, v in stats.stage_cpu.items()},
                      "network_frames": stats.network_frames}))
    return 0


def run_demo(pack: Path, wav: Path, engine: str, threads: int, workdir: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--demo-child", str(pack), str(wav),
           str(workdir / f"demo_{engine}.mp4"), engine, str(threads)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH_DIR.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"demo_mini child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--demo-child":
        a = sys.argv[2:]
        return demo_child(a[0], a[1], a[2], a[3], int(a[4]))
    parser = bench_argparser("eager torch vs the fast path, side by side; demo_mini end to end")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per pair (default 15)")
    parser.add_argument("--seconds", type=float, default=60.0, help="demo_mini wav length (default 60)")
    parser.add_argument("--pack", type=Path, default=None, help="asset pack (default: the sample avatar's, cached)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "talkingface_bench_mini")
    parser.add_argument("--skip-demo", action="store_true", help="only the side-by-side pairs")
    args = parser.parse_args(argv)
    report = BenchReport("side_by_side", args)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.errors import UserInputError
    from talkingface.export.runtime import ort_available

    if not ort_available():
        raise UserInputError("the fast path needs onnxruntime and onnx (pip install -r requirements.txt)")
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    rounds = 5 if args.quick else max(args.rounds, 5)
    report.note("load_avg_1m_start", round(os.getloadavg()[0], 2))
    for n in threads:
        pairs, quality = build_pairs(n, args.quick)
        calls = {k: max(1, v // 4) if args.quick else v for k, v in CALLS.items()}
        res = interleaved(pairs, rounds, calls)
        for name, r in res.items():
            e, f = statistics.median(r["eager"]), statistics.median(r["fast"])
            ec, fc = statistics.median(r["eager_cpu"]), statistics.median(r["fast_cpu"])
            print(f"ratio {name} {e / f:.2f} threads={n} eager_ms={e:.3f} fast_ms={f:.3f} "
                  f"(CPU time: ratio {ec / fc:.2f}, eager {ec:.3f} ms, fast {fc:.3f} ms)")
            report.note(f"ratio_{name}_t{n}", round(e / f, 3))
            report.note(f"cpu_ratio_{name}_t{n}", round(ec / fc, 3))
            for label in ("eager", "fast"):
                report.add(Timing(name=f"{name} {label} t{n}", runs_s=[v / 1000.0 for v in r[label]], unit="call"))
        for name, value in quality.items():
            print(f"psnr {name} {value:.2f} dB" if not name.endswith("max_abs") else f"{name} {value:.2e}")
            report.note(f"quality_{name}_t{n}", round(value, 6))
    if not args.skip_demo:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        from talkingface.sample_avatar import ensure_sample_mini_avatar

        args.cache.mkdir(parents=True, exist_ok=True)
        pack = args.pack or ensure_sample_mini_avatar(args.cache / "avatar") / "assets"
        seconds = 10.0 if args.quick else args.seconds
        wav = speech_wav(seconds, args.cache / f"speech_{int(seconds)}s.wav")
        engines = ["onnx"] if args.quick else ["onnx", "torch"]
        for engine in engines:
            d = run_demo(pack, wav, engine, 1, args.cache)
            stages = ", ".join(f"{k} {v:.2f}" for k, v in d["per_frame_ms"].items())
            stages += "; thread CPU ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in d["stage_cpu_ms"].items())
            stages += f"; network ran on {d['network_frames']}/{d['frames']} frames"
            print(f"demo_mini engine={engine} {seconds:g} s wav: {d['cpu_ms_per_frame']:.2f} ms/frame CPU, "
                  f"RTF {d['rtf_cpu']:.3f} (CPU/audio), {d['rtf_wall']:.3f} wall; stages ms/frame: {stages}; "
                  f"load {d['load_s']:.2f} s; peak RSS {d['peak_rss_mb']:.0f} MB")
            for k, v in d.items():
                if isinstance(v, (int, float)):
                    report.note(f"demo_{engine}_{k}", round(v, 4))
            report.note(f"demo_{engine}_stages_ms", {k: round(v, 3) for k, v in d["per_frame_ms"].items()})
    report.note("load_avg_1m_end", round(os.getloadavg()[0], 2))
    print(f"load average (1 min) {report.notes['load_avg_1m_start']} at start, {report.notes['load_avg_1m_end']} at end")
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
