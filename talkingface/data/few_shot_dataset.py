"""DH_live few-shot render data: references, masked source, mouth prompt, target (docs/REFERENCE.md §3.2).

One place builds the DINet_five_Ref inputs for **both** training (:class:`Few_Shot_Dataset`) and
inference (:class:`talkingface.render_model.RenderModel`), so they cannot drift apart as they did in
the original (docs/REFERENCE.md §9.17: mask oval[2:-2] vs [3:-3], nose-anchored vs 3-D-grid prompt). Everything is in
OpenCV **BGR** order, like the original's training data and its published weights; tensors are
CxHxW float in [0, 1]. (Slightly over 450 lines: training and inference geometry stay in one file on
purpose, see above.)

Per output frame (all in the 256x256 face crop of :func:`talkingface.utils.crop_face`):

- references: 5 crops of frames with an open-ish mouth (lowest third of inner-lip gaps dropped for
  training, lowest half at inference), each with its 3-channel line map -> 30 channels;
- source: the crop with the jaw region (face-mask oval with y pushed out to the video's jaw-mask
  contour, closed by the reversed nose edge) filled black;
- prompt: on black, a rectangle of the video's max lip width x max lip height, centred under the
  nose base (MediaPipe 2) with its top at that point's y + h/4, filled with a grey, contrast-
  stretched mouth image; nose and eye lines drawn on top. The mouth image always shows the same
  region: the video's canonical outer-lip box (:func:`talkingface.mouth_basis.mouth_box`) carried
  by the frame's head pose, which is what the audio model's 15x30 pixel basis was cut from. Training
  warps that box out of the target frame (grey, left-right symmetrised like the basis, blurred,
  stretched to mean +- U(40, 70), downsampled to 100x50, noise sigma 8); inference decodes it from
  the audio model (grey, stretched to mean +- 60).
"""
from __future__ import annotations

import glob
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from talkingface.errors import UserInputError
from talkingface.mediapipe_utils import load_keypoints
from talkingface.mouth_basis import mouth_box, symmetrize
from talkingface.run_utils import apply_pose, calc_face_mat, jaw_mask_contour, load_mean_face_main
from talkingface.utils import (INDEX_FACE_OVAL, INDEX_LIPS_INNER, INDEX_LIPS_OUTER, INDEX_NOSE_EDGE, ROTATE_REF_INDEX,
                               crop_face, draw_face_feature_map, main_keypoints, safe_crop)

log = logging.getLogger(__name__)

FACE_SIZE = 256
#: Positions of MediaPipe 13 / 14 (inner-lip mid points) and 2 (nose base) in the main keypoints.
_UPPER_INNER = INDEX_LIPS_INNER[15]
_LOWER_INNER = INDEX_LIPS_INNER[5]
_NOSE_BASE = INDEX_NOSE_EDGE[5]
#: Jaw-mask oval part used in the source mask (same in training and inference).
_MASK_OVAL = slice(2, -2)


@dataclass
class FewShotConfig:
    """Data hyper-parameters (the original's values as defaults)."""

    n_ref: int = 5
    size: int = FACE_SIZE
    crop_jitter: int = 2                 # px of random crop offset (training)
    ref_drop_train: float = 1.0 / 3.0    # fraction of smallest lip gaps never used as reference
    ref_drop_infer: float = 0.5
    ref_colour_offset: int = 20          # references: per-channel +-U(0, 20) (training)
    prompt_blur: int = 10                # box blur of the grey target mouth
    prompt_contrast: Tuple[float, float] = (40.0, 70.0)  # half-range of the stretch (training)
    prompt_contrast_infer: float = 60.0
    prompt_low_res: Tuple[int, int] = (100, 50)  # (w, h) of the degraded prompt (training)
    prompt_noise: float = 8.0


# --------------------------------------------------------------------------------- keypoint handling
def lip_gap(main: np.ndarray) -> np.ndarray:
    """Inner-lip gap |pt14 - pt13| in pixels. main: (..., 141, >=2) -> (...,)."""
    return np.linalg.norm(main[..., _LOWER_INNER, :2] - main[..., _UPPER_INNER, :2], axis=-1)


def select_ref_index(main: np.ndarray, n_ref: int, drop_fraction: float, rng: np.random.Generator) -> List[int]:
    """Pick ``n_ref`` reference frames among those whose lip gap is not in the lowest
    ``drop_fraction`` (docs/REFERENCE.md §3.2). main: (N, 141, >=2). Repeats frames when N is small."""
    order = np.argsort(lip_gap(main), kind="stable")
    keep = order[int(len(order) * drop_fraction):]
    if len(keep) == 0:
        keep = order
    return [int(i) for i in rng.choice(keep, size=n_ref, replace=len(keep) < n_ref)]


