"""Media I/O in one place: every ffmpeg call of the toolkit lives here.
(Slightly over 450 lines on purpose: one home for every ffmpeg call, so none is written twice.)

- Video in: any container/codec ffmpeg reads, resampled to a constant 25 fps (variable frame rate
  handled by ffmpeg's ``fps`` filter), rotation metadata honoured (ffmpeg auto-rotates on decode).
  Frames are ``HxWx3 uint8 BGR`` arrays, the OpenCV convention used across the toolkit.
- Video out: h264 / yuv420p mp4 through :class:`VideoWriter`, written to a temporary file and
  renamed on success so a failed run never leaves a half-written output; optional audio muxed in.
- Audio in: wav/mp3/m4a/aac/flac..., any rate, channel count or sample format, returned as 16 kHz
  mono ``float32`` in [-1, 1] (int16 input maps to ``x / 32768`` exactly, like the original).

ffmpeg is the system's when present, else the binary shipped by ``imageio-ffmpeg``. It is always
called with argument lists (never a shell string) and its exit status is checked.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Union

import cv2
import numpy as np
import soundfile as sf

from talkingface.errors import MediaError, UserInputError
from talkingface.util.files import atomic_write, check_input_file, check_output_file, publish

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

DEFAULT_FPS = 25.0
AUDIO_RATE = 16000
SAMPLES_PER_FRAME = AUDIO_RATE // int(DEFAULT_FPS)  # 640 samples = 40 ms = one video frame


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: system first, else imageio-ffmpeg's bundled one."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        # Lazy: optional fallback when ffmpeg is not on PATH.
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise MediaError("ffmpeg not found: install it or `pip install imageio-ffmpeg`") from exc


def run_ffmpeg(args: Sequence[str], input_bytes: Optional[bytes] = None, what: str = "ffmpeg") -> bytes:
    """Run ffmpeg with ``args`` (no shell), return stdout; raise MediaError with ffmpeg's last line."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *map(str, args)]
    log.debug("run %s", cmd)
    proc = subprocess.run(cmd, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise MediaError(f"{what} failed: {_last_line(proc.stderr)}")
    return proc.stdout


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"


def _check_input(path: PathLike) -> Path:
    p = check_input_file(path, "media file")
    if p.stat().st_size == 0:
        raise MediaError(f"empty file: {p}")
    return p


#: File suffixes treated as video / audio when a folder is listed.
VIDEO_EXTS = (".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm")
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac")


def list_media(folder: PathLike, exts: Sequence[str], recursive: bool = True,
               exclude: Sequence[str] = ()) -> List[Path]:
    """Files of ``folder`` with one of ``exts`` (sorted; hidden names skipped; recursive by default).

    ``exclude``: patterns matched against each file's path (glob), name, stem or any folder below
    ``folder``. Raises a clear error when ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserInputError(f"not a folder: {root}")
    found = root.rglob("*") if recursive else root.iterdir()
    out = []
    for p in sorted(found):
        if not p.is_file() or p.suffix.lower() not in exts or p.name.startswith("."):
            continue
        parts = p.relative_to(root).parts
        if any(p.match(x) or x in (p.name, p.stem) or x in parts[:-1] for x in exclude):
            continue
        out.append(p)
    return out


def list_videos(folder: PathLike, recursive: bool = True, exclude: Sequence[str] = ()) -> List[Path]:
    """Video files of ``folder`` (see :func:`list_media`)."""
    return list_media(folder, VIDEO_EXTS, recursive, exclude)


def list_audio(folder: PathLike, recursive: bool = True, exclude: Sequence[str] = ()) -> List[Path]:
    """Audio files of ``folder`` (see :func:`list_media`)."""
    return list_media(folder, AUDIO_EXTS, recursive, exclude)


def expand_inputs(items: Sequence[PathLike], lister: Callable[..., List[Path]], recursive: bool = True,
                  exclude: Sequence[str] = (), what: str = "input file") -> List[Path]:
    """Files and folders given on a command line -> files: a folder becomes ``lister(folder, recursive,
    exclude)`` (:func:`list_videos`, :func:`list_audio`), a file is kept as given. A missing path, or
    nothing found at all, is a :class:`UserInputError` naming ``what``."""
    out: List[Path] = []
    for p in map(Path, items):
        if p.is_dir():
            out += lister(p, recursive=recursive, exclude=exclude)
        elif p.is_file():
            out.append(p)
        else:
            raise UserInputError(f"{what} not found: {p}")
    if not out:
        raise UserInputError(f"no {what}s in {', '.join(map(str, items))}")
    return out


# --------------------------------------------------------------------------------------------- video


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder will deliver: frame size after rotation, and stream facts."""

    width: int
    height: int
    duration: float  # seconds, from the container (0.0 if unknown)
    source_fps: float  # the stream's nominal rate (0.0 if unknown)
    has_audio: bool


def probe_video(path: PathLike) -> VideoInfo:
    """Probe a video without ffprobe: decode its first frame as PNG (rotation applied) and parse
    ffmpeg's stream header for duration, rate and audio presence."""
    p = _check_input(path)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p), "-map", "0:v:0", "-frames:v", "1",
           "-f", "image2pipe", "-c:v", "png", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    header = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0 or not proc.stdout:
        if "does not contain any stream" in header or "matches no streams" in header:
            raise MediaError(f"no video stream in {p}")
        raise MediaError(f"cannot read video {p}: {_last_line(proc.stderr)}")

    first = cv2.imdecode(np.frombuffer(proc.stdout, np.uint8), cv2.IMREAD_COLOR)
    if first is None:
        raise MediaError(f"cannot decode the first frame of {p}")
    h, w = first.shape[:2]
    duration = 0.0
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", header)
    if m:
        duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    fps = 0.0
    m = re.search(r"Video:.*?(\d+(?:\.\d+)?)\s*fps", header)
    if m:
        fps = float(m.group(1))
    has_audio = re.search(r"Stream #\d+:\d+.*?: Audio:", header) is not None
    return VideoInfo(width=w, height=h, duration=duration, source_fps=fps, has_audio=has_audio)


