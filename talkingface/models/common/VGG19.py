"""VGG19 perceptual loss shared by the DH_live and mini trainers (docs/REFERENCE.md §2.5).

The original builds ``torchvision.models.vgg19(pretrained=True).features[0:30]`` and downloads the
ImageNet weights at run time. torchvision is not a dependency here, so :class:`Vgg19` builds the same
layers by hand with the same module indices (state-dict keys ``slice1.0.weight`` ... ``slice5.28.bias``
plus ``mean``/``std``: 28 keys, 12,944,966 parameters) and loads ImageNet weights from a local file:

- the ``weights`` argument (trainers expose it as ``--vgg_weights``), else
- ``$TALKINGFACE_VGG19_WEIGHTS``, else
- torchvision's download cache ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` if present.

The file may be torchvision's ``vgg19`` state dict (``features.N.*`` keys) or this wrapper's own.

:class:`PerceptualLoss` is what trainers use. With VGG weights it is the original's term: the mean
over the 5 slices (relu1_1 ... relu5_1) and 2 scales (full; half = 2x2 average of both images) of L1 between feature maps. Without weights it falls back, announced once
in the log, to a pixel-space stand-in with the same two-scale structure plus a quarter scale:
the mean over the 3 scales of ``L1 + (1 - SSIM)`` (SSIM with an 11x11 Gaussian window, sigma 1.5).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.errors import UserInputError
from talkingface.util.files import reading

log = logging.getLogger(__name__)

VGG19_ENV = "TALKINGFACE_VGG19_WEIGHTS"
TORCHVISION_VGG19_FILE = "vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision vgg19().features layout up to relu5_1: conv output channels or "M" for max-pool.
_FEATURE_LAYOUT: Sequence[Union[int, str]] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# features[a:b] index ranges of the five slices (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1).
_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))

_announced_fallback = False


def _build_features() -> List[nn.Module]:
    """features[0:30] of torchvision's VGG19 as a flat list (conv, ReLU, max-pool), same indices."""
    layers: List[nn.Module] = []
    in_ch = 3
    for item in _FEATURE_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=False))
            in_ch = int(item)
    return layers[:30]


class Vgg19(nn.Module):
    """Frozen VGG19 feature extractor. x: Bx3xHxW **RGB** in [0, 1] -> 5 maps
    (Bx64xHxW, Bx128xH/2, Bx256xH/4, Bx512xH/8, Bx512xH/16: relu1_1 ... relu5_1)."""

    def __init__(self, weights: Optional[Union[str, os.PathLike]] = None):
        super().__init__()
        layers = _build_features()
        for n, (start, stop) in enumerate(_SLICES, start=1):
            block = nn.Sequential()
            for idx in range(start, stop):
                block.add_module(str(idx), layers[idx])
            setattr(self, f"slice{n}", block)
        self.mean = nn.Parameter(torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), requires_grad=False)
        self.std = nn.Parameter(torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), requires_grad=False)
        if weights is not None:
            self.load_imagenet(weights)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def load_imagenet(self, path: Union[str, os.PathLike]) -> None:
        """Load torchvision-layout (``features.N.*``) or wrapper-layout weights, strictly."""
        with reading(path, "VGG19 weights"):
            state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and "state_dict" in state:
            state = state["state_dict"]
        if any(k.startswith("features.") for k in state):
            mapped = {}
            for n, (start, stop) in enumerate(_SLICES, start=1):
                for idx in range(start, stop):
                    for kind in ("weight", "bias"):
                        key = f"features.{idx}.{kind}"
                        if key in state:
                            mapped[f"slice{n}.{idx}.{kind}"] = state[key]
            mapped["mean"] = self.mean.detach().clone()
            mapped["std"] = self.std.detach().clone()
            state = mapped
        self.load_state_dict(state, strict=True)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        h = (x - self.mean) / self.std
        outs = []
        for n in range(1, 6):
            h = getattr(self, f"slice{n}")(h)
            outs.append(h)
        return outs


