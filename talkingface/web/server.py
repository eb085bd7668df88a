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

from talkingface.config.paths import CLONE_ROOT, SAMPLE_SPEECH_EN, SAMPLE_SPEECH_ZH, data_home, mini_avatar_dir, video_data_dir
from talkingface.errors import UserInputError
from talkingface.util.cli import script_parser, setup_logging
from talkingface.util.files import check_output_dir

ORT_ENV = "TALKINGFACE_ORT_DIR"


def web_home() -> Path:
    """The server's writable defaults: ``video_data/web`` under the data home."""
    return video_data_dir() / "web"


def default_ort_dir() -> Path:
    """onnxruntime-web's dist folder: ``$TALKINGFACE_ORT_DIR``, else ``node_modules`` of the clone (``npm ci``),
    else of the data home."""
    if os.environ.get(ORT_ENV):
        return Path(os.environ[ORT_ENV])
    base = CLONE_ROOT if CLONE_ROOT is not None else data_home()
    return base / "node_modules" / "onnxruntime-web" / "dist"

log = logging.getLogger(__name__)

def sample_audio() -> Dict[str, Path]:
    """The built-in speech samples: id -> file."""
    pairs = (("sample-en", SAMPLE_SPEECH_EN), ("sample-zh", SAMPLE_SPEECH_ZH))
    return {audio_id: path for audio_id, path in pairs if path.is_file()}


def build_config(args):
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.web.app import WebConfig

    ort_dir = Path(args.ort) if args.ort else default_ort_dir()
    return WebConfig(packs_dir=Path(args.packs or web_home() / "packs"), work_dir=Path(args.work or web_home() / "work"),
                     models_dir=Path(args.models or web_home() / "models"),
                     ort_dir=ort_dir, sample_avatar=None if args.no_sample else mini_avatar_dir(),
                     sample_audio=sample_audio(), max_video_bytes=int(args.max_video_mb * 1024 * 1024),
                     max_audio_bytes=int(args.max_audio_mb * 1024 * 1024), max_clients=args.max_clients)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=8000, help="port (0 = any free port; the URL is printed)")
    ap.add_argument("--packs", default=None, help="folder of avatars/packs, one sub-folder each (default "
                    "video_data/web/packs under the data home)")
    ap.add_argument("--work", default=None, help="folder for uploads, speech and rendered mp4s (default video_data/web/work)")
    ap.add_argument("--models", default=None, help="folder of the exported ONNX models (default video_data/web/models; "
                    "exported there on start-up when missing)")
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
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import uvicorn

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.web.app import create_app
    from talkingface.web.startup import prepare_defaults

    cfg = build_config(args)
    for folder, what in ((cfg.packs_dir, "--packs folder"), (cfg.work_dir, "--work folder"),
                         (cfg.models_dir, "--models folder")):
        check_output_dir(folder, what)  # before any folder is made or the server starts
    app = create_app(cfg)
    if not args.no_prepare:
        prepare_defaults(app)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        raise UserInputError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    sock.listen(128)  # connections made before uvicorn starts wait in the backlog
    host, port = sock.getsockname()[:2]
    print(f"serving http://{host if ':' not in host else f'[{host}]'}:{port}/", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="on",
                                           ws_max_size=64 * 1024 + 1024))
    server.run(sockets=[sock])
    return 0
