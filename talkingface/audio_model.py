"""AudioModel: speech -> 6 mouth-motion coefficients per 40 ms video frame, offline or streaming.

Both paths run the same fbank frames (:mod:`talkingface.audio_features`) through the same
:class:`~talkingface.models.audio2bs_lstm.Audio2Feature` weights in float64 (offline: the torch
module; streaming: a numpy step with carried LSTM state, far cheaper per 40 ms), so they agree to
about 1e-9 once aligned:

- A model is trained with a lookahead of L steps (LSTM step p predicts frame p - L): L is the card's
  ``lookahead_steps``, else 4, the original's recipe. The shipped models (checkpoint/audio.json,
  checkpoint/lstm/lstm_blendshape.json) have L = 2.
- ``interface_wav(path_or_array)`` returns ``N = ceil(samples / 640)`` rows; row t belongs to
  video frame t (samples ``[640 t, 640 t + 640)``): the file is padded with silence at the end and
  the first L steps are dropped.
- ``interface_frame(block)`` takes 640 samples and returns one row. Row k (0-based call count)
  belongs to video frame ``k - lookahead_frames`` with ``lookahead_frames = L + 1``: the model's
  lookahead plus 1 frame because the second fbank window of a frame reaches 15 ms into the next
  block. For the shipped models that is 3 frames, 120 ms (5 frames, 200 ms for L = 4); the first
  ``lookahead_frames`` rows precede the audio (row 0 is all zeros). ``reset()`` starts a new stream.

What the coefficients mean is stated by the checkpoint's sidecar ``<name>.json`` (``target``:
``pixel`` or ``blendshape``, and the basis file that decodes them; see
:mod:`talkingface.mouth_basis`).
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import numpy as np
import torch

from talkingface.audio_features import (FBANK_DELAY_FRAMES, FBANK_PER_FRAME, SAMPLES_PER_FRAME, StreamingFbank,
                                        check_waveform)
from talkingface.config.paths import AUDIO_CHECKPOINT as DEFAULT_CHECKPOINT
from talkingface.errors import UserInputError
from talkingface.models.audio2bs_lstm import load_audio2feature
from talkingface.util.files import read_model_card
from talkingface.util.media import load_audio

log = logging.getLogger(__name__)

MODEL_LOOKAHEAD_STEPS = 4  # the original trains pred[t + 4] against target[t] (docs/REFERENCE.md §6.2)


def load_waveform(audio: Union[str, Path, np.ndarray]) -> np.ndarray:
    """A path (any format/rate/channels, converted by ffmpeg) or a 16 kHz mono array -> float32."""
    if isinstance(audio, (str, Path)):
        return load_audio(audio, sample_rate=16000)
    return check_waveform(audio)


def _fold_bn(linear: torch.nn.Linear, bn: torch.nn.BatchNorm1d):
    """(W, b) of ``bn(linear(x))`` in eval mode, as float64 numpy."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = linear.weight.double() * scale[:, None]
    b = (linear.bias.double() - bn.running_mean.double()) * scale + bn.bias.double()
    return w.numpy(), b.numpy()


class _NumpyStep:
    """One Audio2Feature step (2 fbank frames) in float64 numpy: the streaming fast path.

    Same maths as the module in eval mode (BatchNorm folded into the preceding Linear); a torch
    call per 40 ms costs milliseconds of dispatch overhead, this costs about 0.1 ms.
    """

    def __init__(self, net: torch.nn.Module):
        with torch.no_grad():
            ds, fc = net.downsample, net.fc
            self.slope = float(ds[2].negative_slope)
            self.w0, self.b0 = _fold_bn(ds[0], ds[1])
            self.w1, self.b1 = ds[3].weight.double().numpy(), ds[3].bias.double().numpy()
            self.lstm = []
            hid = net.LSTM.hidden_size
            # torch's gate order is (i, f, g, o); reorder to (i, f, o, g) so one sigmoid covers 3 gates
            order = torch.cat([torch.arange(0, 2 * hid), torch.arange(3 * hid, 4 * hid), torch.arange(2 * hid, 3 * hid)])
            for k in range(net.LSTM.num_layers):
                w = torch.cat([getattr(net.LSTM, f"weight_ih_l{k}"), getattr(net.LSTM, f"weight_hh_l{k}")], 1)
                b = getattr(net.LSTM, f"bias_ih_l{k}").double() + getattr(net.LSTM, f"bias_hh_l{k}").double()
                self.lstm.append((w[order].double().numpy(), b[order].double().numpy()))
            self.hid = hid
            self.f0, self.fb0 = _fold_bn(fc[0], fc[1])
            self.f1, self.fb1 = _fold_bn(fc[3], fc[4])
            self.f2, self.fb2 = fc[6].weight.double().numpy(), fc[6].bias.double().numpy()

    def _act(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, self.slope * x)

    def __call__(self, pair: np.ndarray, h: np.ndarray, c: np.ndarray) -> np.ndarray:
        """pair: 2x80 fbank; h, c: layers x hidden (updated in place) -> (6,) float64."""
        z = self.w1 @ self._act(self.w0 @ pair.reshape(-1).astype(np.float64) + self.b0) + self.b1
        n = self.hid
        for k, (w, b) in enumerate(self.lstm):
            gates = w @ np.concatenate([z, h[k]]) + b
            sig = 1.0 / (1.0 + np.exp(-gates[: 3 * n]))  # input, forget, output gates
            c[k] = sig[n:2 * n] * c[k] + sig[:n] * np.tanh(gates[3 * n:])
            h[k] = sig[2 * n:] * np.tanh(c[k])
            z = h[k]
        z = self._act(self.f1 @ self._act(self.f0 @ z + self.fb0) + self.fb1)
        return self.f2 @ z + self.fb2


