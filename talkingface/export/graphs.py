"""The exportable inference graphs: torch modules whose every input and output is a tensor.

Each wrapper fixes what the product path computes per call, with the per-avatar state (reference
features, LSTM state) as explicit inputs so one exported file serves any avatar and any stream.
The I/O contract of each graph (names, shapes, dtypes, value ranges, what stays outside) is in
docs/ONNX.md; :data:`GRAPHS` holds the same names for the exporter and the runtime.

The wrappers run the models' own code (no re-implementation): DINet_mini and DINet_five_Ref with
BatchNorm folded where it follows a convolution, and AdaAT in its ``planar`` form (2-D sampling,
equal to the 5-D original to float rounding), so the graphs need only ONNX opset 17 operators.
"""
from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from talkingface.models.DINet import AdaAT, DINet_five_Ref, fold_batchnorm
from talkingface.models.DINet_mini import DINet_mini, DINet_mini_pipeline


OPSET = 17
"""ONNX opset of every exported graph (AdaAT's planar form needs only 2-D GridSample, opset 16)."""


@dataclass(frozen=True)
class GraphSpec:
    """Names and example shapes of one graph's inputs and outputs (float32 unless ``dtypes`` says).

    ``dynamic``: input name -> {axis: name} for axes that may vary (batch, time).
    """

    inputs: Tuple[Tuple[str, Tuple[int, ...]], ...]
    outputs: Tuple[str, ...]
    dynamic: Tuple[Tuple[str, Tuple[Tuple[int, str], ...]], ...] = ()

    @property
    def input_names(self) -> Sequence[str]:
        return [name for name, _ in self.inputs]

    def dynamic_axes(self) -> Dict[str, Dict[int, str]]:
        return {name: dict(axes) for name, axes in self.dynamic}


GRAPHS: Dict[str, GraphSpec] = {
    "audio_step": GraphSpec(
        inputs=(("fbank", (1, 2, 80)), ("h0", (2, 1, 192)), ("c0", (2, 1, 192))),
        outputs=("coeffs", "h1", "c1")),
    "audio_offline": GraphSpec(
        inputs=(("fbank", (1, 200, 80)),), outputs=("coeffs",),
        dynamic=(("fbank", ((1, "fbank_frames"),)),)),
    "mini_pipeline": GraphSpec(
        inputs=(("source", (1, 4, 128, 128)), ("gl", (1, 4, 128, 128)), ("gl_warp", (1, 4, 128, 128)),
                ("ref_feature", (1, 20, 18, 18))),
        outputs=("out",),
        dynamic=(("source", ((0, "batch"),)), ("gl", ((0, "batch"),)), ("gl_warp", ((0, "batch"),)))),
    "mini_network": GraphSpec(
        inputs=(("driving", (1, 3, 72, 72)), ("ref_feature", (1, 20, 18, 18))), outputs=("mouth",),
        dynamic=(("driving", ((0, "batch"),)),)),
    "mini_ref": GraphSpec(inputs=(("ref", (1, 12, 72, 72)),), outputs=("ref_feature",)),
    "dinet": GraphSpec(
        inputs=(("source_img", (1, 3, 256, 256)), ("source_prompt", (1, 3, 256, 256)),
                ("ref_in_feature", (1, 256, 64, 64)), ("ref_trans_feature0", (1, 256, 64, 64))),
        outputs=("out",),
        dynamic=tuple((n, ((2, f"{k}height"), (3, f"{k}width"))) for n, k in (
            ("source_img", ""), ("source_prompt", ""), ("ref_in_feature", "feature_"),
            ("ref_trans_feature0", "feature_")))),
    "dinet_ref": GraphSpec(inputs=(("ref_img", (1, 30, 256, 256)),),
                           outputs=("ref_in_feature", "ref_trans_feature0"),
                           dynamic=(("ref_img", ((2, "height"), (3, "width"))),)),
}


def inference_copy(model: nn.Module) -> nn.Module:
    """The module as the graphs run it: BatchNorm folded, AdaAT planar, no cached features."""
    out = fold_batchnorm(model)
    for m in out.modules():
        if isinstance(m, AdaAT):
            m.planar = True
    for attr in ("ref_in_feature", "ref_trans_feature0"):
        if hasattr(out, attr):
            setattr(out, attr, None)
    return out


