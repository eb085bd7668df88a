"""The DINet_mini renderer's fast path: the whole per-frame pipeline in one ONNX Runtime call.

:class:`FastMiniPipeline` runs :class:`talkingface.export.graphs.MiniFrameGraph` (uint8 crop and
GL renders in, the BGR change ``255 * out - crop`` out), so the per-frame Python work is two array
views and one session call. Frames whose GL labels show no mouth opening (no teeth or cavity
pixel in the 72x72 window) have an interior blend weight of exactly zero: the network's output is
multiplied by 0 there, so the warp-only graph gives the identical result and the network is skipped.

Output equals the eager torch pipeline to float rounding (max |delta| about 1e-4 of 255 in
``tests/test_fast_paths.py``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from talkingface.export import graphs
from talkingface.export.runtime import OnnxGraph, session_for
from talkingface.models.DINet_mini import INPUT_HEIGHT, INPUT_WIDTH, PAD_X, PAD_Y, DINet_mini_pipeline


def _label_tables():
    """Per uint8 value: does blue mark a label (lips/teeth/cavity), is red below the lip threshold.

    Computed with the pipeline's own float32 arithmetic on all 256 values, so the test below is
    exactly ``interior_weight(gl) > 0`` without running it."""
    v = torch.arange(256, dtype=torch.float32).view(1, 1, 256, 1) / 255.0
    blue = DINet_mini_pipeline.mouth_label_mask(torch.cat([v, v, v, v], 1))[0, 0, :, 0] > 0
    red = (v[0, 0, :, 0] < 0.25)
    return blue.numpy(), red.numpy()


_BLUE_LABEL, _RED_INTERIOR = _label_tables()


def mouth_interior_visible(gl: np.ndarray) -> bool:
    """True when the label render (128x128x4 uint8) has a teeth/cavity pixel in the network window,
    i.e. when the interior blend weight is non-zero somewhere."""
    win = gl[PAD_Y:PAD_Y + INPUT_HEIGHT, PAD_X:PAD_X + INPUT_WIDTH]
    return bool(np.any(_BLUE_LABEL[win[..., 2]] & _RED_INTERIOR[win[..., 0]]))


class FastMiniPipeline:
    """ONNX Runtime sessions of one DINet_mini pipeline (interior blend) and its warp-only graph.

    ``pipeline``: the torch pipeline with loaded weights (its fusion masks are baked in); ``threads``:
    intra-op threads. Call :meth:`set_reference` with the avatar's 1x20x18x18 feature, then
    :meth:`delta` per frame.
    """

    def __init__(self, pipeline: DINet_mini_pipeline, threads: int = 1, warp_only: bool = False):
        if pipeline.blend != "interior" and not warp_only:
            raise ValueError("the fast mini path implements the interior blend (the product default)")
        self.warp_only = warp_only
        self.full: Optional[OnnxGraph] = None if warp_only else session_for(
            graphs.MiniFrameGraph(pipeline), "mini_frame", threads)
        self.warp = session_for(graphs.MiniFrameGraph(pipeline, use_network=False), "mini_frame_warp", threads)
        self.ref_feature: Optional[np.ndarray] = None
        self.frames = 0
        self.network_frames = 0

    def set_reference(self, feature) -> None:
        """feature: 1x20x18x18 (torch or numpy)."""
        arr = feature.detach().cpu().numpy() if isinstance(feature, torch.Tensor) else np.asarray(feature)
        self.ref_feature = np.ascontiguousarray(arr.reshape(1, 20, 18, 18), np.float32)

    def delta(self, crop_bgr: np.ndarray, gl: Optional[np.ndarray], gl_warp: np.ndarray) -> np.ndarray:
        """crop_bgr 128x128x3 uint8, gl / gl_warp 128x128x4 uint8 -> 128x128x3 float32 BGR change."""
        crop = np.ascontiguousarray(crop_bgr)[None]
        warp = np.ascontiguousarray(gl_warp)[None]
        self.frames += 1
        if self.warp_only or gl is None or not mouth_interior_visible(gl):
            return self.warp(crop, warp)[0][0]
        if self.ref_feature is None:
            raise RuntimeError("call set_reference(feature) before delta()")
        self.network_frames += 1
        return self.full(crop, np.ascontiguousarray(gl)[None], warp, self.ref_feature)[0][0]
