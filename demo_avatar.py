"""Real-time talking head: microphone (or a speech file played at real-time pace) -> live video.

Usage: python demo_avatar.py [--avatar DIR] [--audio FILE] [--renderer mini|dinet] [--out live.mp4]

Audio is consumed in 40 ms blocks; every block yields one frame. Without --audio the default
microphone is used (needs the `sounddevice` package and PortAudio). Frames are shown in a window when a
display exists (q or Esc quits), otherwise --out is required and gets an mp4 with the audio. At the
end (file finished, window closed or Ctrl-C) it prints the achieved fps, the renderer's capacity
and the audio-to-frame latency (median and 95th percentile; it includes the audio model's lookahead).

Renderers: `mini` (DH_live_mini, ~40 MFLOPs per frame, the CPU default; AVATAR = an asset pack from
data_preparation_mini.py + data_preparation_web.py; default video_data/mini, built from the sample
data on first use) and `dinet` (DH_live 256x256, GPU-class, the default when CUDA is present;
AVATAR = a data_preparation.py folder, default video_data/test as in the original).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from talkingface.errors import UserInputError
from talkingface.products import PRODUCTS, get_product
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import check_input_file, check_output_file

log = logging.getLogger("demo_avatar")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--avatar", type=Path, default=None, help="avatar folder (default depends on --renderer)")
    ap.add_argument("--audio", type=Path, default=None, help="speech file played at real-time pace (default: microphone)")
    ap.add_argument("--renderer", choices=sorted(PRODUCTS), default=None,
                    help="mini (CPU default) or dinet (default with CUDA)")
    ap.add_argument("--out", type=Path, default=None, help="write an mp4 instead of (or when there is no) window")
    ap.add_argument("--ckpt", type=Path, default=None, help="render checkpoint (default: the renderer's)")
    ap.add_argument("--audio_ckpt", type=Path, default=None, help="audio model (default: the renderer's)")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many seconds of microphone audio")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads of torch and ONNX Runtime (default: 1 for mini, whose tiny per-frame work "
                         "only loses to thread hand-offs; the torch default for dinet)")
    ap.add_argument("--engine", default="auto", choices=["auto", "onnx", "torch"],
                    help="inference engine: auto = ONNX Runtime on CPU when installed (the fast path), else torch")
    ap.add_argument("--json", type=Path, default=None, help="also write the measurements as JSON")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface import realtime

    device = resolve_device(args.device)
    name = args.renderer or ("dinet" if device.startswith("cuda") else "mini")
    threads = args.threads if args.threads is not None else (1 if name == "mini" else 0)
    if threads > 0:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        import torch

        torch.set_num_threads(threads)
    if args.audio is not None:
        check_input_file(args.audio, "audio file")
    if args.out is not None:
        check_output_file(args.out, "output video")
    window = args.out is None and realtime.display_available()
    if args.out is None and not window:
        raise UserInputError("no display found: give --out OUT.mp4 to write the video")
    source = (realtime.FileAudioSource(args.audio) if args.audio is not None
              else realtime.MicrophoneAudioSource(args.seconds))
    try:
        pipeline = get_product(name).pipeline()
        avatar = args.avatar or pipeline.default_avatar()
        renderer = pipeline.StreamRenderer(avatar, args.ckpt, args.audio_ckpt, device=device, engine=args.engine,
                                           threads=threads if threads > 0 else None)
        track = source.audio if isinstance(source, realtime.FileAudioSource) else None
        sink = realtime.WindowSink() if window else realtime.Mp4Sink(args.out, audio=track)
        try:
            try:
                stats = realtime.run_stream(source, renderer, sink)
            finally:
                renderer.close()
            recorded = source.recorded() if isinstance(source, realtime.MicrophoneAudioSource) else None
            sink.close(audio=recorded)
        except BaseException:
            if isinstance(sink, realtime.Mp4Sink):
                sink.abort()  # a failed run leaves no temporary or partial file
            raise
    finally:
        source.close()
    summary = {"renderer": name, "device": device, "engine": renderer.engine, "threads": threads or None,
               **stats.summary()}
    if args.out is not None:
        summary["out"] = str(args.out)
    print(f"renderer {name} on {device} ({summary['engine']}): {summary['frames']} frames, {summary['fps']:.1f} fps "
          f"(renderer capacity {summary['render_capacity_fps']:.1f} fps), latency median "
          f"{summary['latency_ms_median']:.0f} ms, p95 {summary['latency_ms_p95']:.0f} ms "
          f"(of which {summary['algorithmic_latency_ms']:.0f} ms audio lookahead)")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
