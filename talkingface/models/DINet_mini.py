"""DINet_mini: the DH_live_mini mouth renderer (about 50 k parameters, about 32 M MACs per frame).

Two modules, as in the original (docs/REFERENCE.md §2.2, docs/CHECKPOINTS.md §4):

- :class:`DINet_mini` maps a 72x72 mouth patch whose lips/teeth were replaced by label colours
  (the *source*) plus three 4-channel references (the *ref*, 12 channels) to a photo-real 72x72
  mouth. Its parameter names and shapes equal the original's ``epoch_40.pth`` ``net_g`` layout
  (115 keys, 50,307 parameters), so those files load with ``strict=True``.
- :class:`DINet_mini_pipeline` is the inference glue: it warps the 128x128 face crop with the
  OpenGL warp field, swaps lips/teeth for their label colours, runs the network on the central
  72x72 window and feathers the result back in.

The building blocks and AdaAT are DINet's (:mod:`talkingface.models.DINet`): unlike the original
mini model, the AdaAT warp works for any batch size on CPU and GPU alike, while its sampling
convention (grid built with the ``align_corners=True`` formula, sampled with ``align_corners=False``)
is kept exactly, because the original's weights were trained with it.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkingface.errors import UserInputError
from talkingface.models.DINet import AdaAT, DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, fold_batchnorm
from talkingface.util.files import reading

INPUT_WIDTH = 72
"""Width of the mouth patch the network sees (pixels of the 128 crop)."""
INPUT_HEIGHT = 72
"""Height of the mouth patch."""
MODEL_SIZE = 128
"""Side of the face crop the pipeline works on."""
FEATURE_DIM = 20
"""Channels of the 18x18 source/reference feature maps (``f_dim``)."""
PAD_X = (MODEL_SIZE - INPUT_WIDTH) // 2
PAD_Y = (MODEL_SIZE - INPUT_HEIGHT) // 2


class DINet_mini(nn.Module):
    """Mouth renderer: (ref 12x72x72, source 3x72x72) -> mouth 3x72x72.

    Inputs are float tensors in [0, 1], RGB:
      - source: Bx3x72x72, the mouth patch with upper lip = (1, 0, 0), lower lip = (0.5, 0, 0),
        upper teeth = (0, 1, 0), lower teeth = (0, 0, 1), mouth cavity = (0, 0, 0), skin as is;
      - ref: Bx12x72x72 (or 1x12x72x72 broadcast), three references of 4 channels (RGB + lip map).
    Output: Bx3x72x72 in [0, 1] (sigmoid).
    """

    def __init__(self, source_channel: int = 3, ref_channel: int = 12):
        super().__init__()
        f = FEATURE_DIM
        self.source_in_conv = nn.Sequential(
            SameBlock2d(source_channel, 12), DownBlock2d(12, 12), DownBlock2d(12, f))
        self.ref_in_conv = nn.Sequential(
            SameBlock2d(ref_channel, 16), DownBlock2d(16, 16), SameBlock2d(16, 16), DownBlock2d(16, f))
        self.trans_conv = nn.Sequential(DownBlock2d(2 * f, f), DownBlock2d(f, f))
        self.global_avg = nn.AdaptiveAvgPool2d(1)
        self.appearance_conv = nn.Sequential(ResBlock2d(f, f))
        self.adaAT = AdaAT(f, f)
        self.out_conv = nn.Sequential(
            SameBlock2d(2 * f, f), UpBlock2d(f, f), SameBlock2d(f, 16), UpBlock2d(16, 16),
            nn.Conv2d(16, 3, 3, padding=1))
        self.ref_in_feature: Optional[torch.Tensor] = None

    def ref_input(self, ref_img: torch.Tensor) -> torch.Tensor:
        """Encode the references once (ref_img: Bx12x72x72 in [0,1]); caches and returns Bx20x18x18."""
        self.ref_in_feature = self.ref_in_conv(ref_img)
        return self.ref_in_feature

    def decode(self, driving_img: torch.Tensor, ref_feature: torch.Tensor) -> torch.Tensor:
        """driving_img: Bx3x72x72 in [0,1]; ref_feature: Bx20x18x18 or 1x20x18x18. Returns Bx3x72x72."""
        source_feature = self.source_in_conv(driving_img)
        b = source_feature.shape[0]
        ref_feature = ref_feature.expand(b, -1, -1, -1)  # unconditional: traced graphs keep any batch
        para = self.global_avg(self.trans_conv(torch.cat([source_feature, ref_feature], 1))).flatten(1)
        warped = self.appearance_conv(self.adaAT(ref_feature, para))
        return torch.sigmoid(self.out_conv(torch.cat([source_feature, warped], 1)))

    def interface(self, driving_img: torch.Tensor) -> torch.Tensor:
        """Per-frame call with the cached reference feature (set by :meth:`ref_input` or assigned)."""
        if self.ref_in_feature is None:
            raise RuntimeError("call ref_input(ref) or set ref_in_feature before interface()")
        return self.decode(driving_img, self.ref_in_feature)

    def forward(self, ref_img: torch.Tensor, driving_img: torch.Tensor) -> torch.Tensor:
        """Training call, references first as in the original: (Bx12x72x72, Bx3x72x72) -> Bx3x72x72."""
        return self.decode(driving_img, self.ref_in_conv(ref_img))

    def fused(self) -> "DINet_mini":
        """An inference copy with every conv -> BatchNorm pair folded into the conv (eval statistics).

        Same outputs in eval mode (to float rounding), about 10 % less CPU time; its state dict no
        longer has the ``norm`` entries, so keep the original module for saving and loading.
        """
        cached, self.ref_in_feature = self.ref_in_feature, None
        out = fold_batchnorm(self)
        self.ref_in_feature = cached
        out.ref_in_feature = cached
        return out


class DINet_mini_pipeline(nn.Module):
    """Warp + label swap + DINet_mini + feathered paste, on 128x128 RGBA crops.

    Args:
        face_fusion_mask: 128x128 float array in [0, 1]; 0 at the crop border, so the warp
            vanishes there and the pasted crop joins the frame seamlessly.
        mouth_fusion_mask: 72x72 float array in [0, 1]; blends the network output into the
            warped patch (about 1 inside, about 0 at the patch edge).

    The state dict equals DINet_mini's with the prefix ``infer_model.``; the masks and the
    identity grid are non-persistent buffers.

    ``blend``: how the 72x72 network output goes back into the warped crop. "original" (default,
    docs/REFERENCE.md §2.2): everywhere, weighted by the mouth fusion mask. "interior": only inside the
    mouth opening (GL teeth and cavity labels, grown by 2 px and feathered), so skin and lips keep
    the warped source pixels and the network paints only what the warp cannot (teeth, cavity).
    "interior" needs a label-free warp field of the same frame (``gl_warp`` in :meth:`interface`),
    because the label render carries colours, not displacements, on the lips.
    """

    def __init__(self, source_channel: int = 3, ref_channel: int = 12,
                 face_fusion_mask: Optional[np.ndarray] = None, mouth_fusion_mask: Optional[np.ndarray] = None,
                 blend: str = "original"):
        super().__init__()
        if blend not in ("original", "interior"):
            raise ValueError(f"blend must be 'original' or 'interior', not {blend!r}")
        self.blend = blend
        self.infer_model = DINet_mini(source_channel, ref_channel)
        theta = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        grid = F.affine_grid(theta, [1, 4, MODEL_SIZE, MODEL_SIZE], align_corners=False)
        self.register_buffer("grid_tensor", grid, persistent=False)
        face = np.ones((MODEL_SIZE, MODEL_SIZE), np.float32) if face_fusion_mask is None else face_fusion_mask
        mouth = np.ones((INPUT_HEIGHT, INPUT_WIDTH), np.float32) if mouth_fusion_mask is None else mouth_fusion_mask
        self.register_buffer("face_fusion_tensor", _mask_tensor(face, (MODEL_SIZE, MODEL_SIZE)), persistent=False)
        self.register_buffer("mouth_fusion_tensor", _mask_tensor(mouth, (INPUT_HEIGHT, INPUT_WIDTH)),
                             persistent=False)

    def ref_input(self, ref_tensor: torch.Tensor) -> torch.Tensor:
        """ref_tensor: 1x12x72x72 in [0, 1]. Returns (and caches) the 1x20x18x18 reference feature."""
        return self.infer_model.ref_input(ref_tensor)

    def warp(self, source_tensor: torch.Tensor, gl_tensor: torch.Tensor) -> torch.Tensor:
        """Backward-warp the crop by the GL field: Bx4x128x128 RGBA, Bx4x128x128 RGBA -> Bx4x128x128.

        GL red/green hold the NDC displacement d = 2*RG - 1; pixel p takes source(p - d).
        """
        deformation = (gl_tensor[:, :2] * 2.0 - 1.0) * self.face_fusion_tensor
        grid = self.grid_tensor - deformation.permute(0, 2, 3, 1)
        return F.grid_sample(source_tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def mouth_label_mask(gl_tensor: torch.Tensor) -> torch.Tensor:
        """1 where GL blue is 0 or 1 (lips, teeth, cavity), 0 where it is 0.5 (skin): Bx1xHxW."""
        return 10.0 * F.relu((gl_tensor[:, 2:3] * 2.0 - 1.0).abs() - 0.9)

    def interior_weight(self, gl_window: torch.Tensor) -> torch.Tensor:
        """Bx1xhxw blend weight of the mouth opening: label pixels that are not lips (teeth, cavity:
        red < 0.25), grown by 2 px and feathered over 3 px."""
        inside = self.mouth_label_mask(gl_window) * (gl_window[:, :1] < 0.25).to(gl_window.dtype)
        grown = F.max_pool2d(inside, 5, stride=1, padding=2)
        return F.avg_pool2d(grown, 3, stride=1, padding=1)

    def network_input(self, warped: torch.Tensor, gl_tensor: torch.Tensor) -> torch.Tensor:
        """The 72x72 network input: warped RGB with lips/teeth replaced by label colours (Bx3x72x72)."""
        win = (slice(None), slice(None), slice(PAD_Y, PAD_Y + INPUT_HEIGHT), slice(PAD_X, PAD_X + INPUT_WIDTH))
        gl = gl_tensor[win]
        mask = self.mouth_label_mask(gl)
        return warped[win][:, :3] * (1.0 - mask) + gl[:, :3] * mask

    def interface(self, source_tensor: torch.Tensor, gl_tensor: torch.Tensor, use_network: bool = True,
                  gl_warp: Optional[torch.Tensor] = None, ref_feature: Optional[torch.Tensor] = None
                  ) -> torch.Tensor:
        """source_tensor, gl_tensor: Bx4x128x128 RGBA in [0, 1]. Returns Bx4x128x128 RGBA in [0, 1].

        With ``use_network=False`` the result is the warp-only output (the evaluation baseline).
        ``gl_warp``: optional Bx4x128x128 render of the same frame without mouth labels; when given,
        the source is warped with it (valid displacements on the lips too). ``ref_feature``: a
        1x20x18x18 reference feature to use instead of the cached one (an explicit graph input
        for ONNX export).
        """
        if self.blend == "interior" and gl_warp is None and use_network:
            raise ValueError("the interior blend needs gl_warp, a render without mouth labels")
        warped = self.warp(source_tensor, gl_tensor if gl_warp is None else gl_warp)
        out = warped.clone()
        out[:, 3:] = source_tensor[:, 3:]
        if not use_network:
            return out
        driving = self.network_input(warped, gl_tensor)
        mouth = (self.infer_model.interface(driving) if ref_feature is None
                 else self.infer_model.decode(driving, ref_feature))
        rows = slice(PAD_Y, PAD_Y + INPUT_HEIGHT)
        cols = slice(PAD_X, PAD_X + INPUT_WIDTH)
        blend = self.mouth_fusion_tensor
        if self.blend == "interior":
            blend = blend * self.interior_weight(gl_tensor[:, :, rows, cols])
        out[:, :3, rows, cols] = mouth * blend + warped[:, :3, rows, cols] * (1.0 - blend)
        return out

    def forward(self, source_tensor: torch.Tensor, gl_tensor: torch.Tensor, ref_tensor: torch.Tensor
                ) -> torch.Tensor:
        """Encode ``ref_tensor`` (1x12x72x72) then run :meth:`interface`."""
        self.ref_input(ref_tensor)
        return self.interface(source_tensor, gl_tensor)


def _mask_tensor(mask: np.ndarray, size: Tuple[int, int]) -> torch.Tensor:
    """HxW (or HxWxC: channel 0 is used) mask, uint8 0..255 or float 0..1, -> 1x1xHxW float in [0,1]."""
    arr = np.asarray(mask)
    if arr.ndim == 3:
        arr = arr[..., 0]
    arr = arr.astype(np.float32)
    if arr.max(initial=0.0) > 1.0:
        arr = arr / 255.0
    if arr.shape != size:
        arr = cv2.resize(arr, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(np.ascontiguousarray(arr)).view(1, 1, *size)


def load_dinet_mini(path, map_location="cpu") -> Tuple["DINet_mini", Dict[str, torch.Tensor]]:
    """A DINet_mini(3, 12) with the weights of ``path`` (strict; any layout of
    :func:`load_dinet_mini_state`) and that state dict; a clear error for a file of another model."""
    state = load_dinet_mini_state(path, map_location=map_location)
    net = DINet_mini(3, 12).to(map_location)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"{path} does not hold DINet_mini(3, 12) weights: {str(exc).splitlines()[0]}") from exc
    return net, state


def load_dinet_mini_state(path, map_location="cpu") -> Dict[str, torch.Tensor]:
    """Read DINet_mini weights from any of the layouts in use.

    Accepts the original's training dict ``{"state_dict": {"net_g": ...}}`` (``epoch_40.pth``),
    a plain DINet_mini state dict, or a pipeline state dict (``infer_model.`` prefix). Returns a
    plain DINet_mini state dict (no prefix). Tensors only: loaded with ``weights_only=True``.
    """
    with reading(path, "DINet_mini checkpoint"):
        ckpt = torch.load(str(path), map_location=map_location, weights_only=True)
    if isinstance(ckpt, dict) and "state_dict" in ckpt and isinstance(ckpt["state_dict"], dict):
        ckpt = ckpt["state_dict"].get("net_g", ckpt["state_dict"])
    if not isinstance(ckpt, dict):
        raise UserInputError(f"{path}: not a DINet_mini checkpoint")
    prefix = "infer_model."
    if any(k.startswith(prefix) for k in ckpt):
        ckpt = {k[len(prefix):]: v for k, v in ckpt.items() if k.startswith(prefix)}
    return ckpt
