"""DINet_five_Ref's fast path: the per-frame network in ONNX Runtime.

:class:`FastDINet` holds a session of :class:`talkingface.export.graphs.DINetGraph` (BatchNorm
folded, planar AdaAT) and the avatar's two reference features as numpy arrays; ``interface`` takes
and returns torch tensors like ``DINet_five_Ref.interface`` so :class:`talkingface.render_model.RenderModel`
can call either. Equal to eager torch to float rounding (tests/test_onnx_export.py).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from talkingface.export import graphs
from talkingface.export.runtime import OnnxGraph, session_for
from talkingface.models.DINet import DINet_five_Ref


class FastDINet:
    """ONNX Runtime session of one DINet_five_Ref's per-frame graph (CPU, ``threads`` intra-op)."""

    def __init__(self, net: DINet_five_Ref, threads: int = 1):
        self.graph: OnnxGraph = session_for(graphs.DINetGraph(net), "dinet", threads)
        self.ref_in_feature: Optional[np.ndarray] = None
        self.ref_trans_feature0: Optional[np.ndarray] = None

    def set_reference(self, net: DINet_five_Ref) -> None:
        """Copy the reference features ``net.ref_input`` cached (1x256xhxw each)."""
        if net.ref_in_feature is None or net.ref_trans_feature0 is None:
            raise RuntimeError("run net.ref_input(refs) before FastDINet.set_reference")
        self.ref_in_feature = np.ascontiguousarray(net.ref_in_feature.detach().cpu().numpy(), np.float32)
        self.ref_trans_feature0 = np.ascontiguousarray(net.ref_trans_feature0.detach().cpu().numpy(), np.float32)

    def interface(self, source_img: torch.Tensor, source_prompt: torch.Tensor) -> torch.Tensor:
        """source_img, source_prompt: 1x3xSxS BGR in [0, 1] -> 1x3xSxS in [0, 1] (as DINet_five_Ref.interface)."""
        if self.ref_in_feature is None:
            raise RuntimeError("call set_reference before interface")
        (out,) = self.graph(source_img.detach().cpu().numpy(), source_prompt.detach().cpu().numpy(),
                            self.ref_in_feature, self.ref_trans_feature0)
        return torch.from_numpy(out)
