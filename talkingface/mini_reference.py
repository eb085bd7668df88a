"""The DH_live_mini reference input: the 72x72x12 stack DINet_mini encodes once per avatar.

Three 72x72 mouth windows of the 128 crop, each RGB + a lip map (12 channels, uint8): the avatar's
frame 0 and two *teeth references* (the avatar's own most open frames, else procedural teeth drawn
with a seed, so the result is deterministic). Used by the asset-pack writer (``ref_data``), by
:class:`~talkingface.render_model_mini.RenderModelMini` when it recomputes a pack's reference for
other weights, and by the mini self-reconstruction evaluation.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch

from talkingface.data.DHLive_mini_dataset import reference_stack
from talkingface.data.mouth_crop import standard_image, standard_points
from talkingface.data.teeth_labels import (DEFAULT_TEETH_SEED, inner_mouth, lip_labels, lip_map, mouth_labels,
                                           procedural_teeth_reference)
from talkingface.mediapipe_utils import FaceLandmarker
from talkingface.models.DINet_mini import INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y
from talkingface.utils import mouth_opening

#: Mouth opening (inner-lip gap / inter-ocular distance) above which a frame can serve as a teeth reference.
TEETH_REF_MIN_OPENING = 0.08


def crop_landmarks(frame: np.ndarray, rect: Sequence[int], mesh=None) -> Optional[np.ndarray]:
    """Face mesh of one frame, in the 128 crop of ``rect``: (478, 3) or None when no face is found.
    ``mesh``: a static-image ``FaceLandmarker`` to reuse (one is built when omitted)."""
    if mesh is None:
        with FaceLandmarker(static_image_mode=True) as own:
            lm = own(frame)
    else:
        lm = mesh(frame)
    if lm is None:
        return None
    return standard_points(lm[None], np.asarray(rect, np.float64)[None], MODEL_SIZE)[0]


def teeth_references(frames: Sequence[np.ndarray], rects: np.ndarray, landmarks: Optional[np.ndarray],
                     seed: int = DEFAULT_TEETH_SEED, n: int = 2) -> List[np.ndarray]:
    """``n`` teeth references (72x72x4 uint8: RGB of the mouth opening + lip map), deterministic.

    From the avatar's own most open frames when its mouth opens enough (landmarks: (N, 478, 3)
    in 128-crop pixels, or None), else procedural ones drawn with ``seed``.
    """
    refs: List[np.ndarray] = []
    if landmarks is not None and len(landmarks):
        opening = mouth_opening(landmarks)
        for i in np.argsort(-opening)[:n]:
            if opening[i] < TEETH_REF_MIN_OPENING:
                break
            rgb = _crop_rgb(frames[i], rects[i])
            labels = mouth_labels(rgb, landmarks[i][:, :2])
            win = _window(rgb), _window(labels)
            refs.append(np.dstack([inner_mouth(*win), lip_map(win[1])]))
    k = 0
    while len(refs) < n:
        refs.append(procedural_teeth_reference(seed + k, (INPUT_HEIGHT, INPUT_WIDTH)))
        k += 1
    return refs


def _crop_rgb(frame: np.ndarray, rect: Sequence[int]) -> np.ndarray:
    return cv2.cvtColor(standard_image(frame, rect, MODEL_SIZE), cv2.COLOR_BGR2RGB)


def _window(img: np.ndarray) -> np.ndarray:
    return img[PAD_Y:PAD_Y + INPUT_HEIGHT, PAD_X:PAD_X + INPUT_WIDTH]


def build_reference(frame: np.ndarray, rect: Sequence[int], landmarks: np.ndarray,
                    teeth_refs: Sequence[np.ndarray]) -> np.ndarray:
    """The 72x72x12 uint8 reference: frame's mouth window (RGB + lip map) + the teeth references.

    landmarks: (478, >=2) of ``frame`` in its 128-crop pixels.
    """
    rgb = _window(_crop_rgb(frame, rect))
    labels = _window(lip_labels(np.asarray(landmarks)[:, :2], (MODEL_SIZE, MODEL_SIZE)))
    return reference_stack([rgb] + [t[..., :3] for t in teeth_refs], [lip_map(labels)] + [t[..., 3] for t in teeth_refs])


def reference_tensor(reference: np.ndarray) -> torch.Tensor:
    """72x72x12 uint8 -> 1x12x72x72 float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(reference.transpose(2, 0, 1)))[None].float() / 255.0
