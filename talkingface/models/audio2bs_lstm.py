"""Audio2Feature: fbank frames -> 6 mouth-motion coefficients per 40 ms video frame.

The layer layout (and so the state-dict keys) is the original's (docs/REFERENCE.md §2.3,
docs/CHECKPOINTS.md §6), so its published ``audio.pkl`` loads with strict key matching:

1. two consecutive 80-bin fbank frames (20 ms hop) are concatenated into one 160-vector per
   video frame (40 ms);
2. ``downsample``: Linear 160->80, BatchNorm1d, LeakyReLU(0.2), Linear 80->80;
3. ``LSTM``: 2 layers, hidden 192, unidirectional, batch_first;
4. ``fc``: Linear 192->256, BN, LeakyReLU, Linear 256->256, BN, LeakyReLU, Linear 256->6.

644,166 parameters. What the 6 outputs mean depends on the checkpoint (pixel-PCA coefficients
for the DH_live renderer, blendshape coefficients for the mini renderer; see
:mod:`talkingface.mouth_basis`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from torch import nn

from talkingface.errors import UserInputError


@dataclass
class Audio2FeatureConfig:
    """Hyper-parameters of :class:`Audio2Feature` (defaults: the original's)."""

    n_mels: int = 80
    frames_per_step: int = 2  # fbank frames (20 ms) per output step (40 ms)
    embed_dim: int = 80
    hidden: int = 192
    num_layers: int = 2
    fc_dim: int = 256
    out_dim: int = 6
    leaky: float = 0.2


class Audio2Feature(nn.Module):
    """LSTM regressor from log-mel fbank to per-video-frame coefficients.

    forward(x, h0, c0):
        x: B x T x 80 float fbank (log mel, kaldi scale), T even (2 frames per video frame)
        h0, c0: num_layers x B x 192 (zeros for a fresh sequence)
    returns (y: B x T/2 x 6, hn, cn)
    """

    def __init__(self, cfg: Optional[Audio2FeatureConfig] = None):
        super().__init__()
        self.cfg = cfg = cfg or Audio2FeatureConfig()
        in_dim = cfg.n_mels * cfg.frames_per_step
        self.downsample = nn.Sequential(
            nn.Linear(in_dim, cfg.embed_dim),
            nn.BatchNorm1d(cfg.embed_dim),
            nn.LeakyReLU(cfg.leaky, inplace=True),
            nn.Linear(cfg.embed_dim, cfg.embed_dim),
        )
        self.LSTM = nn.LSTM(input_size=cfg.embed_dim, hidden_size=cfg.hidden, num_layers=cfg.num_layers,
                            batch_first=True, bidirectional=False)
        self.fc = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.fc_dim),
            nn.BatchNorm1d(cfg.fc_dim),
            nn.LeakyReLU(cfg.leaky, inplace=True),
            nn.Linear(cfg.fc_dim, cfg.fc_dim),
            nn.BatchNorm1d(cfg.fc_dim),
            nn.LeakyReLU(cfg.leaky, inplace=True),
            nn.Linear(cfg.fc_dim, cfg.out_dim),
        )

    def init_state(self, batch: int = 1, device: Union[str, torch.device] = "cpu") -> Tuple[torch.Tensor, torch.Tensor]:
        """Zero (h0, c0), each num_layers x batch x hidden."""
        shape = (self.cfg.num_layers, batch, self.cfg.hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
        b, t, f = x.shape
        k = self.cfg.frames_per_step
        if t % k or f != self.cfg.n_mels:
            raise ValueError(f"expected B x T x {self.cfg.n_mels} with T a multiple of {k}, got {tuple(x.shape)}")
        steps = t // k
        z = self.downsample(x.reshape(b * steps, f * k)).reshape(b, steps, self.cfg.embed_dim)
        z, (hn, cn) = self.LSTM(z, (h0, c0))
        y = self.fc(z.reshape(b * steps, self.cfg.hidden)).reshape(b, steps, self.cfg.out_dim)
        return y, hn, cn


def load_audio2feature(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> Audio2Feature:
    """Build an :class:`Audio2Feature` and load a plain state dict (the original's layout) strictly.

    Accepts the original's published ``audio.pkl`` / ``lstm_model_epoch_*.pkl`` and ours; the
    result is in eval mode on ``device``. Raises UserInputError for missing or foreign files.
    """
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"audio model checkpoint not found: {p}")
    try:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserInputError(f"cannot read audio model checkpoint {p}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserInputError(f"{p} is not an Audio2Feature state dict")
    out_dim = state.get("fc.6.weight", torch.empty(6, 1)).shape[0]
    model = Audio2Feature(Audio2FeatureConfig(out_dim=out_dim))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"{p} does not match the Audio2Feature layout: {str(exc).splitlines()[0]}") from exc
    return model.to(device).eval()
