"""MODA clip records: per-frame canonical meshes, head pose and masks of one clip, cached as npz.

``<out>/<name>.moda.npz`` holds (N = frames at 25 fps):

- ``dense`` (N, 478, 3) float32: the face mesh in MODA's canonical 512-px space
  (:mod:`talkingface.moda_geometry`); lips and eyes are its subsets;
- ``head7`` (N, 7) float64: yaw, pitch, roll (deg), anchor x, y, z (px), scale;
- ``torso`` (N, 18, 3) float32 and ``torso_valid`` (bool): shoulder points. This version has no
  shoulder tracker, so records are written in the documented no-torso mode (zeros, False) and the
  torso loss is masked (docs/MODA.md);
- ``lip_only`` (bool): True for speech pseudo-labels, whose ``dense`` has only the 40 lips valid;
- ``has_audio`` (bool), ``source`` (the input path relative to the data root when known).

The audio is written beside it as ``<name>.wav`` (16 kHz mono) when the clip has some. Per-subject
means (:func:`subject_means`) are taken over the record (one clip = one subject).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from talkingface.data.av_clips import prepare_clip
from talkingface.errors import UserInputError
from talkingface.moda_geometry import LIPS, canonical_mean_face, canonicalize, mean_face_to_canonical
from talkingface.util.files import atomic_write, reading
from talkingface.util.media import load_audio, save_wav

log = logging.getLogger(__name__)

N_TORSO = 18


@dataclass
class ClipRecord:
    """One prepared clip (see the module docstring for the arrays)."""

    name: str
    dense: np.ndarray
    head7: np.ndarray
    torso: np.ndarray
    torso_valid: bool
    has_audio: bool
    lip_only: bool
    source: str
    audio: np.ndarray  # (S,) float32 16 kHz, empty without audio

    @property
    def n_frames(self) -> int:
        return len(self.dense)

    def save(self, folder: Union[str, Path]) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.has_audio:
            save_wav(folder / f"{self.name}.wav", self.audio)
        path = folder / f"{self.name}.moda.npz"
        with atomic_write(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, dense=self.dense.astype(np.float32), head7=self.head7.astype(np.float64),
                                    torso=self.torso.astype(np.float32), torso_valid=self.torso_valid,
                                    has_audio=self.has_audio, lip_only=self.lip_only, source=np.array(self.source))
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ClipRecord":
        path = Path(path)
        name = path.name[: -len(".moda.npz")]
        try:
            with reading(path, "MODA clip record"), np.load(path, allow_pickle=False) as d:
                has_audio = bool(d["has_audio"])
                wav = path.with_name(f"{name}.wav")
                audio = load_audio(wav) if has_audio else np.zeros(0, np.float32)
                return cls(name, d["dense"], d["head7"], d["torso"], bool(d["torso_valid"]), has_audio,
                           bool(d["lip_only"]), str(d["source"]), audio)
        except (OSError, KeyError, ValueError) as exc:
            raise UserInputError(f"not a MODA clip record: {path} ({exc})") from exc


def load_records(folder: Union[str, Path]) -> list:
    """Every ``*.moda.npz`` of a folder (sorted by name)."""
    paths = sorted(Path(folder).glob("*.moda.npz"))
    if not paths:
        raise UserInputError(f"no *.moda.npz clip records in {folder}")
    return [ClipRecord.load(p) for p in paths]


def record_from_video(video: Union[str, Path], cache_dir: Union[str, Path], name: str, source: str = "",
                      progress: bool = False) -> ClipRecord:
    """Face mesh (cached by :func:`talkingface.data.av_clips.prepare_clip`, missing frames up to 10 %
    interpolated) -> canonical meshes and head pose. No-torso mode."""
    clip = prepare_clip(video, cache_dir, name=name, progress=progress, require_audio=False)
    dense, head7 = canonicalize(clip.landmarks)
    n = len(dense)
    return ClipRecord(name, dense.astype(np.float32), head7, np.zeros((n, N_TORSO, 3), np.float32), False,
                      clip.audio.size > 0, False, source or str(video), clip.audio)


def record_from_speech(wav: Union[str, Path], teacher, basis, name: str, source: str = "") -> ClipRecord:
    """Lip pseudo-labels for a speech file: the teacher audio model's 6 blendshape coefficients per
    frame -> the basis' lower-face shape (mean-face units) -> the 40 lips in canonical units, placed
    in the canonical mean face (whose other points are not targets: ``lip_only``). Frontal pose."""
    audio = load_audio(wav)
    coefs = teacher.interface_wav(audio)  # (N, 6), row t = frame t
    shapes = basis.decode(coefs)  # (N, K, 3) mean-face units, K = basis.landmark_ids
    pos = {int(m): i for i, m in enumerate(basis.landmark_ids)}
    missing = [i for i in LIPS if i not in pos]
    if missing:
        raise UserInputError(f"the blendshape basis lacks lip points {missing[:5]}")
    n = len(coefs)
    dense = np.repeat(canonical_mean_face()[None], n, axis=0)
    full = np.zeros((n, 478, 3))
    full[:, basis.landmark_ids] = shapes
    dense[:, LIPS] = mean_face_to_canonical(full)[:, LIPS]
    head7 = np.zeros((n, 7))
    head7[:, 6] = 1.0  # no pose: frontal, unit scale
    return ClipRecord(name, dense.astype(np.float32), head7, np.zeros((n, N_TORSO, 3), np.float32), False,
                      True, True, source or str(wav), audio)


def subject_means(rec: ClipRecord) -> dict:
    """Per-subject means over the clip: mesh (478, 3), head7 (7,), torso (18, 3)."""
    return {"dense": rec.dense.mean(0).astype(np.float64), "head7": rec.head7.mean(0),
            "torso": rec.torso.mean(0).astype(np.float64)}


def relative_source(path: Path, root: Optional[Path]) -> str:
    """``path`` relative to ``root`` as a POSIX string (the held-out lists' form), else the path."""
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return str(path)
