"""The DINet_mini renderer's fast path: the per-frame pipeline with one small ONNX Runtime call.

Per frame (:meth:`FastMiniPipeline.delta`):

1. the warp of the 128x128 crop by the GL field runs in ``cv2.remap`` on the float BGR crop, with the
   maps computed exactly as ``DINet_mini_pipeline.warp`` builds its ``grid_sample`` grid (bilinear,
   zero padding, ``align_corners=False``); equal to it to float rounding and about 3x faster than
   ONNX Runtime's GridSample;
2. the 72x72 window (label swap, DINet_mini, interior blend) runs in ONNX Runtime
   (:class:`talkingface.export.graphs.MiniWindowGraph`);
3. the result is returned as the BGR change ``255 * out - crop`` that ``paste_change`` pastes.

Frames whose label render shows no mouth opening (no teeth or cavity pixel in the window) have an
interior blend weight of exactly zero: there the network's output is multiplied by 0, so step 2 is
skipped with an identical result.

Output equals the eager torch pipeline to float rounding (max |delta| about 1e-4 of 255 in
``tests/test_fast_paths.py``).
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
import torch

from talkingface.export import graphs
from talkingface.export.runtime import OnnxGraph, session_for
from talkingface.models.DINet_mini import INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y, DINet_mini_pipeline

ROWS = slice(PAD_Y, PAD_Y + INPUT_HEIGHT)
COLS = slice(PAD_X, PAD_X + INPUT_WIDTH)


def _label_tables():
    """Per uint8 value: does blue mark a label (lips/teeth/cavity), is red below the lip threshold.

    Computed with the pipeline's own float32 arithmetic on all 256 values, so the test below is
    exactly ``interior_weight(gl) > 0`` without running it."""
    v = torch.arange(256, dtype=torch.float32).view(1, 1, 256, 1) / 255.0
    blue = DINet_mini_pipeline.mouth_label_mask(torch.cat([v, v, v, v], 1))[0, 0, :, 0] > 0
    red = v[0, 0, :, 0] < 0.25
    return blue.numpy(), red.numpy()


_BLUE_LABEL, _RED_INTERIOR = _label_tables()


def mouth_interior_visible(gl: np.ndarray) -> bool:
    """True when the label render (128x128x4 uint8) has a teeth/cavity pixel in the network window,
    i.e. when the interior blend weight is non-zero somewhere."""
    win = gl[ROWS, COLS]
    return bool(np.any(_BLUE_LABEL[win[..., 2]] & _RED_INTERIOR[win[..., 0]]))


class FastMiniPipeline:
    """The fast per-frame DINet_mini pipeline (interior blend) of one loaded torch pipeline.

    ``pipeline``: the torch pipeline with loaded weights (its fusion masks are used as they are);
    ``threads``: ONNX Runtime intra-op threads; ``warp_only``: the warp alone (no network). Call
    :meth:`set_reference` with the avatar's 1x20x18x18 feature, then :meth:`delta` per frame.
    """

    def __init__(self, pipeline: DINet_mini_pipeline, threads: int = 1, warp_only: bool = False):
        if pipeline.blend != "interior" and not warp_only:
            raise ValueError("the fast mini path implements the interior blend (the product default)")
        self.warp_only = warp_only
        self.window: Optional[OnnxGraph] = None if warp_only else session_for(
            graphs.MiniWindowGraph(pipeline), "mini_window", threads)
        # the pipeline's sampling grid (normalised, x then y) and face mask, as float32 numpy
        self._grid = pipeline.grid_tensor[0].detach().cpu().numpy().astype(np.float32)
        self._face = pipeline.face_fusion_tensor[0, 0].detach().cpu().numpy().astype(np.float32)
        self.ref_feature: Optional[np.ndarray] = None
        self.frames = 0
        self.network_frames = 0

    def set_reference(self, feature) -> None:
        """feature: 1x20x18x18 (torch or numpy)."""
        arr = feature.detach().cpu().numpy() if isinstance(feature, torch.Tensor) else np.asarray(feature)
        self.ref_feature = np.ascontiguousarray(arr.reshape(1, 20, 18, 18), np.float32)

    def warp(self, crop: np.ndarray, gl_warp: np.ndarray) -> np.ndarray:
        """``DINet_mini_pipeline.warp`` of a 128x128x3 float32 image by the GL field (128x128x4 uint8)."""
        field = gl_warp[..., :2].astype(np.float32) / np.float32(255.0)
        grid = self._grid - (field * np.float32(2.0) - np.float32(1.0)) * self._face[..., None]
        # grid_sample's align_corners=False unnormalisation: pixel = ((g + 1) * size - 1) / 2
        maps = ((grid + np.float32(1.0)) * np.float32(MODEL_SIZE) - np.float32(1.0)) / np.float32(2.0)
        return cv2.remap(crop, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)

    def delta(self, crop_bgr: np.ndarray, gl: Optional[np.ndarray], gl_warp: np.ndarray) -> np.ndarray:
        """crop_bgr 128x128x3 uint8, gl / gl_warp 128x128x4 uint8 -> 128x128x3 float32 BGR change."""
        crop = crop_bgr.astype(np.float32)
        out = self.warp(crop, gl_warp)
        self.frames += 1
        if not self.warp_only and gl is not None and mouth_interior_visible(gl):
            if self.ref_feature is None:
                raise RuntimeError("call set_reference(feature) before delta()")
            self.network_frames += 1
            (window,) = self.window(np.ascontiguousarray(out[ROWS, COLS])[None],
                                    np.ascontiguousarray(gl[ROWS, COLS])[None], self.ref_feature)
            out[ROWS, COLS] = window[0]
        out -= crop
        return out
