"""DH_live_mini training data: prepared mouth clips and the (source, ref, target) sample recipe.

Preparation (:func:`prepare_video`, once per video) runs the face mesh on every frame, cuts the
mouth crop of docs/REFERENCE.md §1.4 (resized so the box is 128 px), keeps the central 72x72 window plus
an 8 px margin for the vertical jitter (an 88x88 *canvas*), and labels lips, mouth cavity and
upper/lower teeth with :mod:`talkingface.data.teeth_labels`. Frames without a face are dropped.
The result is one compressed ``.npz`` per video (:func:`save_prepared` / :func:`load_prepared`).

Sampling (:class:`DHLiveMiniDataset`, docs/REFERENCE.md §3.3) returns float tensors in [0, 1], RGB:

- ``source`` 3x72x72: the target mouth with lips/teeth/cavity painted in the GL label colours;
- ``ref`` 12x72x72: three references of RGB + lip map: a random frame of the same video, and two
  teeth references (the mouth opening of frames from the top 67 % by lip opening, black outside);
  with probability ``procedural_teeth_p`` the two teeth references are procedural ones instead,
  the kind an avatar pack uses when its video never shows teeth;
- ``target`` 3x72x72: the real mouth.

Augmentation shared by target and references: contrast gain U(0.8, 1.2) and a hue shift
randint(-15, 15) (OpenCV's 0..180 hue scale); vertical crop jitter U(-4 %, 4 %) of the box side.
Optionally (``channel_gain``, off by default) per-channel gains that simulate colour casts.
Unlike the original, teeth labels apply only inside the mouth opening (docs/REFERENCE.md §9.30).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from talkingface.data.mouth_crop import box_to_crop_matrix, crop_mouth
from talkingface.data.teeth_labels import (CAVITY, inner_mouth, lip_map, mouth_labels, paint_labels,
                                           procedural_teeth_reference, renderer_teeth_labels)
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.models.DINet_mini import INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y
from talkingface.util.files import atomic_write, reading
from talkingface.util.media import read_video
from talkingface.utils import mouth_opening

log = logging.getLogger(__name__)

MARGIN = 8
"""Extra pixels (128-crop scale) kept around the 72x72 window for the vertical jitter."""
CANVAS_H = INPUT_HEIGHT + 2 * MARGIN
CANVAS_W = INPUT_WIDTH + 2 * MARGIN


@dataclass
class PreparedVideo:
    """One prepared training video (K kept frames).

    images: Kx88x88x3 uint8 RGB canvases; labels: Kx88x88 uint8 (teeth_labels codes);
    landmarks: Kx478x2 float32 in canvas pixels; opening: K float32 (mouth_opening);
    frame_index: K int32 (index in the 25 fps video); name: the video's file name.
    """

    images: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray
    opening: np.ndarray
    frame_index: np.ndarray
    name: str

    def __len__(self) -> int:
        return len(self.images)


def canvas_matrix(lm: np.ndarray) -> np.ndarray:
    """2x3 affine from frame pixels to the 88x88 canvas of one frame (crop_mouth box, 128 scale)."""
    mat = box_to_crop_matrix(crop_mouth(lm), MODEL_SIZE)
    mat[0, 2] -= PAD_X - MARGIN
    mat[1, 2] -= PAD_Y - MARGIN
    return mat


def cut_canvas(frame_bgr: np.ndarray, lm: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Frame (BGR) + its 478 landmarks -> (88x88x3 RGB canvas, 478x2 landmarks in canvas pixels).

    Large faces are first shrunk with area averaging so the crop is not aliased.
    """
    mat = canvas_matrix(lm)
    scale = mat[0, 0]
    image = frame_bgr
    if scale < 0.5:
        f = min(1.0, 2.0 * scale)
        image = cv2.resize(frame_bgr, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        mat = mat.copy()
        mat[:, :2] /= f
    canvas = cv2.warpAffine(image, mat, (CANVAS_W, CANVAS_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    full = canvas_matrix(lm)
    pts = np.asarray(lm, np.float64)[:, :2] @ full[:, :2].T + full[:, 2]
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), pts.astype(np.float32)


def prepare_frames(frames: Sequence[np.ndarray], lms: np.ndarray, name: str,
                   frame_index: Optional[Sequence[int]] = None) -> PreparedVideo:
    """Mouth canvases + label maps of frames (BGR) whose (478, >=2) pixel landmarks are known.

    Frames whose landmarks are not finite are dropped. ``frame_index``: each frame's index in the
    25 fps video (default 0..N-1).
    """
    lms = np.asarray(lms, np.float64)
    index = np.arange(len(frames)) if frame_index is None else np.asarray(frame_index)
    keep = [i for i in range(len(frames)) if np.isfinite(lms[i]).all()]
    if len(keep) < len(frames):
        log.info("%s: %d of %d frames without a face dropped", name, len(frames) - len(keep), len(frames))
    if not keep:
        raise ValueError(f"{name}: no frame with a face")
    images, labels, pts = [], [], []
    for i in keep:
        canvas, lm_canvas = cut_canvas(frames[i], lms[i])
        images.append(canvas)
        labels.append(mouth_labels(canvas, lm_canvas))
        pts.append(lm_canvas)
    return PreparedVideo(images=np.stack(images), labels=np.stack(labels), landmarks=np.stack(pts),
                         opening=mouth_opening(lms[keep]).astype(np.float32),
                         frame_index=index[keep].astype(np.int32), name=name)


def prepare_video(path: Union[str, Path], max_frames: Optional[int] = None, progress: bool = False) -> PreparedVideo:
    """Face mesh + mouth canvases + label maps of every frame of a video (25 fps)."""
    frames = read_video(path, max_frames=max_frames)
    lms = landmarks_for_video(frames, progress=progress, allow_missing=True)
    return prepare_frames(frames, lms, Path(path).name)


def save_prepared(video: PreparedVideo, path: Union[str, Path]) -> Path:
    """Write a prepared video as a compressed npz (atomically)."""
    with atomic_write(path) as tmp:
        np.savez_compressed(tmp, images=video.images, labels=video.labels, landmarks=video.landmarks,
                            opening=video.opening, frame_index=video.frame_index, name=np.array(video.name))
    return Path(path)


def load_prepared(path: Union[str, Path]) -> PreparedVideo:
    """Read a prepared video (``save_prepared``); a clear error for a truncated or foreign file."""
    with reading(path, "prepared training video"), np.load(path, allow_pickle=False) as data:
        return PreparedVideo(images=data["images"], labels=data["labels"], landmarks=data["landmarks"],
                             opening=data["opening"], frame_index=data["frame_index"], name=str(data["name"]))


# ----------------------------------------------------------------------------------------- sampling
@dataclass
class MiniDatasetConfig:
    """Sampling recipe (docs/REFERENCE.md §3.3 defaults)."""

    n_ref: int = 3
    jitter: float = 0.04  # vertical crop jitter, fraction of the box side
    contrast: Tuple[float, float] = (0.8, 1.2)
    hue_shift: int = 15  # OpenCV hue units (0..180)
    channel_gain: float = 0.0  # extra: per-RGB-channel gains U(1-g, 1+g) (colour casts); 0 = the original recipe
    open_fraction: float = 0.67  # teeth references come from the top 67 % by lip opening
    procedural_teeth_p: float = 0.3
    procedural_bank: int = 64  # distinct procedural teeth references drawn once per dataset
    renderer_teeth_p: float = 0.0  # extra: share of sources whose opening is labelled as the GL renderer draws it
    renderer_teeth_follow: bool = False  # those labels draw a teeth row only where the target shows it
    samples_per_epoch: int = 1000


def augment(images: Sequence[np.ndarray], rng: np.random.Generator, cfg: MiniDatasetConfig) -> List[np.ndarray]:
    """The same contrast gain and hue shift applied to every RGB uint8 image of one sample."""
    alpha = rng.uniform(*cfg.contrast)
    shift = int(rng.integers(-cfg.hue_shift, cfg.hue_shift + 1))
    gains = rng.uniform(1.0 - cfg.channel_gain, 1.0 + cfg.channel_gain, size=3) if cfg.channel_gain > 0 else np.ones(3)
    out = []
    for img in images:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32) * (alpha * gains)
        out.append(np.clip(rgb, 0, 255).astype(np.uint8))
    return out


def _window(arr: np.ndarray, dy: int) -> np.ndarray:
    return arr[MARGIN + dy:MARGIN + dy + INPUT_HEIGHT, MARGIN:MARGIN + INPUT_WIDTH]


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWxC uint8 -> CxHxW float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255.0


def reference_stack(refs_rgb: Sequence[np.ndarray], lip_maps: Sequence[np.ndarray]) -> np.ndarray:
    """Stack n references (72x72x3 RGB uint8 + 72x72 lip map) into 72x72x(4n) uint8."""
    return np.concatenate([np.dstack([rgb, lm]) for rgb, lm in zip(refs_rgb, lip_maps)], axis=2)


class DHLiveMiniDataset(Dataset):
    """Random (source, ref, target) samples from prepared videos (see module doc).

    Item ``i`` is deterministic given ``seed`` (its own RNG), so a run is reproducible and a
    validation set is just a dataset with a fixed seed. Returns a dict with ``source`` 3x72x72,
    ``ref`` 12x72x72, ``target`` 3x72x72 (float in [0, 1], RGB), ``mouth_mask`` 1x72x72 (the
    lips and opening of the target, for mouth-region metrics) and ``interior_mask`` 1x72x72 (the
    opening only: teeth and cavity).
    """

    def __init__(self, videos: Sequence[PreparedVideo], cfg: MiniDatasetConfig = MiniDatasetConfig(),
                 seed: int = 1009, augment_images: bool = True):
        if not videos:
            raise ValueError("no prepared videos")
        self.videos = list(videos)
        self.cfg = cfg
        self.seed = seed
        self.augment_images = augment_images
        self._open_frames = []
        for v in self.videos:
            order = np.argsort(v.opening)
            n_keep = max(1, int(round(len(order) * cfg.open_fraction)))
            self._open_frames.append(order[len(order) - n_keep:])
        bank = cfg.procedural_bank if cfg.procedural_teeth_p > 0 else 0
        self._teeth_bank = [procedural_teeth_reference(seed * 7919 + k, (INPUT_HEIGHT, INPUT_WIDTH)) for k in range(bank)]

    def __len__(self) -> int:
        return self.cfg.samples_per_epoch

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(index)])
        vi = int(rng.integers(len(self.videos)))
        video = self.videos[vi]
        max_dy = int(round(self.cfg.jitter * MODEL_SIZE))
        t = int(rng.integers(len(video)))
        r0 = int(rng.integers(len(video)))
        dy_t, dy_r = (int(rng.integers(-max_dy, max_dy + 1)) for _ in range(2))
        target = _window(video.images[t], dy_t)
        labels_t = _window(video.labels[t], dy_t)
        source_labels = labels_t
        if self.cfg.renderer_teeth_p > 0 and rng.random() < self.cfg.renderer_teeth_p:
            source_labels = _window(renderer_teeth_labels(video.labels[t], video.landmarks[t],
                                                          self.cfg.renderer_teeth_follow), dy_t)
        ref_imgs = [_window(video.images[r0], dy_r)]
        ref_labels = [_window(video.labels[r0], dy_r)]
        teeth_imgs: List[np.ndarray] = []
        teeth_maps: List[np.ndarray] = []
        if self._teeth_bank and rng.random() < self.cfg.procedural_teeth_p:
            for _ in range(self.cfg.n_ref - 1):
                ref = self._teeth_bank[int(rng.integers(len(self._teeth_bank)))]
                teeth_imgs.append(ref[..., :3])
                teeth_maps.append(ref[..., 3])
        else:
            for _ in range(self.cfg.n_ref - 1):
                f = int(rng.choice(self._open_frames[vi]))
                dy = int(rng.integers(-max_dy, max_dy + 1))
                ref_imgs.append(_window(video.images[f], dy))
                ref_labels.append(_window(video.labels[f], dy))
        if self.augment_images:
            aug = augment([target] + ref_imgs + teeth_imgs, rng, self.cfg)
            target, ref_imgs, teeth_imgs = aug[0], aug[1:1 + len(ref_imgs)], aug[1 + len(ref_imgs):]
        rgbs = [ref_imgs[0]] + [inner_mouth(img, lab) for img, lab in zip(ref_imgs[1:], ref_labels[1:])] + teeth_imgs
        maps = [lip_map(lab) for lab in ref_labels] + teeth_maps
        source = paint_labels(target, source_labels)
        mouth = (labels_t > 0).astype(np.float32)[None]
        interior = (labels_t >= CAVITY).astype(np.float32)[None]
        return {
            "source": _to_tensor(source),
            "ref": _to_tensor(reference_stack(rgbs, maps)),
            "target": _to_tensor(target),
            "mouth_mask": torch.from_numpy(mouth),
            "interior_mask": torch.from_numpy(interior),
        }
