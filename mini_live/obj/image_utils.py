"""Image-side helpers of the mini renderer (the original's file name): renderer inputs and drawMouth.

- The mouth crop and the 128 "standard" crop live in :mod:`talkingface.data.mouth_crop` (one place:
  :func:`~talkingface.data.mouth_crop.crop_mouth`, ``video_mouth_rects``, ``standard_points``,
  ``standard_image``); pose matrices from Euler angles in :mod:`talkingface.run_utils`.
- :func:`render_inputs`: the renderer works at twice the standard crop.
- :func:`drawMouth` paints the lip labels of a landmark set in the GL renderer's colours.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from talkingface.data.teeth_labels import CAVITY, LOWER_LIP, UPPER_LIP, lip_labels

RENDER_SCALE = 2


def render_inputs(std_points: np.ndarray, mats: np.ndarray, target_ids: np.ndarray,
                  scale: float = RENDER_SCALE) -> Tuple[np.ndarray, np.ndarray]:
    """Renderer inputs at ``scale`` x the standard crop (256 for 128, as demo_mini does).

    std_points (N, 478, 3), mats (N, 4, 4) canonical -> standard crop, target_ids (P,) ->
    (points (N, P, 2) output pixels, poses (N, 4, 4) canonical -> output pixels).
    """
    pts = np.asarray(std_points, np.float64)[:, np.asarray(target_ids), :2] * scale
    poses = np.diag([scale, scale, scale, 1.0]) @ np.asarray(mats, np.float64)
    return pts, poses


# ------------------------------------------------------------------------------------------- drawMouth
def drawMouth(landmarks: np.ndarray, size: Tuple[int, int], background: int = 128) -> np.ndarray:  # noqa: N802
    """The lip labels of ``landmarks`` (478, >=2, pixels) painted like the GL renderer: (h, w, 3) uint8 RGB.

    Upper lip (255, 0, 0), lower lip (127, 0, 0), mouth opening (0, 0, 0), elsewhere ``background``
    grey; ``size`` is (w, h). Teeth cannot be known from landmarks and are not drawn.
    """
    w, h = size
    labels = lip_labels(landmarks, (h, w))
    out = np.full((h, w, 3), background, np.uint8)
    out[labels == UPPER_LIP] = (255, 0, 0)
    out[labels == LOWER_LIP] = (127, 0, 0)
    out[labels == CAVITY] = (0, 0, 0)
    return out