@dataclass
class VideoGeometry:
    """Per-video pose data shared by training and inference.

    mats: (N,4,4) canonical -> frame pose matrices; contours: (N,21,2) jaw-mask contours in frame
    pixels; mouth_box: (3,3) canonical outer-lip box corners (top-left, top-right, bottom-left).
    """

    mats: np.ndarray
    contours: np.ndarray
    mouth_box: np.ndarray


def video_geometry(kps: np.ndarray, face_mat_mask: Optional[os.PathLike] = None) -> VideoGeometry:
    """Poses, jaw-mask contours and the mouth box of a sequence of (N, 478, 3) keypoints.

    Poses are solved against the project's mean face on the non-lip main keypoints (docs/REFERENCE.md §3.1),
    or read from a ``face_mat_mask.pkl`` (``[mats (N,4,4), mask face (141,3)]``, the mask face holding
    the jaw contour in its oval rows) written by ``train/data_preparation_face.py``.
    """
    kps = np.asarray(kps, dtype=np.float64)
    if kps.ndim != 3 or kps.shape[1] != 478 or kps.shape[2] != 3:
        raise UserInputError(f"expected (N, 478, 3) face-mesh keypoints, got {kps.shape}")
    main = main_keypoints(kps)
    if face_mat_mask is not None:
        with open(face_mat_mask, "rb") as fh:
            obj = pickle.load(fh)
        mats = np.asarray(obj[0], dtype=np.float64)
        mask_face = np.asarray(obj[1], dtype=np.float64)
        if mats.shape != (len(kps), 4, 4) or mask_face.shape != (141, 3):
            raise UserInputError(f"{face_mat_mask}: expected [mats ({len(kps)},4,4), mask face (141,3)], "
                                 f"got {mats.shape} and {mask_face.shape}")
        contour = mask_face[INDEX_FACE_OVAL]
    else:
        mats, normalized, personal = calc_face_mat(main, load_mean_face_main(), ROTATE_REF_INDEX)
        contour = jaw_mask_contour(normalized, personal)
    normalized_all = apply_pose(np.linalg.inv(mats), kps)
    return VideoGeometry(mats, apply_pose(mats, contour)[..., :2], mouth_box(normalized_all))


