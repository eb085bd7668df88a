"""AudioVisualDataset: windows of speech as fbank, with per-frame mouth-coefficient targets.

docs/REFERENCE.md §3.4, with its bugs fixed:
- the audio is float in [-1, 1] from the start, so the Gaussian-noise augmentation works at the
  intended amplitude (0.001-0.015 of full scale; the original added it to int16 samples, far below
  one step);
- the evaluation path enumerates fixed windows (the original's crashed on an undefined name).

Window of item: video frames ``[f, f + seq_len)``; audio samples ``[640 f, 640 (f + seq_len + 2))``
(2 frames of right context so the last fbank windows are complete), fbank of that slice, first
``2 seq_len`` frames kept. Target: ``coefs[f : f + seq_len, :6]``. With ``coef_list=None`` the
dataset yields audio only (distillation: a teacher network labels each augmented window).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from talkingface.audio_features import FBANK_PER_FRAME, SAMPLES_PER_FRAME, compute_fbank
from talkingface.errors import UserInputError
from talkingface.util.files import reading
from talkingface.util.media import list_audio, load_audio



@dataclass
class AugmentConfig:
    """Augmentation probabilities and ranges (the original's: noise 0.001-0.015, polarity, pitch +-4)."""

    noise_p: float = 0.5
    noise_min: float = 0.001
    noise_max: float = 0.015
    polarity_p: float = 0.5
    pitch_p: float = 0.5
    pitch_semitones: float = 4.0
    gain_db: float = 0.0  # extra random gain +- this many dB (0: off, as in the original)


class WaveAugment:
    """Float-audio augmentation with audiomentations: noise, polarity inversion, pitch shift."""

    def __init__(self, cfg: Optional[AugmentConfig] = None):
        # Lazy: heavy; only augmented training windows need it.
        import audiomentations as am

        self.cfg = cfg = cfg or AugmentConfig()
        steps = [
            am.AddGaussianNoise(min_amplitude=cfg.noise_min, max_amplitude=cfg.noise_max, p=cfg.noise_p),
            am.PolarityInversion(p=cfg.polarity_p),
            am.PitchShift(min_semitones=-cfg.pitch_semitones, max_semitones=cfg.pitch_semitones, p=cfg.pitch_p),
        ]
        if cfg.gain_db > 0:
            steps.append(am.Gain(min_gain_db=-cfg.gain_db, max_gain_db=cfg.gain_db, p=0.5))
        self._pipe = am.Compose(steps)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        out = self._pipe(samples=audio.astype(np.float32), sample_rate=16000)
        return np.clip(out, -1.0, 1.0).astype(np.float32)


class AudioVisualDataset(Dataset):
    """Random (train) or fixed (eval) windows over a list of clips.

    audio_list: float32 16 kHz mono arrays in [-1, 1]; coef_list: matching (N_i, >=6) arrays (one
    row per 40 ms) or None. Items: ``(fbank 2*seq_len x 80 float32, target seq_len x 6 float32)``;
    the target is empty (seq_len x 0) without coefficients.
    In train mode ``len`` is ``samples_per_epoch`` (default: number of clips, as the original) and
    every item is a random clip and start; in eval mode the items are all non-overlapping windows.
    """

    def __init__(self, audio_list: Sequence[np.ndarray], coef_list: Optional[Sequence[np.ndarray]] = None,
                 seq_len: int = 26, train: bool = True, augment: Optional[AugmentConfig] = None,
                 samples_per_epoch: Optional[int] = None, out_dim: int = 6):
        if coef_list is not None and len(coef_list) != len(audio_list):
            raise ValueError("audio_list and coef_list differ in length")
        self.seq_len, self.train, self.out_dim = seq_len, train, out_dim
        self.audio = [np.asarray(a, np.float32) for a in audio_list]
        self.coefs = None if coef_list is None else [np.asarray(c, np.float32)[:, :out_dim] for c in coef_list]
        self.n_windows = []
        for i, a in enumerate(self.audio):
            frames = a.size // SAMPLES_PER_FRAME - 2
            if self.coefs is not None:
                frames = min(frames, len(self.coefs[i]))
            self.n_windows.append(max(frames - seq_len + 1, 0))
        self.usable = [i for i, n in enumerate(self.n_windows) if n > 0]
        if not self.usable:
            raise UserInputError(f"no clip is long enough for a window of {seq_len} frames")
        self.augment = WaveAugment(augment) if (train and augment is not None) else None
        self.samples_per_epoch = samples_per_epoch or len(self.usable)
        self.eval_items: List[Tuple[int, int]] = [(i, f) for i in self.usable
                                                  for f in range(0, self.n_windows[i], seq_len)]
        self._rng = np.random.default_rng()

    def __len__(self) -> int:
        return self.samples_per_epoch if self.train else len(self.eval_items)

    def window(self, clip: int, start: int) -> Tuple[np.ndarray, np.ndarray]:
        """Raw audio slice and target for one window (no augmentation)."""
        s = self.seq_len
        audio = self.audio[clip][start * SAMPLES_PER_FRAME:(start + s + 2) * SAMPLES_PER_FRAME]
        target = (self.coefs[clip][start:start + s] if self.coefs is not None
                  else np.zeros((s, 0), np.float32))
        return audio, target

    def __getitem__(self, index: int):
        if self.train:
            clip = int(self._rng.choice(self.usable))
            start = int(self._rng.integers(self.n_windows[clip]))
        else:
            clip, start = self.eval_items[index]
        audio, target = self.window(clip, start)
        if self.augment is not None:
            audio = self.augment(audio)
        feats = compute_fbank(audio)[: self.seq_len * FBANK_PER_FRAME]
        return torch.from_numpy(np.ascontiguousarray(feats)), torch.from_numpy(np.ascontiguousarray(target))


def worker_init(worker_id: int) -> None:
    """Give every DataLoader worker its own random stream (seeded from torch's per-worker seed)."""
    info = torch.utils.data.get_worker_info()
    if info is not None:
        info.dataset._rng = np.random.default_rng(info.seed % (2 ** 32))


def find_clips(folder: Union[str, Path], target: Optional[str]) -> List[Tuple[Path, Optional[Path]]]:
    """``(audio, coefficients)`` pairs in ``folder`` (recursive).

    target: suffix of the coefficient files (``bs`` -> ``<name>.bs.txt``, ``pixel`` ->
    ``<name>.pixel.txt``, or any other; the original's ``<name>.txt`` with ``""``); None lists audio
    only. Audio without its coefficient file is skipped.
    """
    out = []
    for audio in list_audio(folder):
        if target is None:
            out.append((audio, None))
            continue
        coef = audio.with_name(f"{audio.stem}.{target}.txt" if target else f"{audio.stem}.txt")
        if coef.is_file():
            out.append((audio, coef))
    return out


def load_clips(pairs: Sequence[Tuple[Path, Optional[Path]]]) -> Tuple[List[np.ndarray], Optional[List[np.ndarray]]]:
    """Load audio (16 kHz mono float) and coefficient files of :func:`find_clips` pairs."""
    audio = [load_audio(a) for a, _ in pairs]
    if not pairs or pairs[0][1] is None:
        return audio, None
    return audio, [_read_coefficients(c) for _, c in pairs]


def _read_coefficients(path: Path) -> np.ndarray:
    """A ``<name>.<target>.txt`` coefficient file: (T, K) float32, one row per 40 ms frame."""
    with reading(path, "coefficient file"):
        coefs = np.atleast_2d(np.loadtxt(path, dtype=np.float32))
    if coefs.size == 0 or not np.isfinite(coefs).all():
        raise UserInputError(f"coefficient file {path} is empty or holds NaN / infinite values")
    return coefs


class FbankWindowDataset(Dataset):
    """Random windows over precomputed whole-file fbank (fast path for distillation).

    fbank_list: per clip a list of (F, 80) float32 arrays, one per augmentation variant of the same
    audio (all the same length); every item picks a clip, a variant and a start frame f and returns
    ``fbank[2f : 2f + 2 seq_len]`` (same frames as inference sees, no edge reflection) and, when
    ``coef_list`` is given, ``coefs[f : f + seq_len]``. A clip's coefficients are one array, or a
    list with one array per variant (e.g. a teacher's outputs on each augmented copy).
    Clips are drawn in proportion to their number of windows times ``weights`` (per clip; default 1),
    e.g. to give two data sources fixed shares of the batches.
    """

    def __init__(self, fbank_list: Sequence[Sequence[np.ndarray]], seq_len: int = 26,
                 coef_list: Optional[Sequence[np.ndarray]] = None, samples_per_epoch: int = 1000,
                 weights: Optional[Sequence[float]] = None):
        self.fbank = [[np.asarray(v, np.float32) for v in variants] for variants in fbank_list]
        self.coefs = None
        if coef_list is not None:
            self.coefs = [[np.asarray(v, np.float32)[:, :6] for v in c] if isinstance(c, (list, tuple))
                          else [np.asarray(c, np.float32)[:, :6]] * len(self.fbank[i])
                          for i, c in enumerate(coef_list)]
        self.seq_len = seq_len
        self.samples_per_epoch = samples_per_epoch
        self.n_windows = []
        for i, variants in enumerate(self.fbank):
            frames = len(variants[0]) // FBANK_PER_FRAME
            if self.coefs is not None:
                frames = min([frames] + [len(v) for v in self.coefs[i]])
            self.n_windows.append(max(frames - seq_len + 1, 0))
        weights = np.asarray(self.n_windows, np.float64) * (1.0 if weights is None else np.asarray(weights, np.float64))
        if weights.sum() == 0:
            raise UserInputError(f"no clip is long enough for a window of {seq_len} frames")
        self.p = weights / weights.sum()  # clips sampled in proportion to their length
        self._rng = np.random.default_rng()

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int):
        clip = int(self._rng.choice(len(self.fbank), p=self.p))
        start = int(self._rng.integers(self.n_windows[clip]))
        variant = int(self._rng.integers(len(self.fbank[clip])))
        feats = self.fbank[clip][variant]
        x = feats[FBANK_PER_FRAME * start: FBANK_PER_FRAME * (start + self.seq_len)]
        y = (self.coefs[clip][variant][start:start + self.seq_len] if self.coefs is not None
             else np.zeros((self.seq_len, 0), np.float32))
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
    """``audio`` (float32 16 kHz mono) played ``factor`` times as fast, tempo and pitch together (as a tape
    played faster; the "speed perturbation" of speech recognition), by polyphase resampling: about
    ``len(audio) / factor`` samples. Only for audio whose targets are computed afterwards on the result
    (a teacher's labels), since every frame moves."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(float(factor)).limit_denominator(100)
    if ratio <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if ratio == 1:
        return np.asarray(audio, np.float32)
    out = resample_poly(np.asarray(audio, np.float64), ratio.denominator, ratio.numerator)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def augmented_fbanks(audio: np.ndarray, n_variants: int = 4, cfg: Optional[AugmentConfig] = None,
                     seed: int = 0) -> List[np.ndarray]:
    """Fbank of a whole clip: the clean audio plus ``n_variants - 1`` augmented copies
    (each with the full augmentation chain), cut to a common length."""
    rng = np.random.default_rng(seed)
    np.random.seed(int(rng.integers(2 ** 31)))  # audiomentations draws from numpy's global stream
    aug = WaveAugment(cfg or AugmentConfig())
    out = [compute_fbank(audio)]
    for _ in range(n_variants - 1):
        out.append(compute_fbank(aug(audio)))
    n = min(len(v) for v in out)
    n -= n % FBANK_PER_FRAME
    return [v[:n] for v in out]
