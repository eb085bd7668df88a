"""Serve the browser player: avatars speak in the browser (WebGL2 + ONNX Runtime Web), on 127.0.0.1.

Usage: python serve_web.py [--port 8000] [--host 127.0.0.1] [--packs DIR] [--models DIR]
       python -m talkingface.web ...  (the same)

Then open http://127.0.0.1:8000/ : pick an avatar and a speech file (or the sample) and press Play;
"Stream" plays the same speech through the server's websocket instead (server-side audio model);
"Build avatar" turns an uploaded silent video into a pack; "Make mp4" renders one offline.
What runs where: the page decodes the speech, computes the fbank and the audio model (ONNX), renders
the mouth mesh (WebGL2), runs DINet_mini (ONNX, wasm) and pastes it into the avatar video; the
server only serves files, builds packs, renders mp4s and streams speech + coefficients.

Needs `npm ci` once (onnxruntime-web's wasm runtime, served from node_modules) and the ONNX models
(exported on first start when missing). Binds 127.0.0.1 unless --host says otherwise.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Dict, Optional, Sequence

from talkingface.errors import UserInputError
from talkingface.util.cli import script_parser, setup_logging

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # switch to talkingface.config.paths once it lands
DEFAULT_PACKS = ROOT / "video_data" / "web"
DEFAULT_WORK = ROOT / "output" / "web"
DEFAULT_MODELS = ROOT / "build" / "onnx"
DEFAULT_ORT = ROOT / "node_modules" / "onnxruntime-web" / "dist"
SAMPLE_AUDIO_DIR = Path("/work/shared/samples")  # TEMP until talkingface.config.paths lands


def sample_audio() -> Dict[str, Path]:
    """The built-in speech samples: id -> file."""
    out = {}
    for audio_id, name in (("sample-en", "speech_en_LJ001-0001.flac"), ("sample-zh", "speech_zh_BAC009S0764W0121.wav")):
        path = SAMPLE_AUDIO_DIR / name
        if path.is_file():
            out[audio_id] = path
    return out


def build_config(args):
    from talkingface.sample_avatar import DEFAULT_MINI_AVATAR
    from talkingface.web.app import WebConfig

    ort_dir = Path(args.ort) if args.ort else Path(os.environ.get("TALKINGFACE_ORT_DIR", DEFAULT_ORT))
    return WebConfig(packs_dir=Path(args.packs), work_dir=Path(args.work), models_dir=Path(args.models),
                     ort_dir=ort_dir, sample_avatar=None if args.no_sample else DEFAULT_MINI_AVATAR,
                     sample_audio=sample_audio(), max_video_bytes=int(args.max_video_mb * 1024 * 1024),
                     max_audio_bytes=int(args.max_audio_mb * 1024 * 1024), max_clients=args.max_clients)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=8000, help="port (0 = any free port; the URL is printed)")
    ap.add_argument("--packs", default=str(DEFAULT_PACKS), help="folder of avatars/packs (one sub-folder each)")
    ap.add_argument("--work", default=str(DEFAULT_WORK), help="folder for uploads, speech and rendered mp4s")
    ap.add_argument("--models", default=str(DEFAULT_MODELS), help="folder of the exported ONNX models")
    ap.add_argument("--ort", default=None, help="onnxruntime-web's dist folder (default node_modules/...)")
    ap.add_argument("--no_sample", dest="no_sample", action="store_true", help="do not offer the sample avatar")
    ap.add_argument("--no_prepare", action="store_true",
                    help="do not build the sample pack / export the models on start-up when missing")
    ap.add_argument("--max_video_mb", type=float, default=200.0, help="largest video upload (MB)")
    ap.add_argument("--max_audio_mb", type=float, default=20.0, help="largest speech upload (MB)")
    ap.add_argument("--max_clients", type=int, default=64, help="most concurrent stream clients")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port} is not a port number")
    if args.max_video_mb <= 0 or args.max_audio_mb <= 0 or args.max_clients < 1:
        raise UserInputError("upload limits and --max_clients must be positive")
    import uvicorn

    from talkingface.web.app import create_app
    from talkingface.web.startup import prepare_defaults

    cfg = build_config(args)
    app = create_app(cfg)
    if not args.no_prepare:
        prepare_defaults(app)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        raise UserInputError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    host, port = sock.getsockname()[:2]
    print(f"serving http://{host if ':' not in host else f'[{host}]'}:{port}/", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="on",
                                           ws_max_size=64 * 1024 + 1024))
    server.run(sockets=[sock])
    return 0
