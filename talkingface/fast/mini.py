"""The DINet_mini renderer's fast path: the per-frame pipeline around one small ONNX Runtime call.

Per frame (:meth:`FastMiniPipeline.delta`):

1. the warp of the 128x128 crop by the GL field runs in ``cv2.remap`` on the float BGR crop, with the
   maps of ``DINet_mini_pipeline.warp``'s ``grid_sample`` grid (bilinear, zero padding,
   ``align_corners=False``) folded into one multiply-subtract per pixel; equal to it to float
   rounding and about 3x faster than ONNX Runtime's GridSample;
2. on the 72x72 network window, the label swap and the interior blend weight run in numpy/OpenCV
   with lookup tables (the same float32 arithmetic as the torch pipeline), DINet_mini itself in ONNX
   Runtime (the ``mini_network`` graph), int8 when :meth:`FastMiniPipeline.set_reference` was given
   calibration frames and the int8 graph stays within :data:`MIN_INT8_PSNR_DB` of float32 on them;
3. the result is returned as the BGR change ``255 * out - crop`` that ``paste_change`` pastes.

Frames whose label render shows no mouth opening (no teeth or cavity pixel in the window) have an
interior blend weight of exactly zero: there the network's output is multiplied by 0, so step 2's
network call is skipped with an identical result.

With the float32 graph the output equals the eager torch pipeline to float rounding (max |delta|
below 5e-3 of 255 in ``tests/test_fast_paths.py``: ``cv2.remap`` snaps coordinates to 1/32 pixel,
so the regrouped maps can land one step apart).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from talkingface.export import graphs
from talkingface.export.runtime import OnnxGraph, cached_onnx, quantized_onnx
from talkingface.fast import int8_holds, psnr_db
from talkingface.models.DINet_mini import INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y, DINet_mini_pipeline

ROWS = slice(PAD_Y, PAD_Y + INPUT_HEIGHT)
COLS = slice(PAD_X, PAD_X + INPUT_WIDTH)

#: The int8 network is used only when the pipeline's output window stays within this PSNR (dB, 0..255
#: scale) of the float32 network's on every calibration frame.
MIN_INT8_PSNR_DB = 40.0

#: One calibration frame: (crop 128x128x3 uint8 BGR, label render 128x128x4 uint8, label-free render 128x128x4 uint8).
CalibrationFrame = Tuple[np.ndarray, np.ndarray, np.ndarray]


def _label_tables() -> Tuple[np.ndarray, np.ndarray]:
    """Per uint8 value: the label mask of a blue value (``mouth_label_mask``: 1 for lips/teeth/cavity,
    0 for skin, float32) and whether a red value is below the lip threshold (bool).

    Computed with the pipeline's own float32 arithmetic on all 256 values, so a table lookup equals
    the torch expression exactly."""
    v = torch.arange(256, dtype=torch.float32).view(1, 1, 256, 1) / 255.0
    mask = DINet_mini_pipeline.mouth_label_mask(torch.cat([v, v, v, v], 1))[0, 0, :, 0]
    return mask.numpy().astype(np.float32), (v[0, 0, :, 0] < 0.25).numpy()


_LABEL_MASK, _RED_INTERIOR = _label_tables()
_GROW = np.ones((5, 5), np.uint8)  # interior_weight's 5x5 max-pool


def _label_masks(gl_win: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(label mask, teeth/cavity mask) of a label window (72x72x4 uint8), 72x72 float32 each: the torch
    pipeline's ``mouth_label_mask`` and the ``inside`` term of its ``interior_weight``."""
    mask = _LABEL_MASK[gl_win[..., 2]]
    return mask, mask * _RED_INTERIOR[gl_win[..., 0]]


def mouth_interior_visible(gl: np.ndarray) -> bool:
    """True when the label render (128x128x4 uint8) has a teeth/cavity pixel in the network window,
    i.e. when the interior blend weight is non-zero somewhere."""
    return bool(_label_masks(gl[ROWS, COLS])[1].any())


