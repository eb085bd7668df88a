"""DINet_five_Ref: the DH_live 256x256 render network (docs/REFERENCE.md §2.1).

Five reference frames (each 3 image channels + a 3-channel line map) are encoded once per character; every output frame then runs the per-frame path: encode the masked source face and
its mouth prompt, predict a 128-d code, use it to warp the reference features channel by channel
(AdaAT), and decode the merged features to a 256x256 image.

Parameter names and shapes follow the original's ``DINet_five_Ref(6, 30)`` exactly (206 state-dict
keys, 9,413,411 parameters), so its published ``render.pth`` loads strictly with
:func:`load_dinet_state_dict`.

Channel order: the original was trained on **BGR** tensors (its dataset and its inference both feed
OpenCV frames), so every tensor here is BGR in [0, 1]; see ``talkingface.render_model``.
"""
from __future__ import annotations

import copy
import logging
import math
import os
from functools import lru_cache
from typing import Any, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.errors import UserInputError

log = logging.getLogger(__name__)

# The original multiplies the tanh output by this literal, not by math.pi; kept for weight parity.
ADAAT_ANGLE_SCALE = 3.14159


class SameBlock2d(nn.Module):
    """conv(k, pad k//2) -> BatchNorm -> ReLU; spatial size kept. x: BxCinxHxW -> BxCoutxHxW."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """conv 3x3 stride 2 pad 1 -> BatchNorm -> ReLU. x: BxCinxHxW -> BxCoutx(H/2)x(W/2)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, stride=2)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class UpBlock2d(nn.Module):
    """nearest x2 upsampling -> conv 3x3 -> BatchNorm -> ReLU. x: BxCinxHxW -> BxCoutx2Hx2W."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2)
        return F.relu(self.norm(self.conv(x)))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: BN -> ReLU -> conv -> BN -> ReLU -> conv, plus the input
    (through a 1x1 conv when the channel count changes). x: BxCinxHxW -> BxCoutxHxW."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(out_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(out_features, affine=True)
        self.channel_conv = nn.Conv2d(in_features, out_features, 1) if in_features != out_features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        skip = x if self.channel_conv is None else self.channel_conv(x)
        return out + skip


@lru_cache(maxsize=16)
def coordinate_grid_3d(depth: int, height: int, width: int, device: torch.device, dtype: torch.dtype
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalised (x, y) and z coordinates of every voxel of a DxHxW volume (constant per shape,
    so cached: AdaAT calls this on every frame). The returned tensors are shared: do not modify.

    Uses the align_corners=True convention (index i -> 2i/(n-1) - 1) that the original builds,
    although its ``grid_sample`` call runs with align_corners=False (docs/REFERENCE.md §2.1 quirk).
    Returns xy: DxHxWx2 (x first), z: DxHxW.
    """
    def axis(n: int) -> torch.Tensor:
        return 2.0 * (torch.arange(n, device=device, dtype=dtype) / (n - 1)) - 1.0

    x, y, z = axis(width), axis(height), axis(depth)
    xx = x.view(1, 1, width).expand(depth, height, width)
    yy = y.view(1, height, 1).expand(depth, height, width)
    zz = z.view(depth, 1, 1).expand(depth, height, width)
    return torch.stack([xx, yy], dim=-1), zz


