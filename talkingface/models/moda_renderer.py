"""MODA's per-person renderer: a U-Net with temporal position encoding (TPE) and a reference image.

Input (B, 19, R, R) in [-1, 1] (channels: condition image 3 RGB, reference image 3 RGB, TPE 13; the
TPE block is dropped with ``tpe=False``) -> output (B, 3, R, R) RGB in [-1, 1] (tanh).

Generator: ``n_downs`` levels; level k (1 = outermost) has ``min(ngf * 2^(k-1), ngf * max_mult)``
channels. Down path of a level: 3x3 stride-2 conv (no bias), BatchNorm (not at the outermost and
innermost levels), ReLU, one residual block (3x3-BN-ReLU-3x3-BN + skip, ReLU). Up path: the inner
result concatenated with the level's own down output (the innermost has no inner result), nearest
x2 upsampling, 3x3 conv to the outer level's channels, BN, ReLU, one residual block; the outermost
up path is a 3x3 conv to 3 channels and tanh. At R 512, 8 levels, ngf 64 this is the paper's
76,207,296-parameter generator; the CPU default is R 256, 7 levels, ngf 16 (3.7 M).

Discriminator: multi-scale PatchGAN (``d_scales`` scales, 3x3 average pooling stride 2 between
them) on concat(generator input, image); each scale returns its intermediate features for the
feature-matching loss.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch
from torch import nn

from talkingface.config.moda import RendererConfig

TPE_FREQS = 6


def temporal_encoding(t: float, size: int) -> torch.Tensor:
    """TPE gamma(t) = [t, sin(2^k t), cos(2^k t) for k = 0..5] as a constant (13, size, size) map.

    This project uses t = frame index / 1000 in training and inference alike (the code trains with
    1 + i/1000 and tests with i/1000)."""
    vals = [t]
    for k in range(TPE_FREQS):
        vals += [np.sin((2.0 ** k) * t), np.cos((2.0 ** k) * t)]
    return torch.tensor(vals, dtype=torch.float32)[:, None, None].expand(len(vals), size, size).clone()


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class _Level(nn.Module):
    """One U-Net level: down (outer_in -> ch), inner level (optional), up (2 ch or ch -> outer_out)."""

    def __init__(self, outer_in: int, ch: int, outer_out: int, inner: Optional["_Level"],
                 outermost: bool):
        super().__init__()
        innermost = inner is None
        down = [nn.Conv2d(outer_in, ch, 3, 2, 1, bias=False)]
        if not (outermost or innermost):
            down.append(nn.BatchNorm2d(ch))
        down += [nn.ReLU(True), ResBlock(ch)]
        self.down = nn.Sequential(*down)
        self.inner = inner
        up_in = ch if innermost else 2 * ch
        if outermost:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                    nn.Conv2d(up_in, outer_out, 3, 1, 1, bias=False), nn.Tanh())
        else:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                    nn.Conv2d(up_in, outer_out, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(outer_out), nn.ReLU(True), ResBlock(outer_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.down(x)
        if self.inner is not None:
            d = torch.cat([d, self.inner(d)], 1)
        return self.up(d)


class TPERenderer(nn.Module):
    """forward(x (B, in_channels, R, R) in [-1, 1]) -> (B, 3, R, R) RGB in [-1, 1]."""

    def __init__(self, cfg: RendererConfig = RendererConfig()):
        super().__init__()
        if cfg.resolution % (2 ** cfg.n_downs):
            raise ValueError(f"resolution {cfg.resolution} is not divisible by 2^{cfg.n_downs}")
        self.cfg = cfg
        chans = [min(cfg.ngf * 2 ** k, cfg.ngf * cfg.max_mult) for k in range(cfg.n_downs)]
        level = None
        for k in range(cfg.n_downs - 1, -1, -1):
            outermost = k == 0
            outer_in = cfg.in_channels if outermost else chans[k - 1]
            outer_out = 3 if outermost else chans[k - 1]
            level = _Level(outer_in, chans[k], outer_out, level, outermost)
        self.net = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def make_input(self, condition: torch.Tensor, reference: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """condition, reference (B, 3, R, R) in [-1, 1]; t (B,) TPE times -> generator input."""
        parts = [condition, reference]
        if self.cfg.tpe:
            r = condition.shape[-1]
            parts.append(torch.stack([temporal_encoding(float(v), r) for v in t]).to(condition))
        return torch.cat(parts, 1)


class PatchGAN(nn.Module):
    """pix2pixHD-style PatchGAN with ``n_layers`` stride-2 convs; returns every layer's output."""

    def __init__(self, in_ch: int, ndf: int, n_layers: int):
        super().__init__()
        blocks: List[nn.Module] = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        nf = ndf
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            blocks.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 2, 2), nn.BatchNorm2d(nf), nn.LeakyReLU(0.2, True)))
        prev, nf = nf, min(nf * 2, 512)
        blocks.append(nn.Sequential(nn.Conv2d(prev, nf, 4, 1, 2), nn.BatchNorm2d(nf), nn.LeakyReLU(0.2, True)))
        blocks.append(nn.Conv2d(nf, 1, 4, 1, 2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiScalePatchGAN(nn.Module):
    """forward(x (B, C, R, R)) -> per scale (finest first) the list of PatchGAN layer outputs."""

    def __init__(self, in_ch: int, ndf: int = 64, n_layers: int = 4, scales: int = 3):
        super().__init__()
        self.nets = nn.ModuleList(PatchGAN(in_ch, ndf, n_layers) for _ in range(scales))
        self.pool = nn.AvgPool2d(3, 2, 1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> List[List[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = self.pool(x)
            out.append(net(x))
        return out
