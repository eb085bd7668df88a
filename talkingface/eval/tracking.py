"""Face-mesh tracks of whole videos for the evaluation, cached in memory per file.

A clip is scored against several generated videos (model, baselines), so its landmarks are
computed once per process: the cache key is the file's resolved path, size and modification time.
Frames in which MediaPipe finds no face are NaN rows and are counted as detection failures.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.util.media import PathLike, read_video

log = logging.getLogger(__name__)

_CACHE_SIZE = 16
_cache: "OrderedDict[Tuple, VideoTrack]" = OrderedDict()


@dataclass(frozen=True)
class VideoTrack:
    """Landmarks of every frame of one video at 25 fps.

    points: (N, 478, 3) float64 pixel coordinates of the frame size ``size`` (W, H); rows of frames
    without a detected face are NaN.
    """

    points: np.ndarray
    size: Tuple[int, int]

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def valid(self) -> np.ndarray:
        """(N,) bool: a face was found in the frame."""
        return ~np.isnan(self.points[:, 0, 0])

    @property
    def failures(self) -> int:
        return int((~self.valid).sum())


def _key(path: Path, size: Optional[Tuple[int, int]]) -> Tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, size)


def track_video(path: PathLike, size: Optional[Tuple[int, int]] = None, progress: bool = True) -> VideoTrack:
    """Decode ``path`` at 25 fps and run the tracking face mesh on every frame (cached).

    size: optional (W, H); frames are resized to it first (used when a generated video's frame size
    differs from its ground truth's, so both are measured in the same pixel units).
    """
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"video not found: {p}")
    key = _key(p, size)
    native = _key(p, None)
    for k in (key, native):
        hit = _cache.get(k)
        if hit is not None and (size is None or hit.size == tuple(size)):
            _cache.move_to_end(k)
            return hit
    frames = read_video(p)
    resized = size is not None and frames[0].shape[1::-1] != tuple(size)
    if resized:
        frames = [cv2.resize(f, tuple(size), interpolation=cv2.INTER_AREA) for f in frames]
    log.info("face mesh on %d frames of %s", len(frames), p.name)
    points = landmarks_for_video(frames, progress=progress, allow_missing=True)
    track = VideoTrack(points=points, size=(frames[0].shape[1], frames[0].shape[0]))
    _cache[key if resized else native] = track
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return track