class AudioModel:
    """Run an Audio2Feature checkpoint on speech.

    checkpoint: plain Audio2Feature state dict (ours or the original's); default
    ``checkpoint/audio.pkl`` of this repository.
    """

    def __init__(self, checkpoint: Union[str, Path, None] = None, device: str = "cpu",
                 lookahead_steps: Optional[int] = None):
        self.checkpoint = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        self.device = torch.device(device)
        self.net = load_audio2feature(self.checkpoint, self.device)
        self.card = read_model_card(self.checkpoint)
        self.lookahead_steps = int(lookahead_steps if lookahead_steps is not None
                                   else self.card.get("lookahead_steps", MODEL_LOOKAHEAD_STEPS))
        self.out_dim = self.net.cfg.out_dim
        self._net64 = copy.deepcopy(self.net).double()
        self._step = _NumpyStep(self.net.cpu())
        self.net.to(self.device)
        self.reset()

    @property
    def lookahead_frames(self) -> int:
        """Streaming delay in video frames: row k of ``interface_frame`` is frame k - this."""
        return self.lookahead_steps + FBANK_DELAY_FRAMES

    def interface_wav(self, audio: Union[str, Path, np.ndarray]) -> np.ndarray:
        """Whole-file inference: (N, 6) float64 with N = ceil(samples / 640); row t = frame t."""
        return np.concatenate(list(self.interface_stream([load_waveform(audio)])))

    @torch.no_grad()
    def interface_stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Whole-file inference over audio that arrives in blocks of any sizes (e.g. from
        :func:`talkingface.util.media.iter_audio`): yields (M, 6) float64 arrays of consecutive
        rows, row t = frame t, N = ceil(samples / 640) rows in all - the numbers of
        :meth:`interface_wav` on the whole file (the LSTM state is carried from block to block),
        with memory bounded by one block instead of growing with the length."""
        fbank = StreamingFbank()
        pending = np.zeros((0, 80), np.float32)
        h, c = (s.double() for s in self.net.init_state(1, self.device))
        to_skip = self.lookahead_steps  # LSTM step p predicts frame p - lookahead_steps
        samples = 0

        def run(feats: np.ndarray) -> np.ndarray:
            nonlocal h, c, to_skip
            x = torch.from_numpy(feats).to(self.device, torch.float64)[None]
            y, h, c = self._net64(x, h, c)
            rows = y[0].cpu().numpy()
            drop, to_skip = min(to_skip, len(rows)), to_skip - min(to_skip, len(rows))
            return rows[drop:]

        for block in blocks:
            block = check_waveform(block)
            samples += block.size
            pending = np.concatenate([pending, fbank.accept(block)])
            whole = len(pending) // FBANK_PER_FRAME * FBANK_PER_FRAME
            if whole:
                rows, pending = run(pending[:whole]), pending[whole:]
                if len(rows):
                    yield rows
        if samples == 0:
            raise UserInputError("empty audio")
        # The end: silence so that every frame gets its lookahead, cut at the same step count as the
        # whole-file path (steps = N + lookahead_steps, fbank frames of the padded signal).
        steps = int(np.ceil(samples / SAMPLES_PER_FRAME)) + self.lookahead_steps
        pad = (steps + FBANK_DELAY_FRAMES) * SAMPLES_PER_FRAME - samples
        pending = np.concatenate([pending, fbank.accept(np.zeros(pad, np.float32))])
        remaining = steps * FBANK_PER_FRAME - fbank.frames_emitted + len(pending)
        rows = run(pending[: remaining - remaining % FBANK_PER_FRAME]) if remaining > 0 else np.zeros((0, 6))
        if len(rows):
            yield rows

    def reset(self) -> None:
        """Start a new stream: fresh fbank and zero LSTM state."""
        self._fbank = StreamingFbank()
        self._pending = np.zeros((0, 80), np.float32)
        cfg = self.net.cfg
        self._h = np.zeros((cfg.num_layers, cfg.hidden))
        self._c = np.zeros((cfg.num_layers, cfg.hidden))
        self._last = np.zeros(self.out_dim)

    def stream(self) -> "AudioModel":
        """Another stream over the same weights: a shallow copy with its own fresh state
        (:meth:`reset`), for serving several streams at once without reloading the checkpoint."""
        other = copy.copy(self)
        other.reset()
        return other

    def interface_frame(self, block: np.ndarray) -> np.ndarray:
        """Streaming: 640 new samples (float32 in [-1, 1]) -> (6,) float64 row for frame k - lookahead_frames."""
        block = check_waveform(block)
        if block.size != SAMPLES_PER_FRAME:
            raise UserInputError(f"interface_frame needs {SAMPLES_PER_FRAME} samples, got {block.size}")
        self._pending = np.concatenate([self._pending, self._fbank.accept(block)])
        while len(self._pending) >= FBANK_PER_FRAME:
            pair, self._pending = self._pending[:FBANK_PER_FRAME], self._pending[FBANK_PER_FRAME:]
            self._last = self._step(pair, self._h, self._c)
        return self._last.copy()
