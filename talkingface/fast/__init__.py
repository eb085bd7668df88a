"""Fast inference paths (ONNX Runtime) for the renderers; torch stays the training path and fallback.

- :mod:`talkingface.fast.mini`: the DINet_mini per-frame pipeline around one session call;
- :mod:`talkingface.fast.dinet`: DINet_five_Ref's per-frame network;
- :mod:`talkingface.fast.yuv`: avatar frames kept as I420 for the offline renderer.

Chosen by measurement (``bench/bench_side_by_side.py``); see docs/ONNX.md. Both renderers quantise to
int8 on the avatar's own frames and keep int8 only where :func:`int8_holds` says it is close enough.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def psnr_db(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB of two arrays of the same shape whose value range is ``peak`` (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(peak * peak / mse))


def int8_holds(model: str, worst_db: float, threshold_db: float, inputs: int) -> bool:
    """Whether an int8 graph whose worst PSNR against float32 over ``inputs`` calibration inputs is
    ``worst_db`` may replace it (``>= threshold_db``); logs the decision either way."""
    if worst_db >= threshold_db:
        log.info("%s int8: %.1f dB against float32 on %d calibration inputs", model, worst_db, inputs)
        return True
    log.warning("%s int8 is %.1f dB from float32 on this avatar (< %.0f dB): using float32", model, worst_db,
                threshold_db)
    return False
