"""Real-time talking-head loop (docs/REFERENCE.md §1.6, fixed and generalised): audio arrives in 40 ms
blocks (microphone, or a file played at real-time pace), each block drives a renderer that returns
one video frame, frames go to a window or an mp4.

Pieces, each small and swappable:

- audio sources: :class:`FileAudioSource` (paced by the wall clock) and :class:`MicrophoneAudioSource`
  (``sounddevice``; optional, PortAudio may be missing) yield 640-sample float32 blocks;
- renderers implement :class:`StreamRenderer`: ``lookahead_frames`` (algorithmic delay),
  ``reset()``, ``render_block(block) -> BGR frame``. Each product of :mod:`talkingface.products` has
  one (``get_product(name).pipeline().StreamRenderer``: DH_live in :mod:`talkingface.dhlive_pipeline`,
  DH_live_mini in :mod:`talkingface.mini_pipeline`);
- sinks: :class:`WindowSink` (OpenCV window) and :class:`Mp4Sink` (mp4 with the audio muxed in).

:func:`run_stream` drives them and measures the output frame rate (frame intervals between the
first and the last frame; capped at 25 by a real-time source), the renderer's capacity (1 / median
time per frame) and audio-to-frame latency: for the frame of audio block j, the time from the end of block j's arrival
to the frame being ready. It includes the renderer's algorithmic lookahead (``lookahead_frames``
x 40 ms). After the last block, ``lookahead_frames`` blocks of silence flush the pipeline, so the
output has exactly one frame per block of input.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Protocol

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.util.files import check_output_file
from talkingface.util.media import (AUDIO_RATE, SAMPLES_PER_FRAME, VideoWriter, load_audio, mux_audio,
                                    save_block_aligned_wav)

log = logging.getLogger(__name__)

BLOCK_SECONDS = SAMPLES_PER_FRAME / AUDIO_RATE  # 0.04 s


# ---------------------------------------------------------------------------------------- sources
class FileAudioSource:
    """A speech file as 640-sample blocks, released at real-time pace (``realtime=False``: at once).

    Iterating yields ``(block, arrival_time)``: the float32 block and the monotonic time at which
    its last sample "arrived"."""

    def __init__(self, path: os.PathLike, realtime: bool = True):
        self.path = Path(path)
        self.audio = load_audio(self.path)
        if self.audio.size == 0:
            raise UserInputError(f"empty audio: {self.path}")
        self.realtime = realtime
        self.num_blocks = int(np.ceil(self.audio.size / SAMPLES_PER_FRAME))

    def __iter__(self) -> Iterator[tuple]:
        padded = np.zeros(self.num_blocks * SAMPLES_PER_FRAME, np.float32)
        padded[: self.audio.size] = self.audio
        start = time.monotonic()
        for k in range(self.num_blocks):
            due = start + (k + 1) * BLOCK_SECONDS
            if self.realtime:
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield padded[k * SAMPLES_PER_FRAME:(k + 1) * SAMPLES_PER_FRAME], (due if self.realtime else time.monotonic())

    def close(self) -> None:
        """Nothing to release (files are read whole)."""


def open_microphone_module():
    """The ``sounddevice`` module, or a UserInputError saying why the microphone cannot be used."""
    try:
        # Lazy: optional: PortAudio may be missing.
        import sounddevice
    except ImportError as exc:
        raise UserInputError("no microphone support: `pip install sounddevice` (and PortAudio), or use --audio FILE") from exc
    except OSError as exc:  # the package is there but the PortAudio library is not
        raise UserInputError(f"no microphone support ({exc}); install PortAudio or use --audio FILE") from exc
    return sounddevice


class MicrophoneAudioSource:
    """The default input device at 16 kHz mono, in 640-sample blocks (``sounddevice``).

    Blocks are queued by the audio callback and yielded with their arrival time; the recording is
    kept (``recorded()``) so it can be muxed into an output file."""

    def __init__(self, max_seconds: Optional[float] = None):
        sd = open_microphone_module()
        self._queue: "queue.Queue" = queue.Queue()
        self._blocks: List[np.ndarray] = []
        self.max_blocks = None if max_seconds is None else int(max_seconds / BLOCK_SECONDS)
        self.num_blocks = self.max_blocks

        def callback(indata, frames, time_info, status):  # runs on the audio thread
            if status:
                log.debug("microphone status: %s", status)
            self._queue.put((indata[:, 0].astype(np.float32).copy(), time.monotonic()))

        try:
            self._stream = sd.InputStream(samplerate=AUDIO_RATE, channels=1, dtype="float32",
                                          blocksize=SAMPLES_PER_FRAME, callback=callback)
            self._stream.start()
        except Exception as exc:
            raise UserInputError(f"cannot open the microphone: {exc}") from exc

    def __iter__(self) -> Iterator[tuple]:
        count = 0
        while self.max_blocks is None or count < self.max_blocks:
            block, arrival = self._queue.get()
            self._blocks.append(block)
            count += 1
            yield block, arrival

    def recorded(self) -> np.ndarray:
        return np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


# -------------------------------------------------------------------------------------- renderers
class StreamRenderer(Protocol):
    """What the loop needs from a renderer."""

    name: str
    lookahead_frames: int

    def reset(self) -> None:
        """Start a new stream (audio state and avatar frame counter)."""

    def render_block(self, block: np.ndarray) -> np.ndarray:
        """640 new samples -> the next HxWx3 uint8 BGR frame (it shows audio frame k - lookahead)."""

    def close(self) -> None:
        """Release resources (GL contexts, ...)."""


def display_available() -> bool:
    """True when a window can be opened (an X11/Wayland display and an OpenCV GUI backend)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("talkingface-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("talkingface-probe")
        return True
    except Exception:
        return False


class WindowSink:
    """Shows frames in an OpenCV window; pressing q or Esc asks the loop to stop."""

    def __init__(self, title: str = "talkingface"):
        self.title = title
        self.stop_requested = False

    def write(self, frame: np.ndarray) -> None:
        cv2.imshow(self.title, frame)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self, audio: Optional[np.ndarray] = None) -> None:
        cv2.destroyWindow(self.title)


