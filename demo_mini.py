"""DH_live_mini offline synthesis: an avatar asset pack + speech -> a lip-synced mp4 with the audio.

Usage: python demo_mini.py ASSETS_DIR AUDIO OUT.mp4 [--ckpt DINet_mini.pth] [--audio_ckpt LSTM.pkl]

ASSETS_DIR holds 01.mp4 + combined_data.json.gz (ours from data_preparation_web.py, or the original's
8b74e3f / 3e5ce86 packs; OUT_DIR/assets is found from OUT_DIR too). AUDIO: any format, rate and
channel count, any length. Runs headless (EGL) on CPU; one frame per 40 ms of audio.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.paths import DINET_MINI_CHECKPOINT
from talkingface.util.cli import resolve_device, demo_parser, run_cli, setup_logging
from talkingface.util.media import DEMO_PRESET

log = logging.getLogger("demo_mini")


def main(argv=None) -> int:
    ap = demo_parser(__doc__, "assets", "asset pack folder")
    ap.add_argument("--ckpt", type=Path, default=DINET_MINI_CHECKPOINT, help="DINet_mini weights")
    ap.add_argument("--audio_ckpt", type=Path, default=None,
                    help="blendshape audio model (default: the shipped one under checkpoint/)")
    ap.add_argument("--pack_ref", choices=("auto", "yes", "no"), default="auto",
                    help="use the pack's ref_data: auto = only if it was made with --ckpt")
    ap.add_argument("--bs_scale", type=float, default=1.0, help="scale of the mouth motion")
    ap.add_argument("--blend", choices=("original", "interior"), default="interior",
                    help="interior (default): the network paints only the mouth opening, lips and skin are "
                         "warped; original: its output over the whole mouth window, as the reference")
    ap.add_argument("--warp_only", action="store_true", help="skip the network (GL warp only), for comparison")
    ap.add_argument("--mosaic", type=Path, default=None, help="also write a PNG of 8 output mouths")
    ap.add_argument("--backend", default="auto", choices=("auto", "egl", "glfw"), help="OpenGL backend")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads of torch, ONNX Runtime and the x264 encoder (default 1: fastest at "
                         "batch 1; the encoder runs beside it)")
    ap.add_argument("--engine", default="auto", choices=("auto", "onnx", "torch"),
                    help="inference engine: auto = the ONNX Runtime fast path when installed, else torch")
    ap.add_argument("--preset", default=DEMO_PRESET,
                    choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"),
                    help=f"x264 preset of the output (default {DEMO_PRESET}: least CPU, larger files; "
                         "veryfast and slower give smaller files)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.mini_pipeline import synthesize

    stats = synthesize(args.assets, args.audio, args.out, render_checkpoint=args.ckpt, audio_checkpoint=args.audio_ckpt,
                       device=resolve_device(args.device), backend=args.backend,
                       use_pack_ref={"auto": None, "yes": True, "no": False}[args.pack_ref],
                       bs_scale=args.bs_scale, use_network=not args.warp_only, progress=not args.quiet,
                       mosaic=args.mosaic, threads=args.threads, blend=args.blend, engine=args.engine,
                       preset=args.preset)
    per = stats.per_frame_ms()
    log.info("wrote %s: %d frames, %.2f s of audio in %.2f s (RTF %.2f, CPU %.2f s/s, %s engine); ms/frame %s",
             args.out, stats.frames, stats.audio_seconds, stats.total, stats.rtf, stats.cpu_rtf, stats.engine,
             ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    return 0


def cli() -> None:
    """Console entry point (pyproject.toml [project.scripts])."""
    run_cli(main)


if __name__ == "__main__":
    cli()