def find_vgg19_weights(explicit: Optional[Union[str, os.PathLike]] = None) -> Optional[Path]:
    """The ImageNet VGG19 weight file to use, or None (see module doc for the search order).

    An explicitly given path (argument or environment variable) that does not exist is an error.
    """
    for candidate, source in ((explicit, "--vgg_weights"), (os.environ.get(VGG19_ENV), f"${VGG19_ENV}")):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise UserInputError(f"VGG19 weights not found: {path} (from {source})")
            return path
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    cached = torch_home / "hub" / "checkpoints" / TORCHVISION_VGG19_FILE
    return cached if cached.is_file() else None


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of two BxCxHxW images in [0, 1] (Gaussian window, valid region).

    Images smaller than the window use a window of their smaller side (odd).
    """
    size = min(window_size, x.shape[-1], x.shape[-2])
    size = size if size % 2 == 1 else size - 1
    channels = x.shape[1]
    window = _gaussian_window(size, sigma).to(x.device, x.dtype).expand(channels, 1, size, size)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)
    return (num / den).mean()


def half_scale_pair(fake: torch.Tensor, real: torch.Tensor):
    """Both images at half resolution by the same 2x2 average (= bilinear 0.5).

    The original pooled the fake 3x3/2 but interpolated the real, so even a perfect output kept a
    non-zero loss; here both go through the same filter.
    """
    return F.avg_pool2d(fake, kernel_size=2), F.avg_pool2d(real, kernel_size=2)


class PerceptualLoss(nn.Module):
    """Two-scale perceptual loss (unweighted; trainers multiply by ``lamb_perception``).

    fake, real: Bx3xHxW in [0, 1], channel order given by ``channel_order`` ("rgb" or "bgr"; BGR
    inputs are flipped before VGG, fixing the original's BGR-into-VGG mismatch, docs/REFERENCE.md §9.17).
    ``mode`` is "vgg19" when ImageNet weights were found, else "l1_ssim" (see module doc).
    """

    def __init__(self, weights: Optional[Union[str, os.PathLike]] = None, channel_order: str = "rgb"):
        super().__init__()
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', not {channel_order!r}")
        self.channel_order = channel_order
        path = find_vgg19_weights(weights)
        self.vgg: Optional[Vgg19] = Vgg19(path) if path is not None else None
        self.mode = "vgg19" if self.vgg is not None else "l1_ssim"
        if self.vgg is not None:
            log.info("perceptual loss: VGG19 ImageNet features from %s", path)
        else:
            _announce_fallback()

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        if self.vgg is not None:
            self.vgg.eval()
        return self

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        fake_half, real_half = half_scale_pair(fake, real)
        if self.vgg is None:
            fake_quarter, real_quarter = half_scale_pair(fake_half, real_half)
            pairs = ((fake, real), (fake_half, real_half), (fake_quarter, real_quarter))
            terms = [F.l1_loss(f, r) + (1.0 - ssim(f, r)) for f, r in pairs]
            return torch.stack(terms).mean()
        if self.channel_order == "bgr":
            fake, real, fake_half, real_half = (t.flip(1) for t in (fake, real, fake_half, real_half))
        total = fake.new_zeros(())
        count = 0
        for f_img, r_img in ((fake, real), (fake_half, real_half)):
            with torch.no_grad():
                r_feats = self.vgg(r_img)
            for f_feat, r_feat in zip(self.vgg(f_img), r_feats):
                total = total + F.l1_loss(f_feat, r_feat)
                count += 1
        return total / count


def _announce_fallback() -> None:
    global _announced_fallback
    if not _announced_fallback:
        log.warning("no VGG19 ImageNet weights (give --vgg_weights or $%s): perceptual loss falls back "
                    "to multi-scale L1 + (1 - SSIM) in pixel space", VGG19_ENV)
        _announced_fallback = True