@lru_cache(maxsize=16)
def depth_mix_matrix(depth: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """DxD weights of AdaAT's depth interpolation: row c mixes the input channels that output
    channel c samples (shared, do not modify).

    Channel c's depth coordinate is built as 2c/(D-1) - 1 and sampled with align_corners=False, so
    its voxel index is c*D/(D-1) - 0.5: a linear blend of channels floor(.) and floor(.)+1, with
    channels outside 0..D-1 reading zeros.
    """
    mix = [[0.0] * depth for _ in range(depth)]  # plain floats: a single constant when traced for export
    for c in range(depth):
        z = 2.0 * (c / (depth - 1)) - 1.0
        iz = ((z + 1.0) * depth - 1.0) / 2.0
        lo = math.floor(iz)
        frac = iz - lo
        for k, w in ((lo, 1.0 - frac), (lo + 1, frac)):
            if 0 <= k < depth:
                mix[c][k] += w
    return torch.tensor(mix, dtype=dtype, device=device)


class AdaAT(nn.Module):
    """Adaptive affine transformation: warps each feature channel by its own rotation, scale and
    translation predicted from a parameter code (DINet, docs/REFERENCE.md §2.1).

    feature_map: BxCxHxW; para_code: BxP. Returns BxCxHxW.

    Per channel c: scale s = 2*sigmoid(.), angle a = 3.14159*tanh(.), (tx, ty) = tanh(.), and the
    sampling position of output pixel (x, y) is s*R(a)@(x, y) + (tx, ty) with z = the channel's own
    coordinate. Sampling is a trilinear 3-D ``grid_sample`` with the channel axis as depth, default
    align_corners=False while the grid is built align_corners=True: neighbouring channels blend and
    the first/last channel mix 50 % with zero padding. The published weights were trained with this,
    so it is reproduced on purpose.

    ``planar`` (default False) computes the same result with 2-D sampling: each output channel's
    depth coordinate is a constant, so the trilinear sample is a fixed mix of two neighbouring input
    channels (:func:`depth_mix_matrix`) followed by one bilinear 2-D sample per channel over a
    (B*C)x1xHxW batch. Equal to float rounding; it exports to ONNX opset 16+ (the 5-D
    ``grid_sample`` needs the dynamo exporter at opset 20) and runs faster in ONNX Runtime.
    """

    def __init__(self, para_ch: int, feature_ch: int):
        super().__init__()
        self.planar = False
        self.para_ch = para_ch
        self.feature_ch = feature_ch
        self.commn_linear = nn.Sequential(nn.Linear(para_ch, para_ch), nn.ReLU())
        self.scale = nn.Sequential(nn.Linear(para_ch, feature_ch), nn.Sigmoid())
        self.rotation = nn.Sequential(nn.Linear(para_ch, feature_ch), nn.Tanh())
        self.translation = nn.Sequential(nn.Linear(para_ch, 2 * feature_ch), nn.Tanh())

    def forward(self, feature_map: torch.Tensor, para_code: torch.Tensor) -> torch.Tensor:
        batch, depth, height, width = feature_map.shape
        code = self.commn_linear(para_code)
        scale = (self.scale(code) * 2).view(batch, depth, 1, 1)
        angle = (self.rotation(code) * ADAAT_ANGLE_SCALE).view(batch, depth, 1, 1)
        shift = self.translation(code).view(batch, depth, 1, 1, 2)
        grid_xy, grid_z = coordinate_grid_3d(depth, height, width, feature_map.device, feature_map.dtype)
        x, y = grid_xy[..., 0], grid_xy[..., 1]
        cos, sin = torch.cos(angle), torch.sin(angle)
        # Rotation matrix [[cos, -sin], [sin, cos]] applied to (x, y), then scale, then shift.
        new_x = (cos * x - sin * y) * scale + shift[..., 0]
        new_y = (sin * x + cos * y) * scale + shift[..., 1]
        if self.planar:
            mix = depth_mix_matrix(depth, feature_map.device, feature_map.dtype)
            mixed = torch.matmul(mix, feature_map.reshape(batch, depth, height * width))
            grid = torch.stack([new_x, new_y], dim=-1).reshape(batch * depth, height, width, 2)
            warped = F.grid_sample(mixed.reshape(batch * depth, 1, height, width), grid, mode="bilinear",
                                   padding_mode="zeros", align_corners=False)
            return warped.reshape(batch, depth, height, width)
        new_z = grid_z.unsqueeze(0).expand(batch, depth, height, width)
        grid = torch.stack([new_x, new_y, new_z], dim=-1)  # B x D x H x W x 3, (x, y, z) order
        warped = F.grid_sample(feature_map.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        return warped.squeeze(1)


class DINet_five_Ref(nn.Module):
    """DH_live render network (docs/REFERENCE.md §2.1).

    Inputs (all float in [0, 1], BGR order as the original was trained):
      - source_img: Bx3x256x256, the face crop with the lower face filled black;
      - source_prompt: Bx3x256x256, the grey mouth prompt plus nose/eye line map;
      - ref_img: Bx(5*6)x256x256, five references, each 3 image channels + 3 line-map channels.
    Output: Bx3x256x256 after a sigmoid.

    ``ref_input`` caches the reference features (once per character), ``interface`` is the per-frame
    path, ``forward`` runs both. A cached reference batch of 1 is broadcast to any source batch.
    """

    def __init__(self, source_channel: int = 6, ref_channel: int = 30):
        super().__init__()
        self.source_channel = source_channel
        self.ref_channel = ref_channel
        self.source_in_conv = nn.Sequential(
            SameBlock2d(source_channel, 32, kernel_size=7, padding=3),
            DownBlock2d(32, 64),
            DownBlock2d(64, 128),
        )
        self.ref_in_conv = nn.Sequential(
            SameBlock2d(ref_channel, 64, kernel_size=7, padding=3),
            DownBlock2d(64, 128),
            DownBlock2d(128, 256),
        )
        self.trans_conv = nn.Sequential(
            SameBlock2d(384, 128, kernel_size=3, padding=1),
            SameBlock2d(128, 128, kernel_size=7, padding=3),
            DownBlock2d(128, 128),  # 32x32
            SameBlock2d(128, 128, kernel_size=7, padding=3),
            DownBlock2d(128, 128),  # 16x16
            SameBlock2d(128, 128, kernel_size=3, padding=1),
            DownBlock2d(128, 128),  # 8x8
            SameBlock2d(128, 128, kernel_size=3, padding=1),
            DownBlock2d(128, 128),  # 4x4
        )
        self.appearance_conv_list = nn.ModuleList([
            nn.Sequential(ResBlock2d(256, 256), ResBlock2d(256, 256)),
            nn.Sequential(ResBlock2d(256, 256), ResBlock2d(256, 256)),
        ])
        self.adaAT = AdaAT(128, 256)
        self.out_conv = nn.Sequential(
            SameBlock2d(384, 128, kernel_size=3, padding=1),
            UpBlock2d(128, 128),
            ResBlock2d(128, 128),
            UpBlock2d(128, 128),
            nn.Conv2d(128, 3, kernel_size=3, padding=1),
            nn.Sigmoid(),
        )
        self.global_avg2d = nn.AdaptiveAvgPool2d(1)
        self.ref_in_feature: Optional[torch.Tensor] = None
        self.ref_trans_feature0: Optional[torch.Tensor] = None

    def ref_input(self, ref_img: torch.Tensor) -> None:
        """Encode and cache the references. ref_img: Bx30x256x256 in [0, 1].

        Caches ``ref_in_feature`` (Bx256x64x64) and ``ref_trans_feature0`` (the same after the first
        appearance block); they are plain attributes, not part of the state dict.
        """
        self.ref_in_feature = self.ref_in_conv(ref_img)
        self.ref_trans_feature0 = self.appearance_conv_list[0](self.ref_in_feature)

    def interface(self, source_img: torch.Tensor, source_prompt: torch.Tensor) -> torch.Tensor:
        """Per-frame path with cached references. source_img, source_prompt: Bx3x256x256 in [0, 1].

        Returns Bx3x256x256 in [0, 1]. Call :meth:`ref_input` first.
        """
        if self.ref_in_feature is None or self.ref_trans_feature0 is None:
            raise RuntimeError("DINet_five_Ref.interface called before ref_input")
        source = torch.cat([source_img, source_prompt], dim=1)
        source_feature = self.source_in_conv(source)  # B x 128 x 64 x 64
        batch = source_feature.shape[0]
        ref_feature = self._match_batch(self.ref_in_feature, batch)
        ref_trans0 = self._match_batch(self.ref_trans_feature0, batch)
        code = self.trans_conv(torch.cat([source_feature, ref_feature], dim=1))
        code = self.global_avg2d(code).flatten(1)  # B x 128
        ref_trans = self.adaAT(ref_trans0, code)
        ref_trans = self.appearance_conv_list[1](ref_trans)
        return self.out_conv(torch.cat([source_feature, ref_trans], dim=1))

    def forward(self, source_img: torch.Tensor, source_prompt: torch.Tensor, ref_img: torch.Tensor
                ) -> torch.Tensor:
        """Full pass: ``ref_input(ref_img)`` then ``interface(source_img, source_prompt)``."""
        self.ref_input(ref_img)
        return self.interface(source_img, source_prompt)

    @staticmethod
    def _match_batch(feature: torch.Tensor, batch: int) -> torch.Tensor:
        if feature.shape[0] == batch:
            return feature
        if feature.shape[0] == 1:
            return feature.expand(batch, -1, -1, -1)
        raise ValueError(f"reference batch {feature.shape[0]} does not match source batch {batch}")


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every conv -> BatchNorm block (SameBlock2d,
    DownBlock2d, UpBlock2d) folded into its convolution: the same outputs to float rounding, less
    CPU time. Its state dict no longer has those ``norm`` entries (keep the original for saving)."""
    out = copy.deepcopy(model).eval()
    for block in out.modules():
        if isinstance(block, (SameBlock2d, DownBlock2d, UpBlock2d)) and isinstance(block.norm, nn.BatchNorm2d):
            conv, bn = block.conv, block.norm
            gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            with torch.no_grad():
                conv.weight.mul_(gain.view(-1, 1, 1, 1))
                conv.bias.copy_((conv.bias - bn.running_mean) * gain + bn.bias)
            block.norm = nn.Identity()
    return out


def extract_generator_state(obj: Any) -> Mapping[str, torch.Tensor]:
    """The DINet state dict inside a loaded checkpoint object.

    Accepts the original's two layouts (docs/CHECKPOINTS.md §2): a plain state dict (``render.pth``)
    or the training checkpoint ``{"state_dict": {"net_g": ..., "net_d": ...}, "optimizer": ...}``.
    A ``module.`` prefix (DataParallel) is stripped.
    """
    state = obj
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
        if "net_g" in state:
            state = state["net_g"]
    if not isinstance(state, Mapping) or not state:
        raise ValueError("checkpoint holds no DINet state dict")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_dinet_state_dict(model: DINet_five_Ref, source: Union[str, os.PathLike, Mapping[str, Any]],
                          map_location: Union[str, torch.device] = "cpu") -> None:
    """Load weights strictly from a path or an already-loaded object (either layout).

    ``map_location`` defaults to CPU so checkpoints saved on a GPU load anywhere.
    """
    obj: Any = source
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise UserInputError(f"render checkpoint not found: {source}")
        try:
            obj = torch.load(source, map_location=map_location, weights_only=True)
        except Exception as exc:
            raise UserInputError(f"cannot read render checkpoint {source}: {exc}") from exc
    try:
        state = extract_generator_state(obj)
        model.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as exc:
        raise UserInputError(f"not a DINet_five_Ref(6, 30) checkpoint: {str(exc).splitlines()[0]}") from exc
