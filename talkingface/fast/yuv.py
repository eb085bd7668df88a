"""Avatar video frames held as I420 (YUV 4:2:0 planar) for the offline mini renderer.

An asset pack's video is decoded once for the whole run; the renderer changes only the mouth rect
of each frame, and the encoder wants YUV 4:2:0 anyway. Keeping the frames as I420 (1.5 bytes per
pixel instead of 3 for BGR) halves their size, and writing I420 to ffmpeg spares its BGR -> YUV
conversion and half the pipe traffic. ``from_video(..., spill=True)`` writes the decoded frames to an
unnamed temporary file and reads one frame at a time back (about 0.1 ms per 720x1080 frame from the
page cache), so the process's memory no longer grows with the avatar video's length (a 7-s 720x1080
avatar: 210 MB less resident memory). Only the rect region (grown to even
coordinates) is ever converted to BGR and back; every other pixel reaches the encoder exactly as
the decoder produced it.

Layout of one frame (``height * 3 // 2`` x ``width`` uint8, OpenCV's I420, as
``talkingface.util.media.iter_video_frames(..., pix_fmt="yuv420p")`` yields it): Y rows, then the U plane
(``height/2 x width/2``, stored as ``height/4`` rows of ``width``), then V likewise. Width and height
must be even.
"""
from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Iterator, NamedTuple, Sequence, Tuple, Union

import cv2
import numpy as np

from talkingface.errors import MediaError
from talkingface.util.media import DEFAULT_FPS, iter_video_frames, probe_video


def even_box(rect: Sequence[int], width: int, height: int) -> Tuple[int, int, int, int]:
    """The smallest box with even corners holding ``rect`` (x0, y0, x1, y1), clipped to the frame."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    return x0 - x0 % 2, y0 - y0 % 2, min(x1 + x1 % 2, width), min(y1 + y1 % 2, height)


class FileSpan(NamedTuple):
    """``length`` bytes at ``offset`` of the open file ``fd``: a part of a frame that an encoder's pipe can
    take straight from the file (``os.sendfile``), without passing through this process's memory."""

    fd: int
    offset: int
    length: int


def join_parts(parts) -> bytes:
    """The bytes of a frame given as :meth:`I420Frames.planes_with_region` parts (file spans read)."""
    return b"".join(os.pread(p.fd, p.length, p.offset) if isinstance(p, FileSpan) else bytes(p) for p in parts)


class _SpilledFrames:
    """A read-only sequence of N equal-shape uint8 frames stored back to back in an open file; reading
    frame i gives a buffer reused by the next read (callers use a frame before asking for another)."""

    def __init__(self, file: BinaryIO, count: int, shape: Tuple[int, int]):
        self.file, self.count, self.shape = file, count, shape
        self._buffer = np.empty(shape, np.uint8)
        self._index = -1

    def __len__(self) -> int:
        return self.count

    def head(self, n: int) -> "_SpilledFrames":
        """The first ``n`` frames (same file)."""
        return _SpilledFrames(self.file, min(max(n, 0), self.count), self.shape)

    def offset(self, i: int) -> int:
        """Byte offset of frame ``i`` in the file."""
        if not 0 <= i < self.count:
            raise IndexError(f"frame {i} of {self.count}")
        return i * self._buffer.nbytes

    def read(self, offset: int, shape: Tuple[int, int]) -> np.ndarray:
        """A new (rows, width) uint8 array read from ``offset``."""
        out = np.empty(shape, np.uint8)
        if os.preadv(self.file.fileno(), [memoryview(out).cast("B")], offset) != out.nbytes:
            raise MediaError("the spilled avatar frames were truncated")
        return out

    def __getitem__(self, i: int) -> np.ndarray:
        i = int(i)
        if not 0 <= i < self.count:
            raise IndexError(f"frame {i} of {self.count}")
        if i != self._index:
            view = memoryview(self._buffer).cast("B")
            if os.preadv(self.file.fileno(), [view], i * self._buffer.nbytes) != self._buffer.nbytes:
                raise MediaError("the spilled avatar frames were truncated")
            self._index = i
        return self._buffer


