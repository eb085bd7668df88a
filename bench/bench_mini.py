"""DH_live_mini speed: DINet_mini alone, the 128x128 pipeline, and demo_mini end to end.

Stages (docs/EVALUATION.md §5; medians of >= 5 runs after a warm-up):

- ``DINet_mini interface``: the network on one 3x72x72 mouth patch with the reference cached
  (what runs per frame), in frames per second; target >= 200 fps on CPU.
- ``pipeline interface``: warp + label swap + network + blend on 128x128 RGBA crops.
- ``demo_mini``: :func:`talkingface.mini_pipeline.synthesize` (the ``mini`` product of :mod:`talkingface.products`) on a 10 s speech clip (3 s with
  ``--quick``): pack loading, audio model, GL render, network, paste and encode, with the audio
  muxed in; per-stage milliseconds per frame and the real-time factor (processing / audio time).

The avatar is our own pack of ``dh_live/video_data/000002/video.mp4`` (built once into
``--cache``), or ``--pack DIR``. Without the shipped DINet_mini checkpoint the timings use random
weights (speed does not depend on them).

    python bench/bench_mini.py [--quick] [--pack DIR] [--ckpt PTH] [--json OUT.json]
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from common import BenchReport, bench_argparser, measure


def speech_clip(seconds: float, out: Path) -> Path:
    """The first ``seconds`` of a real English speech recording, as a 16 kHz wav."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.util.media import load_audio, save_wav
    from talkingface.util.sample_data import sample_path

    wav = load_audio(sample_path("speech", "speech_orig_16k.wav"))
    return save_wav(out, wav[: int(seconds * 16000)])


def main(argv=None) -> int:
    parser = bench_argparser("DH_live_mini: network, pipeline and demo_mini speed")
    parser.add_argument("--pack", type=Path, default=None, help="asset pack (default: ours of 000002, cached)")
    parser.add_argument("--ckpt", type=Path, default=None, help="DINet_mini weights (default: the shipped one)")
    parser.add_argument("--audio_ckpt", type=Path, default=None, help="blendshape audio model (default: shipped)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "talkingface_bench_mini")
    parser.add_argument("--backend", default="auto", choices=["auto", "egl", "glfw"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (demo_mini's default: 1)")
    args = parser.parse_args(argv)
    report = BenchReport("mini", args)
    device = report.device

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.models.DINet_mini import DINet_mini_pipeline
    from talkingface.config.paths import DINET_MINI_CHECKPOINT as DEFAULT_CHECKPOINT
    from talkingface.products import get_product
    from talkingface.sample_avatar import ensure_sample_mini_avatar

    if device == "cpu":
        torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    ckpt = args.ckpt or DEFAULT_CHECKPOINT
    if not Path(ckpt).is_file():
        ckpt = args.cache / "random_dinet_mini.pth"
        torch.manual_seed(0)
        torch.save({"state_dict": {"net_g": DINet_mini_pipeline().infer_model.state_dict()}}, ckpt)
        report.note("weights", "random (no shipped checkpoint)")
    else:
        report.note("weights", str(ckpt))

    # --- the network alone, batch 1, reference cached
    from mini_live.generate_fusion_mask import load_fusion_masks
    from talkingface.models.DINet_mini import load_dinet_mini_state

    pipe = DINet_mini_pipeline(3, 12, *load_fusion_masks()).to(device).eval()
    pipe.infer_model.load_state_dict(load_dinet_mini_state(ckpt), strict=True)
    pipe.infer_model = pipe.infer_model.eval().fused()  # what RenderModelMini runs
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    n_net = 50 if report.quick else 300
    with torch.no_grad():
        pipe.ref_input(torch.rand(1, 12, 72, 72, device=device))
        patch = torch.rand(1, 3, 72, 72, device=device)
        src = torch.rand(1, 4, 128, 128, device=device)
        gl = torch.full((1, 4, 128, 128), 0.5, device=device)
        gl[:, :3, 50:70, 40:90] = torch.tensor([1.0, 0.0, 0.0], device=device).view(1, 3, 1, 1)

        cpu = []

        def net() -> None:
            c0 = time.process_time()
            for _ in range(n_net):
                pipe.infer_model.interface(patch)
            cpu.append(time.process_time() - c0)

        def full() -> None:
            for _ in range(n_net):
                pipe.interface(src, gl)

        t_net = report.add(measure(net, name="DINet_mini interface 72x72", items=n_net, runs=args.runs,
                                   warmup=args.warmup, sync=sync))
        # process CPU time: on a machine shared with other jobs the wall clock also counts waiting for a core
        net_cpu_fps = n_net / float(np.median(cpu[-len(t_net.runs_s):]))
        t_pipe = report.add(measure(full, name="pipeline interface 128x128", items=n_net, runs=args.runs,
                                    warmup=args.warmup, sync=sync))

    # --- demo_mini end to end
    pack = args.pack or ensure_sample_mini_avatar(args.cache / "avatar", checkpoint=Path(ckpt)) / "assets"
    seconds = 3.0 if report.quick else 10.0
    wav = speech_clip(seconds, args.cache / f"speech_{int(seconds)}s.wav")
    out = args.cache / "bench_demo_mini.mp4"
    stats = []

    synthesize = get_product("mini").pipeline().synthesize

    def demo() -> None:
        stats.append(synthesize(pack, wav, out, render_checkpoint=ckpt, audio_checkpoint=args.audio_ckpt, device=device,
                                backend=args.backend, progress=False, threads=args.threads if device == "cpu" else None))

    t_demo = report.add(measure(demo, name=f"demo_mini {seconds:g} s wav", items=int(seconds * 25),
                                runs=args.runs, warmup=args.warmup, audio_seconds=seconds))
    runs = stats[-len(t_demo.runs_s):]
    per_stage = {k: float(np.median([s.per_frame_ms()[k] for s in runs])) for k in runs[0].per_frame_ms()}
    load_ms = float(np.median([s.load for s in runs])) * 1000.0
    print("\nper-stage ms/frame (median of runs): " + ", ".join(f"{k} {v:.2f}" for k, v in per_stage.items())
          + f"; pack loading {load_ms:.0f} ms per run")
    cpu_rtf = float(np.median([s.cpu_rtf for s in runs]))
    print(f"DINet_mini: {t_net.items_per_s:.0f} fps wall, {net_cpu_fps:.0f} fps CPU time, "
          f"{torch.get_num_threads()} threads (target >= 200); demo_mini RTF {t_demo.rtf:.3f} wall, "
          f"{cpu_rtf:.3f} CPU s per audio s (target < 1, aim <= 0.3)")
    for k, v in per_stage.items():
        report.note(f"{k}_ms_per_frame", round(v, 3))
    report.note("load_ms_per_run", round(load_ms, 1))
    report.note("network_fps", round(t_net.items_per_s, 1))
    report.note("network_fps_cpu_time", round(net_cpu_fps, 1))
    report.note("torch_threads", torch.get_num_threads())
    report.note("pipeline_fps", round(t_pipe.items_per_s, 1))
    report.note("rtf", round(t_demo.rtf, 4))
    report.note("cpu_rtf", round(float(np.median([s.cpu_rtf for s in runs])), 4))
    report.note("pack", str(pack))
    report.note("load_average_1min", round(os.getloadavg()[0], 2))
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
