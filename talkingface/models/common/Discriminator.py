"""Patch discriminator shared by the DH_live and mini trainers (docs/REFERENCE.md §2.4).

Layout and parameter names follow the original ``Discriminator(num_channels, block_expansion,
num_blocks, max_features)``: ``down_blocks.i.conv`` (4x4, no padding) then a 1x1 ``conv`` to one
logit channel. DH_live uses (3, 64, 4, 256): 2,628,737 parameters, 256² -> 26x26 patch logits;
mini uses (3, 64, 3, 256): 1,579,905 parameters. Trained with the LSGAN loss (:func:`lsgan_loss`).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class DownBlockD(nn.Module):
    """conv k4 (no padding) -> LeakyReLU 0.2 -> optional 2x2 average pool."""

    def __init__(self, in_features: int, out_features: int, pool: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=4)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv(x), 0.2)
        return F.avg_pool2d(out, (2, 2)) if self.pool else out


class Discriminator(nn.Module):
    """x: BxCxHxW in [0, 1] -> (list of per-block feature maps, logits Bx1xhxw)."""

    def __init__(self, num_channels: int = 3, block_expansion: int = 64, num_blocks: int = 4,
                 max_features: int = 512):
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            in_ch = num_channels if i == 0 else min(max_features, block_expansion * (2 ** i))
            out_ch = min(max_features, block_expansion * (2 ** (i + 1)))
            blocks.append(DownBlockD(in_ch, out_ch, pool=i != num_blocks - 1))
        self.down_blocks = nn.ModuleList(blocks)
        self.conv = nn.Conv2d(self.down_blocks[-1].conv.out_channels, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        features = []
        out = x
        for block in self.down_blocks:
            out = block(out)
            features.append(out)
        return features, self.conv(out)


def lsgan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean((logits - 1)^2) for ``real`` targets, mean(logits^2) otherwise."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.mse_loss(logits, target)