class I420Frames:
    """N video frames, each a (3H/2, W) uint8 I420 array; indexing gives BGR frames (converted).

    ``region_bgr(i, box)`` converts one even box to BGR; ``planes_with_region(i, box, bgr)`` yields
    the frame's bytes for the encoder with that box replaced, copying only the box's rows.
    """

    def __init__(self, data: Sequence[np.ndarray], width: int, height: int):
        if width % 2 or height % 2:
            raise ValueError("I420 frames need an even width and height")
        shape = (height * 3 // 2, width)
        if isinstance(data, _SpilledFrames):
            if data.shape != shape:
                raise ValueError(f"expected {height * 3 // 2}x{width} I420 frames")
            self.data = data
        else:
            if any(f.shape != shape for f in data):
                raise ValueError(f"expected {height * 3 // 2}x{width} I420 frames")
            self.data = list(data)
        self.width, self.height = width, height
        self.shape = (height, width, 3)  # of one BGR frame

    @classmethod
    def from_video(cls, path, fps: float = DEFAULT_FPS, spill: bool = False, info=None) -> "I420Frames":
        """Decode a video (resampled to ``fps``) straight to I420 with ffmpeg. ``spill``: keep the
        frames in an unnamed temporary file (removed when the frames are garbage-collected or the
        process ends) instead of in memory. ``info``: the video's ``probe_video`` result, when the
        caller has it (ffprobe costs about 0.15 s of CPU)."""
        info = info if info is not None else probe_video(path)
        frames = iter_video_frames(path, fps=fps, info=info, pix_fmt="yuv420p")
        if not spill:
            data = list(frames)
        else:
            store = tempfile.TemporaryFile()
            count = 0
            for frame in frames:
                store.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
                count += 1
            store.flush()
            data = _SpilledFrames(store, count, (info.height * 3 // 2, info.width))
        if not len(data):
            raise MediaError(f"no frames decoded from {path}")
        return cls(data, info.width, info.height)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> np.ndarray:
        return cv2.cvtColor(self.data[i], cv2.COLOR_YUV2BGR_I420)

    def truncate(self, n: int) -> "I420Frames":
        data = self.data.head(n) if isinstance(self.data, _SpilledFrames) else self.data[:n]
        return I420Frames(data, self.width, self.height)

    @property
    def nbytes(self) -> int:
        """Bytes of all frames (wherever they are kept)."""
        return len(self.data) * self.height * 3 // 2 * self.width

    def _plane_geometry(self):
        """Per plane (Y, U, V): (byte offset in a frame, rows, row width)."""
        h, w = self.height, self.width
        return ((0, h, w), (h * w, h // 2, w // 2), (h * w * 5 // 4, h // 2, w // 2))

    def _plane_rows(self, i: int, plane: int, r0: int, r1: int) -> np.ndarray:
        """Rows r0..r1 of one plane (0 = Y, 1 = U, 2 = V) of frame ``i``: a view of a frame held in
        memory, or just those rows read from a spilled file."""
        start, rows, width = self._plane_geometry()[plane]
        if isinstance(self.data, _SpilledFrames):
            return self.data.read(self.data.offset(i) + start + r0 * width, (r1 - r0, width))
        flat = self.data[i].reshape(-1)
        return flat[start: start + rows * width].reshape(rows, width)[r0:r1]

    def region_i420(self, i: int, box: Sequence[int]) -> np.ndarray:
        """The even ``box`` of frame ``i`` as its own small I420 image (copied)."""
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        out = np.empty((bh * 3 // 2, bw), np.uint8)
        flat = out.reshape(-1)
        flat[: bh * bw] = self._plane_rows(i, 0, y0, y1)[:, x0:x1].reshape(-1)
        flat[bh * bw: bh * bw * 5 // 4] = self._plane_rows(i, 1, y0 // 2, y1 // 2)[:, x0 // 2:x1 // 2].reshape(-1)
        flat[bh * bw * 5 // 4:] = self._plane_rows(i, 2, y0 // 2, y1 // 2)[:, x0 // 2:x1 // 2].reshape(-1)
        return out

    def region_bgr(self, i: int, box: Sequence[int]) -> np.ndarray:
        """The even ``box`` (x0, y0, x1, y1) of frame ``i`` as BGR uint8."""
        return cv2.cvtColor(self.region_i420(i, box), cv2.COLOR_YUV2BGR_I420)

    def planes_with_region(self, i: int, box: Sequence[int], region_bgr: np.ndarray
                           ) -> Iterator[Union[memoryview, FileSpan]]:
        """The bytes of frame ``i`` (I420) with the even ``box`` replaced by ``region_bgr`` (its BGR
        pixels), as consecutive parts: the box's rows are new buffers; the untouched rows above and
        below are views of a frame held in memory, or :class:`FileSpan` parts of a spilled file
        (``talkingface.util.media.VideoWriter.write_i420`` sends those from the file directly)."""
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        small = cv2.cvtColor(np.ascontiguousarray(region_bgr), cv2.COLOR_BGR2YUV_I420).reshape(-1)
        parts = (small[: bh * bw].reshape(bh, bw), small[bh * bw: bh * bw * 5 // 4].reshape(bh // 2, bw // 2),
                 small[bh * bw * 5 // 4:].reshape(bh // 2, bw // 2))
        spans = ((y0, y1, x0, x1), (y0 // 2, y1 // 2, x0 // 2, x1 // 2), (y0 // 2, y1 // 2, x0 // 2, x1 // 2))
        spilled = isinstance(self.data, _SpilledFrames)
        for plane, ((start, rows, width), part, (r0, r1, c0, c1)) in enumerate(zip(self._plane_geometry(), parts, spans)):
            changed = self._plane_rows(i, plane, r0, r1)
            if not spilled:
                changed = changed.copy()  # a view of the stored frame; a spilled read is already a new array
            changed[:, c0:c1] = part
            if spilled:
                base = self.data.offset(i) + start
                yield FileSpan(self.data.file.fileno(), base, r0 * width)
                yield memoryview(changed.reshape(-1))
                yield FileSpan(self.data.file.fileno(), base + r1 * width, (rows - r1) * width)
            else:
                whole = self._plane_rows(i, plane, 0, rows)
                yield memoryview(whole[:r0].reshape(-1))
                yield memoryview(changed.reshape(-1))
                yield memoryview(whole[r1:].reshape(-1))