def iter_video_frames(path: PathLike, fps: float = DEFAULT_FPS, max_frames: Optional[int] = None,
                      info: Optional[VideoInfo] = None, pix_fmt: str = "bgr24") -> Iterator[np.ndarray]:
    """Yield ``HxWx3 uint8 BGR`` frames resampled to a constant ``fps`` (rotation honoured).

    ``pix_fmt="yuv420p"`` (even sizes only) yields I420 frames instead: ``(3H/2)xW uint8``, the Y plane
    then U and V (OpenCV's ``COLOR_YUV2BGR_I420`` layout), as the decoder produced them."""
    p = _check_input(path)
    info = info or probe_video(p)
    w, h = info.width, info.height
    if pix_fmt not in ("bgr24", "yuv420p"):
        raise ValueError(f"pix_fmt must be bgr24 or yuv420p, not {pix_fmt!r}")
    if pix_fmt == "yuv420p" and (w % 2 or h % 2):
        raise MediaError(f"{p}: I420 frames need an even size, got {w}x{h}")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(p),
            "-map", "0:v:0", "-vf", f"fps={fps:g}", "-f", "rawvideo", "-pix_fmt", pix_fmt]
    if max_frames is not None:
        args += ["-frames:v", str(int(max_frames))]
    args.append("-")
    shape = (h, w, 3) if pix_fmt == "bgr24" else (h * 3 // 2, w)
    frame_bytes = int(np.prod(shape))
    for buf in ffmpeg_chunks(args, frame_bytes, f"decoding {p}"):
        if len(buf) < frame_bytes:
            break
        yield np.frombuffer(buf, np.uint8).reshape(shape).copy()


def ffmpeg_chunks(args: Sequence[str], chunk: int, what: str) -> Iterator[bytes]:
    """Run the ffmpeg command ``args`` (writing raw data to stdout) and yield its output in chunks of
    ``chunk`` bytes (the last one may be shorter). ffmpeg runs in its own session (a Ctrl-C reaches
    only Python); stopping the iteration early kills it; a failure is a :class:`MediaError` with
    ``what`` and ffmpeg's last line."""
    finished = False
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        try:
            assert proc.stdout is not None
            while True:
                buf = proc.stdout.read(chunk)
                if not buf:
                    finished = True
                    break
                yield buf
        finally:
            if not finished:
                proc.kill()  # stopped early (an error, or the caller stopped iterating)
            if proc.stdout:
                proc.stdout.close()
            rc = proc.wait()
        if rc != 0:
            err.seek(0)
            raise MediaError(f"{what} failed: {_last_line(err.read())}")


def read_video(path: PathLike, fps: float = DEFAULT_FPS, max_frames: Optional[int] = None) -> List[np.ndarray]:
    """All frames of a video at ``fps`` as a list of BGR uint8 arrays; raises if there are none."""
    frames = list(iter_video_frames(path, fps=fps, max_frames=max_frames))
    if not frames:
        raise MediaError(f"no frames decoded from {path}")
    return frames


#: x264 preset of the demos' output: the least encoder CPU (on a 720x1080 avatar at CRF 18 and one
#: thread about 2.4 ms/frame against 4.9 for superfast), files about 1.5x larger than superfast's.
DEMO_PRESET = "ultrafast"


def _widen_pipe(stream) -> None:
    """Grow a pipe's kernel buffer to 1 MiB (Linux; the default 64 KiB makes each ~1 MB video frame
    18 writer/reader hand-offs). Best effort: the system's limit or another OS leaves it as is."""
    try:
        import fcntl  # Lazy: POSIX only

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


def _send_span(out_fd: int, in_fd: int, offset: int, length: int) -> None:
    """Copy ``length`` bytes at ``offset`` of ``in_fd`` to ``out_fd`` (kernel-side with sendfile where the
    platform has it for these file kinds; else a read and a write)."""
    done = 0
    try:
        while done < length:
            sent = os.sendfile(out_fd, in_fd, offset + done, length - done)
            if sent == 0:
                raise MediaError("the spilled avatar frames were truncated")
            done += sent
        return
    except BrokenPipeError:
        raise
    except (AttributeError, OSError):  # no sendfile here, or not between these kinds of file
        pass
    data = os.pread(in_fd, length - done, offset + done)
    view = memoryview(data)
    while view:
        view = view[os.write(out_fd, view):]


class VideoWriter:
    """Write BGR uint8 frames to an h264/yuv420p mp4, optionally muxing an audio file.

    Frames stream into ffmpeg's stdin; the file appears at ``path`` only after :meth:`close`
    succeeds (it is written to a temporary name in the same folder, then renamed). Odd frame sizes
    are padded by one pixel, since yuv420p needs even sizes. ``preset``, ``crf``: x264's; ``threads``:
    x264 threads (``None``: ffmpeg's default). Use as a context manager; on an exception the partial
    file is removed.
    """

    def __init__(self, path: PathLike, fps: float = DEFAULT_FPS, audio: Optional[PathLike] = None,
                 crf: int = 18, preset: str = "veryfast", threads: Optional[int] = None):
        self.path = Path(path)
        self.fps = fps
        self.audio = Path(audio) if audio is not None else None
        if self.audio is not None:
            _check_input(self.audio)
        self.crf = crf
        self.preset = preset
        self.threads = threads  # x264 threads (None: ffmpeg's choice, about 1.5 per core)
        self.size: Optional[tuple] = None
        self.pix_fmt = "bgr24"
        self.frames_written = 0
        self._proc: Optional[subprocess.Popen] = None
        self._err = None
        check_output_file(self.path, "output video")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise UserInputError(f"output folder does not exist: {parent}")
        fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".mp4", dir=parent)
        os.close(fd)
        self._tmp = Path(tmp)

    def _start(self, w: int, h: int, pix_fmt: str = "bgr24") -> None:
        self.size = (w, h)
        self.pix_fmt = pix_fmt
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", f"{self.fps:g}", "-i", "-"]
        if self.audio is not None:
            # aac's "fast" coder: 0.18 instead of 0.47 s of CPU per minute of speech at the same bit rate
            args += ["-i", str(self.audio), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-aac_coder", "fast",
                     "-b:a", "128k"]
        if w % 2 or h % 2:
            args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        args += ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p",
                 "-movflags", "+faststart"]
        if self.threads is not None:
            args += ["-threads", str(self.threads)]
        if self.audio is not None:
            # The video defines the length: audio is cut to it (or the video ends where it ends).
            args += ["-shortest"]
        args += ["-f", "mp4", str(self._tmp)]
        self._err = tempfile.TemporaryFile()
        # Its own session: a Ctrl-C on the terminal reaches only Python, which then aborts the
        # encoder and removes the partial file (instead of ffmpeg dying first mid-write).
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=self._err, start_new_session=True)
        _widen_pipe(self._proc.stdin)

    def write(self, frame: np.ndarray) -> None:
        """Append one ``HxWx3 uint8 BGR`` frame (all frames must share one size)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected HxWx3 uint8 BGR frame, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if self._proc is None:
            self._start(w, h)
        elif (w, h) != self.size or self.pix_fmt != "bgr24":
            raise ValueError(f"frame size {w}x{h} differs from the first frame {self.size}")
        self._write([memoryview(np.ascontiguousarray(frame).reshape(-1))])

    def write_i420(self, buffers: Iterable, width: int, height: int) -> None:
        """Append one I420 frame (even ``width`` x ``height``) given as consecutive byte buffers
        (e.g. ``talkingface.fast.yuv.I420Frames.planes_with_region``); ffmpeg then encodes it
        without a colour conversion. A writer takes one input format: BGR or I420."""
        if self._proc is None:
            self._start(width, height, "yuv420p")
        elif (width, height) != self.size or self.pix_fmt != "yuv420p":
            raise ValueError("all frames of a VideoWriter must share one size and format")
        self._write(buffers)

    def _write(self, buffers: Iterable) -> None:
        """Send the parts of one frame: byte buffers, or spans of an open file (anything with ``fd``,
        ``offset`` and ``length``, e.g. ``talkingface.fast.yuv.FileSpan``), which go from the file to
        the pipe with ``os.sendfile`` (no copy through this process), else through a read."""
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        try:
            for buf in buffers:
                if isinstance(buf, (bytes, bytearray, memoryview)):
                    stdin.write(buf)
                elif buf.length > 0:
                    stdin.flush()
                    _send_span(stdin.fileno(), buf.fd, buf.offset, buf.length)
        except BrokenPipeError:
            self._fail()
        self.frames_written += 1

    def _fail(self) -> None:
        msg = "unknown error"
        if self._err is not None:
            self._err.seek(0)
            msg = _last_line(self._err.read())
        self.abort()
        raise MediaError(f"writing {self.path} failed: {msg}")

    def close(self) -> Path:
        """Finish encoding and move the file into place; returns the final path."""
        if self._proc is None:
            self.abort()
            raise MediaError(f"no frames were written to {self.path}")
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        if self._proc.wait() != 0:
            self._fail()
        if self._err is not None:
            self._err.close()
            self._err = None
        self._proc = None
        try:
            publish(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove the partial file."""
        if self._proc is not None:
            try:
                if self._proc.stdin:
                    self._proc.stdin.close()
            except OSError:
                pass
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._err is not None:
            self._err.close()
            self._err = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: PathLike, frames: Sequence[np.ndarray], fps: float = DEFAULT_FPS,
                audio: Optional[PathLike] = None) -> Path:
    """Write a sequence of BGR frames to ``path`` (h264/yuv420p), optionally with audio."""
    with VideoWriter(path, fps=fps, audio=audio) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def mux_audio(video: PathLike, audio: PathLike, out: PathLike) -> Path:
    """Copy ``video``'s stream and add ``audio`` (AAC) into ``out``; written atomically."""
    v, a, out = _check_input(video), _check_input(audio), check_output_file(out, "output video")
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".mp4", dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    try:
        run_ffmpeg(["-y", "-i", v, "-i", a, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                    "-c:a", "aac", "-b:a", "128k", "-shortest", "-f", "mp4", tmp], what="muxing audio")
        publish(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def count_frames(path: PathLike) -> int:
    """Number of frames ffmpeg decodes from ``path`` at its own rate (no resampling)."""
    p = _check_input(path)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p), "-map", "0:v:0", "-f", "null", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise MediaError(f"cannot read video {p}: {_last_line(proc.stderr)}")
    found = re.findall(r"frame=\s*(\d+)", proc.stderr.decode("utf-8", "replace"))
    return int(found[-1]) if found else 0