class Mp4Sink:
    """Writes frames to an mp4 (temporary name, renamed when complete) with the stream's audio.

    ``audio``: the whole track when known in advance (a file source), else the recording is given
    to :meth:`close` (microphone). Either is padded to whole 40 ms blocks so every frame is kept.
    Encoding runs on a writer thread, so the real-time loop never waits for the encoder.
    """

    stop_requested = False

    def __init__(self, path: os.PathLike, audio: Optional[np.ndarray] = None):

        self.path = check_output_file(path, "output video")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise UserInputError(f"output folder does not exist: {parent}")
        self._tmpdir = Path(tempfile.mkdtemp(prefix=".tmp_live_", dir=parent))
        self._has_audio = audio is not None and audio.size > 0
        try:
            if self._has_audio:
                track = save_block_aligned_wav(audio, self._tmpdir / "audio.wav")
                self._writer = VideoWriter(self.path, audio=track)
            else:
                self._writer = VideoWriter(self._tmpdir / "video.mp4")
        except BaseException:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        self.frames = 0
        self._queue: "queue.Queue" = queue.Queue()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._drain, name="mp4-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is None:
                try:
                    self._writer.write(frame)
                except BaseException as exc:  # reported by close()
                    self._error = exc

    def write(self, frame: np.ndarray) -> None:
        self._queue.put(frame)
        self.frames += 1

    def abort(self) -> None:
        """Stop the writer and remove every temporary file; nothing is written at ``path``."""
        self._queue.put(None)
        self._thread.join()
        self._writer.abort()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def close(self, audio: Optional[np.ndarray] = None) -> None:
        """Finish the file (muxing ``audio``, 16 kHz float32, when none was given up front)."""

        self._queue.put(None)
        self._thread.join()
        try:
            if self._error is not None:
                self._writer.abort()
                raise self._error
            if self.frames == 0:
                self._writer.abort()
                raise UserInputError("no frame was rendered; nothing written")
            self._writer.close()
            if not self._has_audio:
                silent = self._tmpdir / "video.mp4"
                if audio is not None and audio.size:
                    mux_audio(silent, save_block_aligned_wav(audio, self._tmpdir / "audio.wav"), self.path)
                else:
                    os.replace(silent, self.path)
        finally:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------- loop
