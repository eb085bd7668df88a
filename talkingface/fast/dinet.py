"""DINet_five_Ref's fast path: the per-frame network in ONNX Runtime, int8 where accuracy holds.

:class:`FastDINet` holds a session of :class:`talkingface.export.graphs.DINetGraph` (BatchNorm
folded, planar AdaAT) and the avatar's two reference features as numpy arrays; ``interface`` takes
and returns torch tensors like ``DINet_five_Ref.interface`` so :class:`talkingface.render_model.RenderModel`
can call either.

With ``int8=True`` (the default) and calibration samples (the avatar's own frames, given to
:meth:`FastDINet.set_reference`), the graph is quantised to int8 (per-channel weights, uint8
activations calibrated on those frames; :func:`talkingface.export.runtime.quantized_onnx`) and
checked against the float32 graph on the same frames: it is used only when its PSNR there is at least
:data:`MIN_INT8_PSNR_DB`, else the float32 graph stays (with a warning). The float32 graph equals
eager torch to float rounding (tests/test_onnx_export.py).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from talkingface.export import graphs
from talkingface.export.runtime import OnnxGraph, cached_onnx, quantized_onnx
from talkingface.fast import int8_holds, psnr_db
from talkingface.models.DINet import DINet_five_Ref

#: The int8 graph replaces the float one only if its output stays this close on the calibration frames.
MIN_INT8_PSNR_DB = 35.0


class FastDINet:
    """ONNX Runtime session(s) of one DINet_five_Ref's per-frame graph (CPU, ``threads`` intra-op)."""

    def __init__(self, net: DINet_five_Ref, threads: int = 1, int8: bool = True):
        self.threads = threads
        self.int8 = int8
        self._float_bytes = cached_onnx(graphs.DINetGraph(net), "dinet")
        self.float_graph = OnnxGraph(self._float_bytes, threads=threads)
        self.graph: OnnxGraph = self.float_graph
        self.precision = "float32"
        self.int8_psnr_db: Optional[float] = None
        self.ref_in_feature: Optional[np.ndarray] = None
        self.ref_trans_feature0: Optional[np.ndarray] = None

    def set_reference(self, net: DINet_five_Ref,
                      calibration: Sequence[Tuple[torch.Tensor, torch.Tensor]] = ()) -> None:
        """Copy the reference features ``net.ref_input`` cached (1x256xhxw each); with ``int8`` and
        ``calibration`` ((source_img, source_prompt) pairs of this avatar), quantise and check."""
        if net.ref_in_feature is None or net.ref_trans_feature0 is None:
            raise RuntimeError("run net.ref_input(refs) before FastDINet.set_reference")
        self.ref_in_feature = np.ascontiguousarray(net.ref_in_feature.detach().cpu().numpy(), np.float32)
        self.ref_trans_feature0 = np.ascontiguousarray(net.ref_trans_feature0.detach().cpu().numpy(), np.float32)
        self.graph, self.precision = self.float_graph, "float32"
        if not (self.int8 and calibration):
            return
        samples = [(s.detach().cpu().numpy(), p.detach().cpu().numpy(), self.ref_in_feature, self.ref_trans_feature0)
                   for s, p in calibration]
        quant = OnnxGraph(quantized_onnx(self._float_bytes, samples), threads=self.threads)
        self.int8_psnr_db = min(psnr_db(quant(*s)[0], self.float_graph(*s)[0], peak=1.0) for s in samples)
        if int8_holds("DINet", self.int8_psnr_db, MIN_INT8_PSNR_DB, len(samples)):
            self.graph, self.precision = quant, "int8"

    def interface(self, source_img: torch.Tensor, source_prompt: torch.Tensor) -> torch.Tensor:
        """source_img, source_prompt: 1x3xSxS BGR in [0, 1] -> 1x3xSxS in [0, 1] (as DINet_five_Ref.interface)."""
        if self.ref_in_feature is None:
            raise RuntimeError("call set_reference before interface")
        (out,) = self.graph(source_img.detach().cpu().numpy(), source_prompt.detach().cpu().numpy(),
                            self.ref_in_feature, self.ref_trans_feature0)
        return torch.from_numpy(out)
