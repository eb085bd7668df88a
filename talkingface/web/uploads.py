"""Uploads of the web server: request-size limits, streamed saving, and the speech store.

:class:`BodyLimit` (ASGI middleware) answers 413 with a JSON error as soon as a request announces or
sends more bytes than its path allows, before the body is parsed. :class:`AudioStore` keeps speech as
16 kHz mono 16-bit wav under ``work_dir/audio`` (uploads decoded by ffmpeg; the built-in samples
converted once), so the browser and the stream mode read exactly the same samples.
"""
from __future__ import annotations

import json
import re
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from talkingface.errors import UserInputError

MAX_SPEECH_SECONDS = 600.0
CHUNK = 1 << 20
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class TooLarge(Exception):
    pass


class UploadTooLarge(UserInputError):
    """An upload over its size limit (the server answers 413)."""

    status = 413


async def _send_json(send, status: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Reject HTTP requests whose body exceeds ``limits[path]`` (else ``default``) bytes with 413 JSON."""

    def __init__(self, app, limits: Dict[str, int], default: int):
        self.app, self.limits, self.default = app, limits, default

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limits.get(scope["path"], self.default)
        message = {"error": f"request body over the limit of {limit} bytes for {scope['path']}"}
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    return await _send_json(send, 400, {"error": "bad Content-Length"})
                if announced > limit:
                    return await _send_json(send, 413, message)
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise TooLarge()
            return msg

        async def tracked_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except TooLarge:
            if not started:
                await _send_json(send, 413, message)


async def save_upload(upload, dst: Path, limit: int) -> Path:
    """Copy an UploadFile to ``dst`` (chunked); 413-style UserInputError past ``limit`` bytes."""
    written = 0
    try:
        with open(dst, "wb") as fh:
            while True:
                chunk = await upload.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > limit:
                    raise UploadTooLarge(f"upload over the limit of {limit} bytes")
                fh.write(chunk)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    if written == 0:
        dst.unlink(missing_ok=True)
        raise UserInputError("the uploaded file is empty")
    return dst


class AudioStore:
    """Speech by id: ``work_dir/audio/<id>.wav`` (16 kHz mono int16); ``samples`` maps built-in ids to files."""

    def __init__(self, folder: Path, samples: Optional[Dict[str, Path]] = None, cache: int = 8):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sample_sources = dict(samples or {})
        self._cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._cache_size = cache

    def path(self, audio_id: str) -> Path:
        """The wav of ``audio_id`` (built-in samples are converted on first use); UserInputError if unknown."""
        if not isinstance(audio_id, str) or not ID_RE.match(audio_id):
            raise UserInputError(f"bad audio id {audio_id!r}")
        path = self.folder / f"{audio_id}.wav"
        if audio_id in self.sample_sources and not path.is_file():
            self._convert(self.sample_sources[audio_id], path)
        if not path.is_file():
            raise FileNotFoundError(f"audio {audio_id!r} not found")
        return path

    def load(self, audio_id: str) -> np.ndarray:
        """float32 samples at 16 kHz of ``audio_id`` (cached)."""
        if audio_id in self._cache:
            self._cache.move_to_end(audio_id)
            return self._cache[audio_id]
        try:
            path = self.path(audio_id)
        except FileNotFoundError as exc:
            raise UserInputError(str(exc)) from exc
        # Lazy: audio decoding loads on the first upload.
        import soundfile as sf

        data, rate = sf.read(str(path), dtype="int16")
        samples = data.astype(np.float32) / 32768.0
        self._cache[audio_id] = samples
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return samples

    def _convert(self, src: Path, dst: Path) -> float:
        # Lazy: audio decoding loads on the first upload.
        from talkingface.util.media import load_audio, save_wav

        audio = load_audio(src, sample_rate=16000)
        seconds = audio.size / 16000.0
        if seconds > MAX_SPEECH_SECONDS:
            raise UserInputError(f"speech longer than {MAX_SPEECH_SECONDS:.0f} s ({seconds:.1f} s)")
        if seconds < 0.1:
            raise UserInputError("speech shorter than 0.1 s")
        save_wav(dst, audio, 16000)
        return seconds

    def store(self, src: Path) -> tuple:
        """Decode an uploaded file and keep it: -> (id, seconds). MediaError for what ffmpeg cannot read."""
        audio_id = uuid.uuid4().hex[:16]
        seconds = self._convert(src, self.folder / f"{audio_id}.wav")
        return audio_id, seconds
