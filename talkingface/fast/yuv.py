"""Avatar video frames held as I420 (YUV 4:2:0 planar) for the offline mini renderer.

An asset pack's video is decoded once and kept in memory for the whole run; the renderer changes
only the mouth rect of each frame, and the encoder wants YUV 4:2:0 anyway. Keeping the frames as
I420 (1.5 bytes per pixel instead of 3 for BGR) halves that memory, and writing I420 to ffmpeg
spares its BGR -> YUV conversion and half the pipe traffic. Only the rect region (grown to even
coordinates) is ever converted to BGR and back; every other pixel reaches the encoder exactly as
the decoder produced it.

Layout of one frame (``height * 3 // 2`` x ``width`` uint8, OpenCV's I420, as
``talkingface.util.media.iter_video_frames(..., pix_fmt="yuv420p")`` yields it): Y rows, then the U plane
(``height/2 x width/2``, stored as ``height/4`` rows of ``width``), then V likewise. Width and height
must be even.
"""
from __future__ import annotations

from typing import Iterator, Sequence, Tuple

import cv2
import numpy as np

from talkingface.errors import MediaError
from talkingface.util.media import DEFAULT_FPS, iter_video_frames, probe_video


def even_box(rect: Sequence[int], width: int, height: int) -> Tuple[int, int, int, int]:
    """The smallest box with even corners holding ``rect`` (x0, y0, x1, y1), clipped to the frame."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    return x0 - x0 % 2, y0 - y0 % 2, min(x1 + x1 % 2, width), min(y1 + y1 % 2, height)


class I420Frames:
    """N video frames, each a (3H/2, W) uint8 I420 array; indexing gives BGR frames (converted).

    ``region_bgr(i, box)`` converts one even box to BGR; ``planes_with_region(i, box, bgr)`` yields
    the frame's bytes for the encoder with that box replaced, copying only the box's rows.
    """

    def __init__(self, data: Sequence[np.ndarray], width: int, height: int):
        if width % 2 or height % 2:
            raise ValueError("I420 frames need an even width and height")
        if any(f.shape != (height * 3 // 2, width) for f in data):
            raise ValueError(f"expected {height * 3 // 2}x{width} I420 frames")
        self.data = list(data)
        self.width, self.height = width, height
        self.shape = (height, width, 3)  # of one BGR frame

    @classmethod
    def from_video(cls, path, fps: float = DEFAULT_FPS) -> "I420Frames":
        """Decode a video (resampled to ``fps``) straight to I420 with ffmpeg."""
        info = probe_video(path)
        frames = list(iter_video_frames(path, fps=fps, info=info, pix_fmt="yuv420p"))
        if not frames:
            raise MediaError(f"no frames decoded from {path}")
        return cls(frames, info.width, info.height)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> np.ndarray:
        return cv2.cvtColor(self.data[i], cv2.COLOR_YUV2BGR_I420)

    def truncate(self, n: int) -> "I420Frames":
        return I420Frames(self.data[:n], self.width, self.height)

    @property
    def nbytes(self) -> int:
        return sum(int(f.nbytes) for f in self.data)

    def _planes(self, i: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = self.height, self.width
        flat = self.data[i].reshape(-1)
        y = flat[: h * w].reshape(h, w)
        u = flat[h * w: h * w * 5 // 4].reshape(h // 2, w // 2)
        v = flat[h * w * 5 // 4:].reshape(h // 2, w // 2)
        return y, u, v

    def region_i420(self, i: int, box: Sequence[int]) -> np.ndarray:
        """The even ``box`` of frame ``i`` as its own small I420 image (copied)."""
        x0, y0, x1, y1 = box
        y, u, v = self._planes(i)
        bw, bh = x1 - x0, y1 - y0
        out = np.empty((bh * 3 // 2, bw), np.uint8)
        flat = out.reshape(-1)
        flat[: bh * bw] = y[y0:y1, x0:x1].reshape(-1)
        flat[bh * bw: bh * bw * 5 // 4] = u[y0 // 2:y1 // 2, x0 // 2:x1 // 2].reshape(-1)
        flat[bh * bw * 5 // 4:] = v[y0 // 2:y1 // 2, x0 // 2:x1 // 2].reshape(-1)
        return out

    def region_bgr(self, i: int, box: Sequence[int]) -> np.ndarray:
        """The even ``box`` (x0, y0, x1, y1) of frame ``i`` as BGR uint8."""
        return cv2.cvtColor(self.region_i420(i, box), cv2.COLOR_YUV2BGR_I420)

    def planes_with_region(self, i: int, box: Sequence[int], region_bgr: np.ndarray) -> Iterator[memoryview]:
        """The bytes of frame ``i`` (I420) with the even ``box`` replaced by ``region_bgr`` (its BGR
        pixels), as consecutive buffers: untouched rows are views of the stored frame (no copy)."""
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        small = cv2.cvtColor(np.ascontiguousarray(region_bgr), cv2.COLOR_BGR2YUV_I420).reshape(-1)
        parts = (small[: bh * bw].reshape(bh, bw), small[bh * bw: bh * bw * 5 // 4].reshape(bh // 2, bw // 2),
                 small[bh * bw * 5 // 4:].reshape(bh // 2, bw // 2))
        for plane, part, (r0, r1, c0, c1) in zip(self._planes(i), parts,
                                                ((y0, y1, x0, x1), (y0 // 2, y1 // 2, x0 // 2, x1 // 2),
                                                 (y0 // 2, y1 // 2, x0 // 2, x1 // 2))):
            rows = plane[r0:r1].copy()
            rows[:, c0:c1] = part
            yield memoryview(plane[:r0].reshape(-1))
            yield memoryview(rows.reshape(-1))
            yield memoryview(plane[r1:].reshape(-1))

