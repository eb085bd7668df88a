"""FaCo-Net: the dense 478-point face from MODA's sparse lip (40) and eye (60) points, frame by frame.

All inputs and outputs are deltas from the subject's mean mesh in the canonical 512-px space of
:mod:`talkingface.moda_geometry`; the subject code is the flattened mean mesh itself (1434).

Generator (1,900,442 parameters): lip encoder 120->256->256->128, eye encoder 180->256->256->128,
concatenated (256) plus a subject code 1434->128->128->256, decoder 256->512->512->512->1434.
Discriminator (792,705): concat(lip, eye, dense) 1734->256->256 plus a subject code
1434->128->128->256, classifier 256->128->128->1: one LSGAN score per frame. LeakyReLU 0.2 between
layers, no normalisation.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from talkingface.config.moda import FaCoConfig


def mlp(dims: Sequence[int], slope: float = 0.2) -> nn.Sequential:
    """Linear layers with LeakyReLU between them (none after the last); works on (..., dims[0])."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.LeakyReLU(slope))
    return nn.Sequential(*layers)


class FaCoNet(nn.Module):
    """forward(lip (..., 120), eye (..., 180), subject (..., 1434)) -> dense deltas (..., 1434).

    Leading dimensions are free (frames or B x T); ``subject`` broadcasts against them when it has
    fewer leading dimensions (e.g. (B, 1, 1434) against (B, T, 120)).
    """

    def __init__(self, cfg: FaCoConfig = FaCoConfig()):
        super().__init__()
        h, c, s = cfg.hidden, cfg.code, cfg.slope
        self.cfg = cfg
        self.lip_enc = mlp([cfg.lip_dim, h, h, c], s)
        self.eye_enc = mlp([cfg.eye_dim, h, h, c], s)
        self.subject_enc = mlp([cfg.dense_dim, c, c, 2 * c], s)
        self.decoder = mlp([2 * c, cfg.dec_hidden, cfg.dec_hidden, cfg.dec_hidden, cfg.dense_dim], s)

    def forward(self, lip: torch.Tensor, eye: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        code = torch.cat([self.lip_enc(lip), self.eye_enc(eye)], -1) + self.subject_enc(subject)
        return self.decoder(code)


class PointDiscriminator(nn.Module):
    """forward(lip (..., 120), eye (..., 180), dense (..., 1434), subject (..., 1434)) -> (..., 1)."""

    def __init__(self, cfg: FaCoConfig = FaCoConfig()):
        super().__init__()
        h, c, s = cfg.hidden, cfg.code, cfg.slope
        self.points = mlp([cfg.lip_dim + cfg.eye_dim + cfg.dense_dim, h, h], s)
        self.subject_enc = mlp([cfg.dense_dim, c, c, h], s)
        self.classifier = nn.Sequential(nn.LeakyReLU(s), mlp([h, c, c, 1], s))

    def forward(self, lip: torch.Tensor, eye: torch.Tensor, dense: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        x = self.points(torch.cat([lip, eye, dense], -1)) + self.subject_enc(subject)
        return self.classifier(x)


def lsgan_loss(score: torch.Tensor, real: bool, all_samples: bool = True) -> torch.Tensor:
    """Least-squares GAN loss of scores (B, ..., 1) against 1 (real) or 0; ``all_samples=False``
    scores only the last sample of the batch, as the released code does."""
    s = score if all_samples else score[-1:]
    return ((s - (1.0 if real else 0.0)) ** 2).mean()
