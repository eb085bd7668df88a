"""Real talking-video clips for the audio model: audio, face mesh, pose-normalised shapes, mouth crops.

One :class:`ClipData` per video, computed once and cached as ``<cache>/<name>.clip.npz`` (the audio
is written beside it as ``<name>.wav``, 16 kHz mono), so fitting bases, writing training targets
and evaluating all read the same numbers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from talkingface.errors import MediaError, UserInputError
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.mouth_basis import cut_mouth_crops, mouth_box, neutral_shape, normalize_landmarks, process_crops
from talkingface.util.files import atomic_write, reading
from talkingface.util.media import load_audio, probe_video, read_video, save_wav

log = logging.getLogger(__name__)

MAX_MISSING_FRACTION = 0.1


@dataclass
class ClipData:
    """A prepared clip (25 fps; N = frames kept, the shorter of video and audio).

    audio: (S,) float32 16 kHz mono; landmarks: (N,478,3) pixels (missing frames interpolated);
    mats: (N,4,4) canonical->frame poses; normalized: (N,478,3) canonical units;
    raw_crops: (N,15,30,3) uint8 BGR mouth crops (not yet symmetrised/normalised).
    """

    name: str
    audio: np.ndarray
    landmarks: np.ndarray
    mats: np.ndarray
    normalized: np.ndarray
    raw_crops: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)


def clip_name(video: Path, root: Optional[Path] = None) -> str:
    """A unique flat name: the path below ``root`` with separators replaced by '__'."""
    rel = video.relative_to(root) if root is not None else Path(video.name)
    return "__".join(rel.with_suffix("").parts)


def cached_landmarks(video: Union[str, Path], data_root: Optional[Union[str, Path]],
                     cache_dir: Optional[Union[str, Path]]) -> Optional[np.ndarray]:
    """(N, 478, 3) float64 landmarks of ``video`` from a clip cache (``<cache>/<clip_name>.clip.npz``,
    names relative to ``data_root``), or None when the video is not below ``data_root`` or not cached.
    Frame i is frame i of the video decoded at 25 fps; N may be shorter than the video (clipped to its audio).
    """
    if cache_dir is None or data_root is None:
        return None
    try:
        rel = Path(video).resolve().relative_to(Path(data_root).resolve())
    except ValueError:
        return None
    npz = Path(cache_dir) / (clip_name(Path(data_root) / rel, Path(data_root)) + ".clip.npz")
    if not npz.is_file():
        return None
    with np.load(npz) as data:
        return data["landmarks"].astype(np.float64)


def _fill_missing(lm: np.ndarray, name: str) -> np.ndarray:
    ok = np.isfinite(lm).all(axis=(1, 2))
    if ok.mean() < 1 - MAX_MISSING_FRACTION:
        raise UserInputError(f"{name}: the face mesh missed {np.sum(~ok)} of {len(ok)} frames")
    if ok.all():
        return lm
    idx = np.arange(len(lm))
    flat = lm.reshape(len(lm), -1).copy()
    for j in range(flat.shape[1]):
        flat[~ok, j] = np.interp(idx[~ok], idx[ok], flat[ok, j])
    return flat.reshape(lm.shape)


def prepare_clip(video: Union[str, Path], cache_dir: Union[str, Path], name: Optional[str] = None,
                 progress: bool = False, require_audio: bool = True,
                 audio_file: Optional[Union[str, Path]] = None) -> ClipData:
    """Decode, mesh, pose-normalise and crop one video (cached in ``cache_dir``).

    ``audio_file``: the clip's sound track when it is a separate file (e.g. a video without audio
    and a same-named ``.m4a``); by default the video's own track. A clip without sound raises
    MediaError, or with ``require_audio=False`` gives a clip with empty audio (usable for fitting
    bases, not for training targets). Any frame rate is resampled to 25 fps.
    """
    video = Path(video)
    name = name or video.stem
    cache_dir = Path(cache_dir)  # created by the first write, so a clip that fails leaves no folder
    npz, wav = cache_dir / f"{name}.clip.npz", cache_dir / f"{name}.wav"
    if npz.is_file():
        with reading(npz, "cached clip"), np.load(npz, allow_pickle=False) as d:
            audio = load_audio(wav) if wav.is_file() else np.zeros(0, np.float32)
            if require_audio and audio.size == 0:
                raise MediaError(f"{video.name} has no audio track")
            return ClipData(name, audio, d["landmarks"], d["mats"], d["normalized"], d["raw_crops"])
    has_audio = audio_file is not None or probe_video(video).has_audio
    if require_audio and not has_audio:
        raise MediaError(f"{video.name} has no audio track")
    audio = load_audio(audio_file or video) if has_audio else np.zeros(0, np.float32)
    frames = read_video(video)
    n = min(len(frames), int(np.ceil(audio.size / 640))) if has_audio else len(frames)
    if n < 10:
        raise UserInputError(f"{video}: too short ({n} frames with audio)")
    frames = frames[:n]
    lm = _fill_missing(landmarks_for_video(frames, progress=progress, allow_missing=True), video.name)
    mats, normalized = normalize_landmarks(lm)
    crops = cut_mouth_crops(frames, mats, mouth_box(normalized))
    if has_audio:  # the wav first: a cached npz means the clip is complete
        save_wav(wav, audio)
        audio = load_audio(wav)
    with atomic_write(npz) as tmp:
        np.savez_compressed(tmp, landmarks=lm.astype(np.float32), mats=mats.astype(np.float32),
                            normalized=normalized.astype(np.float32), raw_crops=crops)
    return ClipData(name, audio, lm, mats, normalized, crops)


def blendshape_coefficients(clip: ClipData, basis) -> np.ndarray:
    """Per-frame blendshape coefficients of a clip against its own neutral shape: (N, 6)."""
    norm = np.asarray(clip.normalized, np.float64)
    return basis.project(norm, neutral_shape(norm))


def pixel_coefficients(clip: ClipData, basis) -> np.ndarray:
    """Per-frame pixel-basis coefficients of the clip's processed mouth crops: (N, 6)."""
    return basis.project(process_crops(clip.raw_crops))


def write_targets(clip: ClipData, cache_dir: Union[str, Path], bs_basis, px_basis) -> None:
    """Write ``<name>.bs.txt`` and ``<name>.pixel.txt`` (N x 6, one row per 40 ms) beside ``<name>.wav``."""
    cache_dir = Path(cache_dir)
    for suffix, coefs in (("bs", blendshape_coefficients(clip, bs_basis)),
                          ("pixel", pixel_coefficients(clip, px_basis))):
        with atomic_write(cache_dir / f"{clip.name}.{suffix}.txt") as tmp:
            np.savetxt(tmp, coefs, fmt="%.5f")