class FastMiniPipeline:
    """The fast per-frame DINet_mini pipeline (interior blend) of one loaded torch pipeline.

    ``pipeline``: the torch pipeline with loaded weights (its fusion masks are used as they are);
    ``threads``: ONNX Runtime intra-op threads; ``warp_only``: the warp alone (no network). Call
    :meth:`set_reference` with the avatar's 1x20x18x18 feature, then :meth:`delta` per frame.
    ``precision`` says which network runs (float32 or int8).
    """

    def __init__(self, pipeline: DINet_mini_pipeline, threads: int = 1, warp_only: bool = False):
        if pipeline.blend != "interior" and not warp_only:
            raise ValueError("the fast mini path implements the interior blend (the product default)")
        self.warp_only = warp_only
        self.threads = threads
        self._float_bytes = None if warp_only else cached_onnx(graphs.MiniNetworkGraph(pipeline.infer_model),
                                                                "mini_network")
        self.float_net: Optional[OnnxGraph] = None if warp_only else OnnxGraph(self._float_bytes, threads)
        self.net = self.float_net
        self.precision = "float32"
        self.int8_psnr_db: Optional[float] = None
        # grid_sample's pixel coordinate of output pixel p: ((grid - (2 f - 1) face + 1) S - 1) / 2 with
        # f = G / 255 the GL red/green byte, i.e. base - G * gain (the same expression, regrouped).
        grid = pipeline.grid_tensor[0].detach().cpu().numpy().astype(np.float32)  # 128x128x2, x then y
        face = pipeline.face_fusion_tensor[0, 0].detach().cpu().numpy().astype(np.float32)[..., None]
        size = np.float32(MODEL_SIZE)
        self._map_base = (((grid + np.float32(1.0) + face) * size - np.float32(1.0)) / np.float32(2.0)).astype(np.float32)
        self._map_gain = (face * size / np.float32(255.0)).astype(np.float32)
        self._fusion = pipeline.mouth_fusion_tensor[0, 0].detach().cpu().numpy().astype(np.float32)  # 72x72
        self.ref_feature: Optional[np.ndarray] = None
        self.frames = 0
        self.network_frames = 0

    def set_reference(self, feature, calibration: Sequence[CalibrationFrame] = ()) -> None:
        """feature: 1x20x18x18 (torch or numpy). ``calibration``: a few (crop, gl, gl_warp) frames of
        this avatar with open mouths; when given, an int8 network is calibrated on them and used if
        the output window stays within :data:`MIN_INT8_PSNR_DB` of float32 on each (else float32)."""
        arr = feature.detach().cpu().numpy() if isinstance(feature, torch.Tensor) else np.asarray(feature)
        self.ref_feature = np.ascontiguousarray(arr.reshape(1, 20, 18, 18), np.float32)
        self.net, self.precision, self.int8_psnr_db = self.float_net, "float32", None
        if self.warp_only:
            return
        windows = (self._window_input(self.warp(c.astype(np.float32), w), g) for c, g, w in calibration)
        inputs = [w for w in windows if w is not None]
        if not inputs:
            return
        int8 = OnnxGraph(quantized_onnx(self._float_bytes, [(x, self.ref_feature) for x, _, _ in inputs]),
                         threads=self.threads)
        scores = []
        for x, win, blend in inputs:
            a = self._blend(self.float_net(x, self.ref_feature)[0], win, blend)
            b = self._blend(int8(x, self.ref_feature)[0], win, blend)
            scores.append(psnr_db(a, b, peak=255.0))
        self.int8_psnr_db = min(scores)
        if int8_holds("DINet_mini", self.int8_psnr_db, MIN_INT8_PSNR_DB, len(inputs)):
            self.net, self.precision = int8, "int8"

    def warp(self, crop: np.ndarray, gl_warp: np.ndarray) -> np.ndarray:
        """``DINet_mini_pipeline.warp`` of a 128x128x3 float32 image by the GL field (128x128x4 uint8)."""
        maps = self._map_base - gl_warp[..., :2] * self._map_gain
        return cv2.remap(crop, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def _window_input(self, warped: np.ndarray, gl: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(network input 1x3x72x72 RGB in [0, 1], the warped window 72x72x3 BGR 0..255, blend weight
        72x72) of a warped crop (128x128x3 float32 BGR 0..255) and its label render (128x128x4 uint8):
        ``network_input`` and ``mouth_fusion * interior_weight`` of the torch pipeline; None when no
        teeth/cavity pixel is in the window (the weight is 0 everywhere: the network is not needed).
        OpenCV does the per-pixel mix (``blendLinear``: its weights sum to 1 here, it divides by that
        sum plus 1e-5) and the HWC BGR -> NCHW RGB layout change: about half the time of numpy."""
        gl_win = gl[ROWS, COLS]
        mask, inside = _label_masks(gl_win)
        if not inside.any():
            return None
        win = np.ascontiguousarray(warped[ROWS, COLS])
        x = cv2.blendLinear(win, gl_win[..., 2::-1].astype(np.float32), np.float32(1.0) - mask, mask)
        weight = cv2.blur(cv2.dilate(inside, _GROW), (3, 3), borderType=cv2.BORDER_CONSTANT)
        return cv2.dnn.blobFromImage(x, 1.0 / 255.0, swapRB=True), win, self._fusion * weight

    @staticmethod
    def _blend(mouth: np.ndarray, win: np.ndarray, blend: np.ndarray) -> np.ndarray:
        """mouth 1x3x72x72 RGB [0, 1], warped window 72x72x3 BGR 0..255, blend 72x72 -> 72x72x3 BGR 0..255."""
        bgr = cv2.merge([mouth[0, 2], mouth[0, 1], mouth[0, 0]]) * np.float32(255.0)
        return cv2.blendLinear(bgr, win, blend, np.float32(1.0) - blend)

    def delta(self, crop_bgr: np.ndarray, gl: Optional[np.ndarray], gl_warp: np.ndarray) -> np.ndarray:
        """crop_bgr 128x128x3 uint8, gl / gl_warp 128x128x4 uint8 -> 128x128x3 float32 BGR change."""
        crop = crop_bgr.astype(np.float32)
        out = self.warp(crop, gl_warp)
        self.frames += 1
        window = None if self.warp_only or gl is None else self._window_input(out, gl)
        if window is not None:
            if self.ref_feature is None:
                raise RuntimeError("call set_reference(feature) before delta()")
            self.network_frames += 1
            x, win, blend = window
            (mouth,) = self.net(x, self.ref_feature)
            out[ROWS, COLS] = self._blend(mouth, win, blend)
        out -= crop
        return out