# ------------------------------------------------------------------------------------- crop geometry
@dataclass(frozen=True)
class CropBox:
    """A square face-crop box in frame pixels and its scale to ``size``."""

    x0: int
    y0: int
    side: int
    size: int = FACE_SIZE

    @property
    def scale(self) -> float:
        return self.size / self.side

    @property
    def box(self) -> Tuple[int, int, int, int]:
        return self.x0, self.y0, self.x0 + self.side, self.y0 + self.side

    def to_crop(self, pts: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates (..., >=2) -> crop pixel coordinates (..., 2)."""
        pts = np.asarray(pts, dtype=np.float64)[..., :2]
        return (pts - np.array([self.x0, self.y0])) * self.scale

    def crop(self, image: np.ndarray, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
        """HxWx3 uint8 frame -> size x size x 3 crop (edge pixels repeated outside the frame)."""
        patch = safe_crop(image, self.box, border="replicate")
        return cv2.resize(patch, (self.size, self.size), interpolation=interpolation)

    def paste(self, frame: np.ndarray, face: np.ndarray, blend: Optional[np.ndarray] = None) -> np.ndarray:
        """Resize ``face`` (size x size x 3) back into a copy of ``frame`` at this box (clipped to the
        frame). ``blend``: optional size x size float mask in [0, 1] (1 = generated face)."""
        out = frame.copy()
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = self.box
        big = cv2.resize(face, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
        alpha = None if blend is None else cv2.resize(blend, (self.side, self.side))[..., None]
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 <= sx0 or sy1 <= sy0:
            return out
        src = big[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
        if alpha is None:
            out[sy0:sy1, sx0:sx1] = src
        else:
            a = alpha[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
            mixed = a * src.astype(np.float32) + (1 - a) * out[sy0:sy1, sx0:sx1].astype(np.float32)
            out[sy0:sy1, sx0:sx1] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        return out


def face_crop_box(main: np.ndarray, size: int = FACE_SIZE, jitter: int = 0,
                  rng: Optional[np.random.Generator] = None) -> CropBox:
    """The DH_live face crop (:func:`talkingface.utils.crop_face`) of one frame's main keypoints."""
    x0, y0, x1, _ = crop_face(main, jitter=jitter, rng=rng)
    return CropBox(x0, y0, max(x1 - x0, 1), size)


def lip_extent(main_crop: np.ndarray) -> Tuple[float, float]:
    """(width, height) of the outer lips of one frame in crop pixels."""
    lips = main_crop[INDEX_LIPS_OUTER]
    span = lips.max(axis=0) - lips.min(axis=0)
    return float(span[0]), float(span[1])


def max_lip_extent(main: np.ndarray, size: int = FACE_SIZE) -> Tuple[float, float]:
    """The video's max outer-lip (width, height) in crop pixels (un-jittered crops). main: (N,141,>=2)."""
    ext = np.array([lip_extent(face_crop_box(m, size).to_crop(m)) for m in main])
    return float(ext[:, 0].max()), float(ext[:, 1].max())


# --------------------------------------------------------------------------------------- the inputs
def reference_image(frame: np.ndarray, main: np.ndarray, box: CropBox) -> np.ndarray:
    """One reference: size x size x 6 uint8 = the face crop (BGR) + its line map (BGR)."""
    crop = box.crop(frame)
    lines = draw_face_feature_map(box.to_crop(main), (box.size, box.size))
    return np.concatenate([crop, lines], axis=2)


def mask_polygon(main_crop: np.ndarray, contour_crop: np.ndarray) -> np.ndarray:
    """Jaw-mask polygon in crop pixels: oval[2:-2] with y from the jaw contour, then the nose edge
    reversed. main_crop: (141, 2), contour_crop: (21, 2). Returns (K, 2) int32."""
    oval = main_crop[INDEX_FACE_OVAL][_MASK_OVAL].copy()
    oval[:, 1] = contour_crop[_MASK_OVAL, 1]
    nose = main_crop[INDEX_NOSE_EDGE][::-1]
    return np.round(np.concatenate([oval, nose], axis=0)).astype(np.int32)


def masked_source(crop: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """The crop with the jaw polygon filled black (uint8 BGR, same size)."""
    out = crop.copy()
    cv2.fillPoly(out, [polygon.reshape(-1, 1, 2)], (0, 0, 0))
    return out


def jaw_blend_mask(polygon: np.ndarray, size: int = FACE_SIZE, feather: int = 9) -> np.ndarray:
    """size x size float32 in [0, 1]: 1 inside the jaw polygon, feathered edge (for pasting back)."""
    mask = np.zeros((size, size), np.float32)
    cv2.fillPoly(mask, [polygon.reshape(-1, 1, 2)], 1.0)
    mask = cv2.dilate(mask, np.ones((feather, feather), np.uint8))
    return cv2.GaussianBlur(mask, (2 * feather + 1, 2 * feather + 1), 0)


def prompt_rect(main_crop: np.ndarray, lip_w: float, lip_h: float) -> Tuple[int, int, int, int]:
    """(x0, y0, w, h) of the mouth prompt: lip_w x lip_h centred on the nose base, top at y + h/4."""
    nx, ny = main_crop[_NOSE_BASE, :2]
    w, h = max(int(round(lip_w)), 2), max(int(round(lip_h)), 2)
    return int(round(nx - w / 2.0)), int(round(ny + h / 4.0)), w, h


def stretch_contrast(grey: np.ndarray, half_range: float) -> np.ndarray:
    """Linearly map a grey image's min..max onto mean -/+ half_range (clipped to 0..255); float32."""
    g = grey.astype(np.float32)
    lo, hi, mean = float(g.min()), float(g.max()), float(g.mean())
    if hi - lo < 1e-3:
        return np.full_like(g, mean)
    out = (g - lo) / (hi - lo) * (2.0 * half_range) + (mean - half_range)
    return np.clip(out, 0.0, 255.0)


def target_mouth_grey(crop: np.ndarray, box: CropBox, mat: np.ndarray, mouth_box: np.ndarray,
                      w: int, h: int) -> np.ndarray:
    """The target's mouth as the prompt shows it: the canonical mouth box carried by the frame's pose
    ``mat``, warped out of the face ``crop`` to h x w, grey and left-right symmetrised (float32)."""
    src = box.to_crop(apply_pose(mat, mouth_box)).astype(np.float32)
    dst = np.float32([[0, 0], [w, 0], [0, h]])
    warped = cv2.warpAffine(crop, cv2.getAffineTransform(src, dst), (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    grey = cv2.cvtColor(warped, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return symmetrize(grey[..., None])[..., 0].astype(np.float32)


def degrade_training_mouth(grey: np.ndarray, cfg: FewShotConfig, rng: np.random.Generator) -> np.ndarray:
    """Training prompt content: box blur, stretch to mean +- U(40, 70), down to 100x50, noise, back up.
    grey: HxW float -> HxW float32 (0..255)."""
    h, w = grey.shape
    blurred = cv2.blur(grey, (cfg.prompt_blur, cfg.prompt_blur))
    stretched = stretch_contrast(blurred, rng.uniform(*cfg.prompt_contrast))
    small = cv2.resize(stretched, cfg.prompt_low_res, interpolation=cv2.INTER_AREA)
    small = small + rng.normal(0.0, cfg.prompt_noise, small.shape).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 255)


def inference_mouth(mouth_bgr: np.ndarray, w: int, h: int, cfg: FewShotConfig) -> np.ndarray:
    """Inference prompt content from the audio model's mouth image (e.g. 15x30x3 BGR uint8):
    grey, resized to the prompt rectangle, stretched to mean +- 60. Returns h x w float32."""
    img = np.asarray(mouth_bgr)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    grey = cv2.resize(grey.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return stretch_contrast(grey, cfg.prompt_contrast_infer)


def prompt_image(main_crop: np.ndarray, rect: Tuple[int, int, int, int], mouth: np.ndarray,
                 size: int = FACE_SIZE) -> np.ndarray:
    """The prompt: black size x size x 3 uint8 with the grey ``mouth`` (h x w, 0..255) in ``rect``
    and the nose/eye lines drawn on top."""
    canvas = np.zeros((size, size, 3), np.uint8)
    x0, y0, w, h = rect
    patch = np.repeat(np.clip(mouth + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + w, size), min(y0 + h, size)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0:sy1, sx0:sx1] = patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
    return draw_face_feature_map(main_crop, (size, size), parts=("nose", "eye"), image=canvas)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWxC uint8 -> CxHxW float32 in [0, 1] (channel order unchanged, i.e. BGR stays BGR)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """CxHxW float in [0, 1] -> HxWxC uint8 (channel order unchanged)."""
    arr = tensor.detach().float().clamp(0, 1).mul(255).add(0.5).byte().cpu().numpy()
    return arr.transpose(1, 2, 0)


# ------------------------------------------------------------------------------------ video records
@dataclass
class VideoRecord:
    """One prepared training video: frame paths, main keypoints (N,141,2) and its geometry, in the
    pixel frame of its ``image/*.png`` crops, and its max lip extent in face-crop pixels."""

    path: Path
    frames: List[str]
    main: np.ndarray
    geometry: VideoGeometry
    lip_w: float
    lip_h: float

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, i: int) -> np.ndarray:
        img = cv2.imread(self.frames[i], cv2.IMREAD_COLOR)
        if img is None:
            raise UserInputError(f"cannot read {self.frames[i]}")
        return img


def load_video_record(video_dir: os.PathLike, size: int = FACE_SIZE) -> VideoRecord:
    """Read one ``train/data_preparation_face.py`` output folder (docs/REFERENCE.md §3.2)."""
    video_dir = Path(video_dir)
    frames = sorted(glob.glob(str(video_dir / "image" / "*.png")))
    kp_path = video_dir / "keypoint_rotate.pkl"
    if not frames or not kp_path.is_file():
        raise UserInputError(f"{video_dir}: needs image/*.png and keypoint_rotate.pkl "
                             "(run train/data_preparation_face.py first)")
    kps = load_keypoints(kp_path, point_counts=(478, 141))
    if len(kps) != len(frames):
        raise UserInputError(f"{video_dir}: {len(frames)} images but {len(kps)} keypoint frames")
    mask_path = video_dir / "face_mat_mask.pkl"
    geometry = video_geometry(kps, mask_path if mask_path.is_file() else None)
    main = main_keypoints(kps)[..., :2]
    lip_w, lip_h = max_lip_extent(main, size)
    return VideoRecord(video_dir, frames, main, geometry, lip_w, lip_h)


def find_video_dirs(roots: Sequence[os.PathLike]) -> List[Path]:
    """Prepared video folders: each root itself or its sub-folders holding ``keypoint_rotate.pkl``."""
    found: List[Path] = []
    for root in map(Path, roots):
        if (root / "keypoint_rotate.pkl").is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(sorted(p.parent for p in root.glob("*/keypoint_rotate.pkl")))
    return found


# ------------------------------------------------------------------------------------------ dataset
class Few_Shot_Dataset(Dataset):
    """DINet_five_Ref training / evaluation samples.

    Train mode: each item picks a random video and frame (``len`` = number of videos x
    ``samples_per_video``; the original used one per video, docs/REFERENCE.md §9.29), crop jitter, reference
    colour augmentation and a randomly degraded prompt. Eval mode: items walk every frame of every
    video in order with references and prompt contrast fixed per video (seeded), no augmentation.

    Item: dict(source 6x256x256 = [masked face | prompt], ref 30x256x256, target 3x256x256), float
    in [0, 1], BGR; plus the ``video`` and ``frame`` indices.
    """

    def __init__(self, videos: Sequence[VideoRecord], cfg: FewShotConfig = FewShotConfig(),
                 is_train: bool = True, samples_per_video: int = 1, seed: int = 456):
        if not videos:
            raise UserInputError("no training videos")
        self.videos = list(videos)
        self.cfg = cfg
        self.is_train = is_train
        self.samples_per_video = samples_per_video
        self.seed = seed
        self._index = [(v, f) for v, rec in enumerate(self.videos) for f in range(len(rec))]

    def __len__(self) -> int:
        return len(self.videos) * self.samples_per_video if self.is_train else len(self._index)

    def __getitem__(self, item: int) -> dict:
        if self.is_train:
            # Seeded from torch's generator: reproducible under torch.manual_seed, distinct per worker.
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,))))
            v = int(rng.integers(len(self.videos)))
            f = int(rng.integers(len(self.videos[v])))
        else:
            v, f = self._index[item]
            rng = np.random.default_rng(self.seed + v)
        return self.make_sample(v, f, rng)

    def make_sample(self, v: int, f: int, rng: np.random.Generator) -> dict:
        cfg, rec = self.cfg, self.videos[v]
        jitter = cfg.crop_jitter if self.is_train else 0
        drop = cfg.ref_drop_train if self.is_train else cfg.ref_drop_infer
        refs = []
        for r in select_ref_index(rec.main, cfg.n_ref, drop, rng):
            ref = reference_image(rec.image(r), rec.main[r], face_crop_box(rec.main[r], cfg.size, jitter, rng))
            if self.is_train:
                ref = self._colour_augment(ref, rng)
            refs.append(ref)
        box = face_crop_box(rec.main[f], cfg.size, jitter, rng)
        target = box.crop(rec.image(f))
        main_crop = box.to_crop(rec.main[f])
        source = masked_source(target, mask_polygon(main_crop, box.to_crop(rec.geometry.contours[f])))
        rect = prompt_rect(main_crop, rec.lip_w, rec.lip_h)
        grey = target_mouth_grey(target, box, rec.geometry.mats[f], rec.geometry.mouth_box, rect[2], rect[3])
        if self.is_train:
            mouth = degrade_training_mouth(grey, cfg, rng)
        else:
            mouth = stretch_contrast(cv2.blur(grey, (cfg.prompt_blur, cfg.prompt_blur)), cfg.prompt_contrast_infer)
        prompt = prompt_image(main_crop, rect, mouth, cfg.size)
        return {
            "source": torch.cat([to_tensor(source), to_tensor(prompt)], dim=0),
            "ref": torch.cat([to_tensor(r) for r in refs], dim=0),
            "target": to_tensor(target),
            "video": v,
            "frame": f,
        }

    def _colour_augment(self, ref: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Shift each image channel of a reference by +-U(0, 20) (line map untouched)."""
        out = ref.astype(np.int16)
        offsets = rng.integers(0, self.cfg.ref_colour_offset + 1, size=3) * rng.choice([-1, 1], size=3)
        out[..., :3] += offsets.astype(np.int16)
        return np.clip(out, 0, 255).astype(np.uint8)


def data_preparation(video_dirs: Sequence[os.PathLike], size: int = FACE_SIZE) -> List[VideoRecord]:
    """Load every prepared video folder (the original's function name)."""
    dirs = find_video_dirs(video_dirs)
    if not dirs:
        raise UserInputError(f"no prepared videos (folders with keypoint_rotate.pkl) under {list(map(str, video_dirs))}")
    records = []
    for d in dirs:
        records.append(load_video_record(d, size))
        log.info("video %s: %d frames", d.name, len(records[-1]))
    return records


def sample_mosaic(sample: dict, n_ref: int = 5) -> np.ndarray:
    """One row of tiles for visual checks (BGR uint8): masked source | prompt | source + prompt |
    each reference with its line map overlaid | target."""
    src = to_image(sample["source"][:3])
    prompt = to_image(sample["source"][3:6])
    tiles = [src, prompt, np.maximum(src, prompt)]
    ref = sample["ref"]
    for r in range(n_ref):
        img = to_image(ref[6 * r:6 * r + 3])
        lines = to_image(ref[6 * r + 3:6 * r + 6])
        tiles.append(np.where(lines.any(axis=2, keepdims=True), lines, img))
    tiles.append(to_image(sample["target"]))
    return np.concatenate(tiles, axis=1)
