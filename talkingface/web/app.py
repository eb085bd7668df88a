"""The web server's FastAPI app: the player page, packs, models, uploads, jobs and the stream websocket.

Routes (all errors are JSON ``{"error": ...}`` with a 4xx/5xx status, never a traceback):

- ``GET /`` the player + avatar builder page; ``/static/...`` its modules;
- ``GET /vendor/ort/{file}`` onnxruntime-web's wasm runtime (from ``npm ci``); ``GET /models/{file}`` the ONNX files;
- ``GET /api/models`` what the player runs (ONNX files, their I/O names, the weights ids packs must match);
- ``GET /api/packs``; ``GET /packs/{name}/01.mp4|combined_data.json.gz`` (names are checked: no path escapes);
- ``POST /api/avatars`` (multipart ``video``, form ``name``) -> a job building the pack;
- ``POST /api/audio`` (multipart ``audio``) -> ``{id, url, seconds}``; ``GET /audio/{id}.wav``; ``GET /api/samples``;
- ``POST /api/synthesize`` ``{"pack", "audio"}`` -> a job writing the mp4 (offline synthesis); ``GET /outputs/{file}``;
- ``GET /api/jobs/{id}``;
- ``WS /ws/drive`` speech + mouth coefficients (:mod:`talkingface.web.drive`).

Every response carries ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp`` (cross-origin isolation: wasm threads need it).
"""
from __future__ import annotations

import contextlib
import logging
import mimetypes
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from talkingface.errors import UserInputError
from talkingface.web.drive import DriveSession
from talkingface.web.jobs import JobRunner, script
from talkingface.config.paths import WEB_STATIC_DIR
from talkingface.web.models import ModelRegistry, ModelsUnavailable
from talkingface.web.packs import PackStore
from talkingface.web.uploads import AudioStore, BodyLimit, save_upload

log = logging.getLogger(__name__)

STATIC_DIR = WEB_STATIC_DIR
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin"}
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("application/wasm", ".wasm")


@dataclass
class WebConfig:
    """Where the server keeps and finds things, and its limits (bytes)."""

    packs_dir: Path
    work_dir: Path
    models_dir: Path
    ort_dir: Optional[Path] = None
    sample_avatar: Optional[Path] = None  # an avatar folder served as the pack "sample"
    sample_audio: Dict[str, Path] = field(default_factory=dict)
    max_video_bytes: int = 200 * 1024 * 1024
    max_audio_bytes: int = 20 * 1024 * 1024
    max_clients: int = 64


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ApiError(400, f"bad {what} {value!r}: use letters, digits, '_' and '-' (at most 64)")
    return value


