"""The one audio front end: 80-bin log-mel fbank (kaldi-native-fbank) at 16 kHz, 2 frames per 40 ms.

Options are the original's (docs/REFERENCE.md §4): dither 0, 50 ms window, 20 ms hop, 80 mel
bins, ``snip_edges=False``; the rest kaldi defaults (povey window, pre-emphasis 0.97, DC removal,
log mel from 20 Hz to Nyquist, no energy). Input is float audio in [-1, 1] (int16 / 32768).

Framing (16 kHz): fbank frame j is centred on sample ``320 j + 160`` and spans
``[320 j - 240, 320 j + 560)``; video frame t (samples ``[640 t, 640 t + 640)``) is the pair of
fbank frames ``2t, 2t+1``. Training, offline inference and streaming all run
:class:`StreamingFbank` without ever finalising the input, so they see bit-identical frames: only
frames whose window lies entirely inside the samples received so far are emitted (the reflected
left edge of frame 0 is the only padding). After k blocks of 640 samples, ``2k - 1`` frames are
ready, so the pair for video frame t is complete one block later (see
:data:`FBANK_DELAY_FRAMES`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import kaldi_native_fbank as knf
import numpy as np

from talkingface.errors import UserInputError

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = 640  # one video frame (40 ms at 25 fps)
FBANK_PER_FRAME = 2  # fbank frames per video frame
FBANK_DELAY_FRAMES = 1  # the second frame of pair t needs samples up to 640 t + 880, i.e. block t+1


@dataclass
class FbankConfig:
    """kaldi-native-fbank options (defaults: the original's)."""

    sample_rate: int = SAMPLE_RATE
    frame_length_ms: float = 50.0
    frame_shift_ms: float = 20.0
    num_bins: int = 80
    dither: float = 0.0
    snip_edges: bool = False


def fbank_options(cfg: Optional[FbankConfig] = None):
    """A ``kaldi_native_fbank.FbankOptions`` set from ``cfg``."""
    cfg = cfg or FbankConfig()
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(cfg.sample_rate)
    opts.frame_opts.dither = cfg.dither
    opts.frame_opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_opts.frame_shift_ms = cfg.frame_shift_ms
    opts.frame_opts.snip_edges = cfg.snip_edges
    opts.mel_opts.num_bins = cfg.num_bins
    return opts


def check_waveform(audio: np.ndarray) -> np.ndarray:
    """Validate a waveform array: 1-D, finite, float in [-1, 1] (int16 arrays are scaled by 1/32768).

    Returns float32. Raises UserInputError for anything else (stereo, NaN, wrong scale).
    """
    a = np.asarray(audio)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    if a.ndim != 1:
        raise UserInputError(f"expected mono audio (1-D array), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise UserInputError(f"expected float or int16 audio, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise UserInputError("audio contains NaN or infinite samples")
    if a.size and np.abs(a).max() > 1.5:
        raise UserInputError("audio is not in [-1, 1]: pass float samples (int16 / 32768) at 16 kHz")
    return a


class StreamingFbank:
    """Incremental fbank: feed samples in any block sizes, get the newly completed frames.

    accept(samples: (n,) float32 in [-1, 1]) -> (m, 80) float32 frames completed by this block.
    """

    def __init__(self, cfg: Optional[FbankConfig] = None):
        self.cfg = cfg or FbankConfig()
        self._fbank = knf.OnlineFbank(fbank_options(self.cfg))
        self._next = 0

    @property
    def frames_emitted(self) -> int:
        return self._next

    def accept(self, samples: np.ndarray) -> np.ndarray:
        if len(samples):
            self._fbank.accept_waveform(float(self.cfg.sample_rate), np.asarray(samples, np.float32))
        ready = self._fbank.num_frames_ready
        out = np.empty((max(ready - self._next, 0), self.cfg.num_bins), np.float32)
        for i, j in enumerate(range(self._next, ready)):
            out[i] = self._fbank.get_frame(j)
        if ready > self._next:
            self._fbank.pop(ready - self._next)
        self._next = max(ready, self._next)
        return out


def compute_fbank(audio: np.ndarray, cfg: Optional[FbankConfig] = None) -> np.ndarray:
    """All complete fbank frames of a waveform: (F, 80) float32 (same frames as streaming)."""
    return StreamingFbank(cfg).accept(check_waveform(audio))

