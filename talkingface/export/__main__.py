"""Export the project's networks to ONNX for ONNX Runtime and the browser player.

Usage:
  python -m talkingface.export onnx --what all --out onnx/
  python -m talkingface.export onnx --what audio_step --what mini --out web/models --mini_ckpt my.pth

Targets (--what, repeatable): audio_step (Audio2Feature streaming step, explicit LSTM state),
audio_offline (a whole utterance), mini (mini_pipeline, mini_network, mini_ref: DINet_mini with
the warp, label swap and interior blend), dinet (DINet_five_Ref per-frame graph and its reference
encoder; needs --dinet_ckpt or checkpoint/render.pth), all. Writes DIR/<graph>.onnx and
DIR/manifest.json (shapes, source checkpoint sha256, max |delta| against torch); the I/O contract
is docs/ONNX.md.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging

log = logging.getLogger("talkingface.export")


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    onnx = sub.add_parser("onnx", help="write ONNX files and manifest.json")
    onnx.add_argument("--what", action="append", default=None,
                      choices=("audio_step", "audio_offline", "mini", "dinet", "all"),
                      help="what to export (repeatable; default all)")
    onnx.add_argument("--out", type=Path, required=True, help="output folder")
    onnx.add_argument("--audio_ckpt", type=Path, default=None,
                      help="Audio2Feature checkpoint (default: the shipped blendshape model)")
    onnx.add_argument("--mini_ckpt", type=Path, default=None, help="DINet_mini weights (default: the shipped ones)")
    onnx.add_argument("--dinet_ckpt", type=Path, default=None, help="DINet_five_Ref weights (default checkpoint/render.pth)")
    onnx.add_argument("--no_check", action="store_true", help="skip the ONNX Runtime parity check")
    args = ap.parse_args(argv)
    setup_logging()
    for p in (args.audio_ckpt, args.mini_ckpt, args.dinet_ckpt):
        if p is not None and not p.is_file():
            raise UserInputError(f"checkpoint not found: {p}")
    if args.out.exists() and not args.out.is_dir():
        raise UserInputError(f"--out {args.out} exists and is not a folder")
    # Lazy: loaded after the cheap checks, so --help and bad arguments answer at once (torch is slow to import).
    from talkingface.export.onnx_export import Sources, export_models
    from talkingface.export.runtime import ort_available

    if not ort_available():
        raise UserInputError("ONNX export needs the onnx and onnxruntime packages (pip install -r requirements.txt)")
    manifest = export_models(args.what or ["all"], args.out,
                             Sources(audio=args.audio_ckpt, mini=args.mini_ckpt, dinet=args.dinet_ckpt),
                             check=not args.no_check)
    log.info("%s: %s", args.out / "manifest.json", ", ".join(sorted(manifest["files"])))
    return 0


if __name__ == "__main__":
    run_cli(main)