def create_app(cfg: WebConfig, registry: Optional[ModelRegistry] = None) -> FastAPI:
    """The app for ``cfg``; ``registry`` (ONNX files + audio model) is built from ``cfg`` when omitted."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        app.state.jobs.close()

    app = FastAPI(title="talkingface web player", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    for sub in ("audio", "outputs", "uploads"):
        (cfg.work_dir / sub).mkdir(parents=True, exist_ok=True)
    cfg.packs_dir.mkdir(parents=True, exist_ok=True)
    registry = registry or ModelRegistry(cfg.models_dir)
    packs = PackStore(cfg.packs_dir, cfg.sample_avatar)
    jobs = JobRunner()
    audio = AudioStore(cfg.work_dir / "audio", cfg.sample_audio)
    app.state.cfg, app.state.registry, app.state.packs, app.state.jobs = cfg, registry, packs, jobs
    app.state.clients = 0
    app.state.startup_jobs = []
    app.add_middleware(BodyLimit, limits={"/api/avatars": cfg.max_video_bytes, "/api/audio": cfg.max_audio_bytes},
                       default=64 * 1024)

    @app.middleware("http")
    async def isolation_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(ISOLATION)
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=ISOLATION)

    @app.exception_handler(ModelsUnavailable)
    async def unavailable(request: Request, exc: ModelsUnavailable):
        return JSONResponse({"error": " ".join(str(exc).split())}, status_code=503, headers=ISOLATION)

    @app.exception_handler(UserInputError)
    async def user_error(request: Request, exc: UserInputError):
        status = getattr(exc, "status", 400)
        return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status, headers=ISOLATION)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=ISOLATION)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"bad request: {where}: {first.get('msg', 'invalid')}"}, status_code=422,
                            headers=ISOLATION)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": "internal server error"}, status_code=500, headers=ISOLATION)

    def file_or_404(path: Optional[Path], what: str, media_type: Optional[str] = None) -> FileResponse:
        if path is None or not path.is_file():
            raise ApiError(404, f"{what} not found")
        return FileResponse(path, media_type=media_type)

    # ------------------------------------------------------------------------------ page and runtime
    @app.get("/")
    async def index():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/static/{path:path}")
    async def static(path: str):
        target = (STATIC_DIR / path).resolve()
        if STATIC_DIR.resolve() not in target.parents:
            raise ApiError(404, "file not found")
        return file_or_404(target, "file")

    @app.get("/vendor/ort/{name}")
    async def ort_file(name: str):
        if name not in ORT_FILES:
            raise ApiError(404, "file not found")
        if cfg.ort_dir is None or not (cfg.ort_dir / name).is_file():
            raise ApiError(404, "onnxruntime-web is not installed: run `npm ci` in the repository (see README)")
        return FileResponse(cfg.ort_dir / name)

    @app.get("/models/{name}")
    async def model_file(name: str):
        return file_or_404(registry.file(name), f"model file {name!r}", "application/octet-stream")

    @app.get("/api/models")
    async def models():
        return registry.descriptor(ort_ready=cfg.ort_dir is not None and all((cfg.ort_dir / f).is_file() for f in ORT_FILES))

    # ----------------------------------------------------------------------------------------- packs
    @app.get("/api/packs")
    async def list_packs():
        return {"packs": packs.list(registry.model_ids())}

    @app.get("/packs/{name}/{file}")
    async def pack_file(name: str, file: str):
        path = packs.file(check_id(name, "pack name"), file)
        media = "application/gzip" if file.endswith(".gz") else "video/mp4"
        return file_or_404(path, f"pack file {name}/{file}", media)

    @app.post("/api/avatars", status_code=202)
    async def build_avatar(request: Request):
        form = await request.form(max_files=1, max_fields=4)
        name = check_id(str(form.get("name") or f"avatar-{uuid.uuid4().hex[:6]}"), "avatar name")
        upload = form.get("video")
        if upload is None or not hasattr(upload, "read"):
            raise ApiError(400, "send the video as the multipart field 'video'")
        if packs.exists(name):
            raise ApiError(409, f"an avatar named {name!r} exists already")
        suffix = Path(upload.filename or "video.mp4").suffix.lower()
        if suffix not in (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"):
            raise ApiError(415, f"unsupported video type {suffix!r}: send mp4, mov, webm, mkv or avi")
        video = await save_upload(upload, cfg.work_dir / "uploads" / f"{uuid.uuid4().hex}{suffix}",
                                  cfg.max_video_bytes)
        avatar_dir = cfg.packs_dir / name
        job = jobs.submit("avatar", [
            ("tracking the face (data_preparation_mini.py)", script("data_preparation_mini.py", str(video), str(avatar_dir))),
            ("building the pack (data_preparation_web.py)", script("data_preparation_web.py", str(avatar_dir))),
        ], result={"pack": name}, cleanup=[video])
        return job.public()

    # ----------------------------------------------------------------------------------------- audio
    def audio_path(audio_id: str) -> Path:
        try:
            return audio.path(audio_id)
        except FileNotFoundError as exc:
            raise ApiError(404, str(exc)) from exc

    @app.get("/api/samples")
    async def samples():
        return {"samples": [{"id": k, "name": p.name, "url": f"/audio/{k}.wav"} for k, p in cfg.sample_audio.items()]}

    @app.post("/api/audio")
    async def upload_audio(request: Request):
        form = await request.form(max_files=1, max_fields=2)
        upload = form.get("audio")
        if upload is None or not hasattr(upload, "read"):
            raise ApiError(400, "send the speech as the multipart field 'audio'")
        suffix = re.sub(r"[^a-z0-9.]", "", Path(upload.filename or "").suffix.lower())[:8]
        raw = await save_upload(upload, cfg.work_dir / "uploads" / f"{uuid.uuid4().hex}{suffix}", cfg.max_audio_bytes)
        try:
            audio_id, seconds = await run_in_threadpool(audio.store, raw)
        finally:
            raw.unlink(missing_ok=True)
        return {"id": audio_id, "url": f"/audio/{audio_id}.wav", "seconds": round(seconds, 3)}

    @app.get("/audio/{name}")
    async def audio_file(name: str):
        if not name.endswith(".wav"):
            raise ApiError(404, "audio not found")
        path = await run_in_threadpool(audio_path, name[:-4])
        return FileResponse(path, media_type="audio/wav")

    # ------------------------------------------------------------------------------------- synthesis
    @app.post("/api/synthesize", status_code=202)
    async def synthesize(request: Request):
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "send JSON: {\"pack\": NAME, \"audio\": ID}")
        if not isinstance(body, dict):
            raise ApiError(400, "send JSON: {\"pack\": NAME, \"audio\": ID}")
        pack_dir = packs.pack_dir(check_id(body.get("pack"), "pack name"))
        if pack_dir is None:
            raise ApiError(404, f"pack {body.get('pack')!r} not found")
        wav = await run_in_threadpool(audio_path, str(body.get("audio")))
        out_name = f"{uuid.uuid4().hex[:12]}.mp4"
        job = jobs.submit("synthesis", [("synthesis (demo_mini.py)", script(
            "demo_mini.py", str(pack_dir), str(wav), str(cfg.work_dir / "outputs" / out_name), "--quiet"))],
            result={"video": f"/outputs/{out_name}"})
        return job.public()

    @app.get("/outputs/{name}")
    async def output_file(name: str):
        if not re.match(r"^[0-9a-f]{12}\.mp4$", name):
            raise ApiError(404, "output not found")
        return file_or_404(cfg.work_dir / "outputs" / name, "output", "video/mp4")

    @app.get("/api/startup")
    async def startup_jobs():
        return {"jobs": [jobs.get(j).public() for j in app.state.startup_jobs if jobs.get(j) is not None]}

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str):
        job = jobs.get(check_id(job_id, "job id"))
        if job is None:
            raise ApiError(404, f"job {job_id!r} not found")
        return job.public()

    # ---------------------------------------------------------------------------------------- stream
    @app.websocket("/ws/drive")
    async def drive(ws: WebSocket):
        await ws.accept()
        if app.state.clients >= cfg.max_clients:
            await ws.send_json({"type": "error", "error": "too many clients"})
            await ws.close(code=1013)
            return
        app.state.clients += 1
        try:
            model = registry.audio_stream()
            session = DriveSession(ws, model, audio.load)
            await session.run({"type": "ready", "fps": 25, "sample_rate": 16000, "coeffs": int(model.out_dim),
                               "audio": registry.model_ids().get("audio")})
        except UserInputError as exc:
            await ws.send_json({"type": "error", "error": str(exc)})
            await ws.close(code=1011)
        finally:
            app.state.clients -= 1

    return app
