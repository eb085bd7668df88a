"""The stream mode's websocket (``/ws/drive``): speech + the mouth coefficients of every 40 ms frame.

The server runs the audio model (:meth:`AudioModel.interface_frame`, streaming, with carried LSTM
state) on speech that arrives in pieces, as from a TTS engine, and sends the page one binary message
per video frame with that frame's 640 samples and its coefficient row, aligned (the model's
lookahead is absorbed here, so frame t's row travels with frame t's audio). Frames are paced in
real time with a small lead. Wire format (little-endian), see docs/WEB_PLAYER.md::

    server -> page  binary  b"TFAV" | u32 utterance | u32 frame | u16 n_coeffs | u16 n_samples |
                            f32[n_coeffs] | i16[n_samples]
    server -> page  text    {"type": "ready" | "start" | "end" | "cleared" | "pong" | "error", ...}
    page -> server  text    {"type": "say", "audio": ID} | {"type": "clear"} | {"type": "end"} | {"type": "ping"}
    page -> server  binary  int16 16 kHz mono PCM to lip-sync (pushed speech; {"type": "end"} closes it)

``clear`` is barge-in: the current and queued speech are dropped and the stream state is reset.
A malformed message gets an ``error`` message and is ignored; an oversized one closes the socket
(1009); too many errors close it (1008).
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, List, Optional

import numpy as np

from talkingface.audio_features import SAMPLES_PER_FRAME
from talkingface.errors import UserInputError

log = logging.getLogger(__name__)

MAGIC = b"TFAV"
HEADER = struct.Struct("<4sIIHH")
FRAME_SECONDS = SAMPLES_PER_FRAME / 16000.0
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ERRORS = 20


def pack_frame(utt: int, frame: int, coeffs: np.ndarray, pcm: np.ndarray) -> bytes:
    """One binary frame message (see the module doc). pcm: float in [-1, 1] or int16."""
    if pcm.dtype != np.int16:
        pcm = np.clip(np.round(pcm * 32768.0), -32768, 32767).astype(np.int16)
    c = np.asarray(coeffs, "<f4")
    return HEADER.pack(MAGIC, utt, frame, len(c), len(pcm)) + c.tobytes() + pcm.astype("<i2").tobytes()


def unpack_frame(data: bytes):
    """(utt, frame, coeffs float32, pcm int16) of a binary frame message; ValueError when malformed."""
    if len(data) < HEADER.size:
        raise ValueError("short frame")
    magic, utt, frame, nc, ns = HEADER.unpack_from(data)
    if magic != MAGIC or len(data) != HEADER.size + 4 * nc + 2 * ns:
        raise ValueError("not a TFAV frame")
    coeffs = np.frombuffer(data, "<f4", nc, HEADER.size)
    pcm = np.frombuffer(data, "<i2", ns, HEADER.size + 4 * nc)
    return utt, frame, coeffs, pcm


@dataclass
class Utterance:
    """Speech being lip-synced: samples arrive (``push``) until ``closed``."""

    uid: int
    samples: Deque[np.ndarray] = field(default_factory=deque)
    buffered: int = 0
    closed: bool = False

    def push(self, pcm: np.ndarray) -> None:
        if len(pcm):
            self.samples.append(np.asarray(pcm, np.float32))
            self.buffered += len(pcm)

    def take_block(self) -> Optional[np.ndarray]:
        """The next 640 samples, or None when fewer are buffered (the last block is zero-padded once closed)."""
        if self.buffered < SAMPLES_PER_FRAME and not (self.closed and self.buffered > 0):
            return None
        out = np.zeros(SAMPLES_PER_FRAME, np.float32)
        n = 0
        while n < SAMPLES_PER_FRAME and self.samples:
            head = self.samples[0]
            k = min(SAMPLES_PER_FRAME - n, len(head))
            out[n:n + k] = head[:k]
            n += k
            if k == len(head):
                self.samples.popleft()
            else:
                self.samples[0] = head[k:]
        self.buffered -= n
        return out


class FrameAligner:
    """Streaming audio model -> (frame index, block, row) with the row of that block's own frame.

    ``model``: an :class:`AudioModel` stream (its own state). Row k of ``interface_frame`` belongs to
    frame k - lookahead_frames, so blocks wait in a queue until their row comes out; ``flush`` feeds
    silence to release the last ones.
    """

    def __init__(self, model):
        self.model = model
        self.lag = model.lookahead_frames
        self.reset()

    def reset(self) -> None:
        self.model.reset()
        self.pending: Deque[np.ndarray] = deque()
        self.fed = 0
        self.emitted = 0

    def feed(self, block: np.ndarray) -> List[tuple]:
        row = self.model.interface_frame(block)
        self.pending.append(block)
        self.fed += 1
        out = []
        if self.fed > self.lag:
            out.append((self.emitted, self.pending.popleft(), row))
            self.emitted += 1
        return out

    def flush(self) -> List[tuple]:
        out = []
        silence = np.zeros(SAMPLES_PER_FRAME, np.float32)
        while self.pending:
            row = self.model.interface_frame(silence)
            self.fed += 1
            if self.fed > self.lag:
                out.append((self.emitted, self.pending.popleft(), row))
                self.emitted += 1
        return out


class DriveSession:
    """One websocket client. ``load_audio(id) -> float32 16 kHz samples`` (raises UserInputError);
    ``model``: an AudioModel stream for this client; ``lead``: frames sent ahead of real time."""

    def __init__(self, ws, model, load_audio: Callable[[str], np.ndarray], lead: int = 5):
        self.ws = ws
        self.aligner = FrameAligner(model)
        self.load_audio = load_audio
        self.lead = lead
        self.queue: Deque[Utterance] = deque()
        self.push_utt: Optional[Utterance] = None
        self.next_uid = 1
        self.errors = 0
        self.wake = asyncio.Event()
        self.closed = False

    async def send_json(self, obj: dict) -> None:
        await self.ws.send_text(json.dumps(obj))

    async def error(self, msg: str) -> None:
        self.errors += 1
        await self.send_json({"type": "error", "error": msg})
        if self.errors >= MAX_ERRORS:
            await self.ws.close(code=1008)
            self.closed = True

    def _new_utt(self) -> Utterance:
        utt = Utterance(self.next_uid)
        self.next_uid += 1
        self.queue.append(utt)
        return utt

    async def handle_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
            kind = msg.get("type") if isinstance(msg, dict) else None
        except ValueError:
            await self.error("message is not JSON")
            return
        if kind == "say":
            audio_id = msg.get("audio")
            if not isinstance(audio_id, str):
                await self.error("say needs an audio id (string)")
                return
            try:
                samples = self.load_audio(audio_id)
            except UserInputError as exc:
                await self.error(str(exc))
                return
            utt = self._new_utt()
            utt.push(samples)
            utt.closed = True
        elif kind == "clear":
            self.queue.clear()
            self.push_utt = None
            self.aligner.reset()
            await self.send_json({"type": "cleared"})
        elif kind == "end":
            if self.push_utt is not None:
                self.push_utt.closed = True
                self.push_utt = None
        elif kind == "ping":
            await self.send_json({"type": "pong", "t": msg.get("t")})
        else:
            await self.error(f"unknown message type {kind!r}")
            return
        self.wake.set()

    async def handle_bytes(self, data: bytes) -> None:
        if len(data) % 2:
            await self.error("pushed PCM must be int16 (an even number of bytes)")
            return
        if self.push_utt is None or self.push_utt.closed:
            self.push_utt = self._new_utt()
        self.push_utt.push(np.frombuffer(data, "<i2").astype(np.float32) / 32768.0)
        self.wake.set()

    async def receive_loop(self) -> None:
        while not self.closed:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            text, data = msg.get("text"), msg.get("bytes")
            size = len(text) if text is not None else len(data or b"")
            if size > MAX_MESSAGE_BYTES:
                await self.send_json({"type": "error", "error": f"message over {MAX_MESSAGE_BYTES} bytes"})
                await self.ws.close(code=1009)
                break
            if text is not None:
                await self.handle_text(text)
            elif data is not None:
                await self.handle_bytes(data)
        self.closed = True
        self.wake.set()

    async def send_loop(self) -> None:
        """Send the head utterance's frames paced at 25 fps (``lead`` frames ahead), then the next."""
        while not self.closed:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            utt = self.queue[0]
            await self.send_json({"type": "start", "utt": utt.uid})
            t0 = time.monotonic()
            sent = 0
            while not self.closed and self.queue and self.queue[0] is utt:
                block = utt.take_block()
                if block is not None:
                    frames = self.aligner.feed(block)
                elif utt.closed:
                    frames = self.aligner.flush()
                else:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                for idx, pcm, row in frames:
                    if not (self.queue and self.queue[0] is utt):
                        break  # cleared meanwhile
                    delay = t0 + (idx - self.lead) * FRAME_SECONDS - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self.closed or not (self.queue and self.queue[0] is utt):
                        break  # cleared while waiting: nothing of it goes out after "cleared"
                    await self.ws.send_bytes(pack_frame(utt.uid, idx, row, pcm))
                    sent += 1
                if utt.closed and utt.buffered == 0 and not self.aligner.pending and block is None:
                    break
            if self.queue and self.queue[0] is utt:
                self.queue.popleft()
                self.aligner.reset()
                await self.send_json({"type": "end", "utt": utt.uid, "frames": sent})

    async def run(self, ready: dict) -> None:
        await self.send_json(ready)
        sender = asyncio.create_task(self.send_loop())
        try:
            await self.receive_loop()
        finally:
            self.closed = True
            self.wake.set()
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, Exception):  # the client is gone: nothing to report to
                pass