class AudioStepGraph(nn.Module):
    """One streaming step of Audio2Feature: 2 fbank frames (40 ms) and the LSTM state in, one
    coefficient row and the new state out. fbank 1x2x80, h0/c0 2x1x192 -> coeffs 1x6, h1, c1."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = copy.deepcopy(net).float().eval()

    def forward(self, fbank: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
        y, h1, c1 = self.net(fbank, h0, c0)
        return y[:, 0], h1, c1


class AudioOfflineGraph(nn.Module):
    """Audio2Feature over a whole utterance from a zero state: fbank 1x(2T)x80 -> coeffs 1xTx6."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = copy.deepcopy(net).float().eval()

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        cfg = self.net.cfg
        zeros = torch.zeros(cfg.num_layers, fbank.shape[0], cfg.hidden, dtype=fbank.dtype)
        return self.net(fbank, zeros, zeros)[0]


class MiniPipelineGraph(nn.Module):
    """DINet_mini_pipeline.interface with the reference feature as an input (see docs/ONNX.md)."""

    def __init__(self, pipeline: DINet_mini_pipeline):
        super().__init__()
        self.pipeline = copy.deepcopy(pipeline).eval()
        self.pipeline.infer_model = inference_copy(pipeline.infer_model)

    def forward(self, source: torch.Tensor, gl: torch.Tensor, gl_warp: torch.Tensor, ref_feature: torch.Tensor
                ) -> torch.Tensor:
        return self.pipeline.interface(source, gl, gl_warp=gl_warp, ref_feature=ref_feature)


class MiniNetworkGraph(nn.Module):
    """DINet_mini.decode: driving Bx3x72x72 + ref_feature 1x20x18x18 -> mouth Bx3x72x72."""

    def __init__(self, net: DINet_mini):
        super().__init__()
        self.net = inference_copy(net)

    def forward(self, driving: torch.Tensor, ref_feature: torch.Tensor) -> torch.Tensor:
        return self.net.decode(driving, ref_feature)


class MiniRefGraph(nn.Module):
    """DINet_mini's reference encoder: ref 1x12x72x72 -> ref_feature 1x20x18x18."""

    def __init__(self, net: DINet_mini):
        super().__init__()
        self.net = inference_copy(net)

    def forward(self, ref: torch.Tensor) -> torch.Tensor:
        return self.net.ref_in_conv(ref)


class DINetGraph(nn.Module):
    """DINet_five_Ref.interface with the two cached reference features as inputs."""

    def __init__(self, net: DINet_five_Ref):
        super().__init__()
        self.net = inference_copy(net)

    def forward(self, source_img: torch.Tensor, source_prompt: torch.Tensor, ref_in_feature: torch.Tensor,
                ref_trans_feature0: torch.Tensor) -> torch.Tensor:
        self.net.ref_in_feature, self.net.ref_trans_feature0 = ref_in_feature, ref_trans_feature0
        try:
            return self.net.interface(source_img, source_prompt)
        finally:
            self.net.ref_in_feature = self.net.ref_trans_feature0 = None


class DINetRefGraph(nn.Module):
    """DINet_five_Ref.ref_input: ref_img 1x30x256x256 -> (ref_in_feature, ref_trans_feature0)."""

    def __init__(self, net: DINet_five_Ref):
        super().__init__()
        self.net = inference_copy(net)

    def forward(self, ref_img: torch.Tensor):
        feature = self.net.ref_in_conv(ref_img)
        return feature, self.net.appearance_conv_list[0](feature)


def example_inputs(name: str, seed: int = 0, shapes: Optional[Dict[str, Tuple[int, ...]]] = None
                   ) -> Tuple[torch.Tensor, ...]:
    """Deterministic example inputs of graph ``name`` (uniform [0, 1), LSTM state zero, fbank ~ N(0, 4)),
    at the spec's shapes or ``shapes`` overrides."""
    spec = GRAPHS[name]
    gen = torch.Generator().manual_seed(seed)
    out = []
    for inp, shape in spec.inputs:
        shape = (shapes or {}).get(inp, shape)
        if inp == "warped":
            out.append(255.0 * torch.rand(shape, generator=gen))
        elif inp == "gl" and shape[-1] == 4:
            out.append(torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8))
        elif inp in ("h0", "c0"):
            out.append(torch.zeros(shape))
        elif inp == "fbank":
            out.append(2.0 * torch.randn(shape, generator=gen))
        else:
            out.append(torch.rand(shape, generator=gen))
    return tuple(out)


def onnx_bytes(module: nn.Module, name: str, opset: int = OPSET) -> bytes:
    """Serialise graph ``name`` (a :data:`GRAPHS` key) of ``module`` to ONNX bytes (TorchScript exporter;
    the onnx package must be installed)."""
    spec = GRAPHS[name]
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(module.eval(), example_inputs(name), buf, dynamo=False, opset_version=opset,
                          input_names=list(spec.input_names), output_names=list(spec.outputs),
                          dynamic_axes=spec.dynamic_axes() or None, do_constant_folding=True)
    return buf.getvalue()