# --------------------------------------------------------------------------------------------- audio


#: Samples per block of :func:`iter_audio` (10 s at 16 kHz: 640 kB of float32).
AUDIO_BLOCK = 250 * SAMPLES_PER_FRAME


def iter_audio(path: PathLike, sample_rate: int = AUDIO_RATE, block: int = AUDIO_BLOCK) -> Iterator[np.ndarray]:
    """Decode any audio (or the audio track of a video) to mono float32 at ``sample_rate``, streamed
    in blocks of ``block`` samples (the last one shorter), so memory does not grow with the length.

    Raises :class:`MediaError` for unreadable files and files without audio, :class:`UserInputError`
    for NaN / infinite samples and when there is no sample at all.
    """
    p = _check_input(path)
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(p), "-map", "0:a:0", "-vn",
            "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    total = 0
    for buf in ffmpeg_chunks(args, block * 4, f"reading audio {p.name}"):
        audio = np.frombuffer(buf[: len(buf) // 4 * 4], dtype="<f4").astype(np.float32)
        if not np.isfinite(audio).all():
            raise UserInputError(f"audio {p} contains NaN or infinite samples")
        total += audio.size
        yield audio
    if total == 0:
        raise UserInputError(f"no audio samples in {p}")


def check_audio(path: PathLike, sample_rate: int = AUDIO_RATE) -> int:
    """Decode ``path`` once without keeping it (memory stays at one block) and return its number of
    samples at ``sample_rate``; the errors of :func:`iter_audio`. Lets a long job fail before its
    heavy set-up when the audio is bad."""
    return sum(block.size for block in iter_audio(path, sample_rate))


def load_audio(path: PathLike, sample_rate: int = AUDIO_RATE, min_seconds: float = 0.0) -> np.ndarray:
    """Decode any audio (or the audio track of a video) to mono float32 at ``sample_rate``.

    Raises a clear :class:`MediaError` for unreadable files and files without audio, and
    :class:`UserInputError` when the result is empty, holds NaN / infinite samples or is shorter
    than ``min_seconds``.
    """
    audio = np.concatenate(list(iter_audio(path, sample_rate)))
    if audio.size < min_seconds * sample_rate:
        raise UserInputError(f"audio too short: {audio.size / sample_rate:.2f} s < {min_seconds:.2f} s in {path}")
    return audio


def save_wav(path: PathLike, audio: np.ndarray, sample_rate: int = AUDIO_RATE) -> Path:
    """Write float audio in [-1, 1] as 16-bit PCM wav (atomically)."""
    with atomic_write(path) as tmp:
        sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


def extract_audio(video: PathLike, out_wav: PathLike, sample_rate: int = AUDIO_RATE) -> Path:
    """Save a video's audio track as 16 kHz mono 16-bit wav."""
    return save_wav(out_wav, load_audio(video, sample_rate=sample_rate), sample_rate)


def save_block_aligned_wav(audio: np.ndarray, path: PathLike) -> Path:
    """Save 16 kHz float32 ``audio`` zero-padded to a whole number of 640-sample frames, so a video
    with one frame per block and this track have the same length (muxing then keeps every frame)."""
    n = int(np.ceil(audio.size / SAMPLES_PER_FRAME)) * SAMPLES_PER_FRAME
    padded = np.zeros(n, np.float32)
    padded[: audio.size] = audio
    return save_wav(path, padded, 16000)