@dataclass
class StreamStats:
    """What a run achieved: frames out, wall time, fps, latency samples (seconds)."""

    frames: int = 0
    blocks: int = 0
    wall_seconds: float = 0.0
    frame_times: List[float] = field(default_factory=list)
    latencies: List[float] = field(default_factory=list)
    render_seconds: List[float] = field(default_factory=list)
    lookahead_frames: int = 0
    interrupted: bool = False

    @property
    def fps(self) -> float:
        """Output frame rate: frame intervals over the time from the first to the last frame."""
        if len(self.frame_times) < 2:
            return 0.0
        span = self.frame_times[-1] - self.frame_times[0]
        return (len(self.frame_times) - 1) / span if span > 0 else float("inf")

    def summary(self) -> dict:
        lat = np.asarray(self.latencies) * 1000.0
        ren = np.asarray(self.render_seconds) * 1000.0
        pct = (lambda a, q: float(np.percentile(a, q)) if a.size else float("nan"))
        return {
            "frames": self.frames, "audio_blocks": self.blocks, "wall_seconds": round(self.wall_seconds, 3),
            "fps": round(self.fps, 2), "latency_ms_median": round(pct(lat, 50), 1),
            "latency_ms_p95": round(pct(lat, 95), 1),
            "algorithmic_latency_ms": round(self.lookahead_frames * BLOCK_SECONDS * 1000.0, 1),
            "render_ms_median": round(pct(ren, 50), 2),
            "render_capacity_fps": round(1000.0 / pct(ren, 50), 1) if ren.size else 0.0,
            "interrupted": self.interrupted,
        }


def run_stream(source, renderer: StreamRenderer, sink) -> StreamStats:
    """Drive ``renderer`` with ``source``'s blocks into ``sink``; returns the measurements.

    Blocks are read on a producer thread (so a file source keeps real-time pace even when the
    renderer is slower, in which case latency grows and fps drops below 25). The first
    ``lookahead_frames`` frames belong to audio before the stream and are discarded; after the last
    block the pipeline is flushed with silence. Ctrl-C (KeyboardInterrupt) or the sink's stop
    request end the loop cleanly: the sink is closed with what was rendered so far.
    """
    stats = StreamStats(lookahead_frames=renderer.lookahead_frames)
    renderer.render_block(np.zeros(SAMPLES_PER_FRAME, np.float32))  # warm-up: first-call costs are not latency
    renderer.reset()
    blocks: "queue.Queue" = queue.Queue()
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in source:
                if stop.is_set():
                    break
                blocks.put(item)
        finally:
            blocks.put(done)

    producer = threading.Thread(target=produce, name="audio-source", daemon=True)
    arrivals: List[float] = []
    silence = np.zeros(SAMPLES_PER_FRAME, np.float32)
    start = time.monotonic()
    producer.start()
    flushed = 0
    try:
        while True:
            item = blocks.get()
            if item is done:
                if flushed >= renderer.lookahead_frames:
                    break
                block, arrival = silence, time.monotonic()
                flushed += 1
                blocks.put(done)
            else:
                block, arrival = item
                stats.blocks += 1
                arrivals.append(arrival)
            t0 = time.perf_counter()
            frame = renderer.render_block(block)
            stats.render_seconds.append(time.perf_counter() - t0)
            k = stats.blocks + flushed - 1  # index of the block just consumed
            j = k - renderer.lookahead_frames  # the audio frame this video frame shows
            if j < 0:
                continue
            sink.write(frame)
            now = time.monotonic()
            stats.frames += 1
            stats.frame_times.append(now)
            stats.latencies.append(now - arrivals[j])
            if sink.stop_requested:
                stats.interrupted = True
                break
    except KeyboardInterrupt:
        stats.interrupted = True
        log.info("interrupted: finishing the output with %d frames", stats.frames)
    finally:
        stop.set()
        stats.wall_seconds = time.monotonic() - start
    return stats
