"""MODA inference: speech -> motion (MODA-lite) -> dense face (FaCo-Net) -> frame landmarks -> drawn
condition images -> (optionally) the per-person TPE renderer.

Shapes: audio (S,) float32 16 kHz in [-1, 1]; N = ceil(S / 640) frames at 25 fps; motion deltas
lip (N, 120), eye (N, 180), head (N, 7), torso (N, 54); dense (N, 478, 3) canonical px; frame
landmarks (N, 478, 3) px of the person's video; condition images (R, R, 3) uint8 BGR on black.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional, Union

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from talkingface.config.moda import FaCoConfig, MODAConfig, RendererConfig
from talkingface.data.moda_dataset import HEADS, TargetStats, head_from_targets, subject_vector
from talkingface.errors import UserInputError
from talkingface.models.faco import FaCoNet
from talkingface.models.moda import MODANet, moda_fbank
from talkingface.models.moda_renderer import TPERenderer
from talkingface.moda_geometry import EYES, LIPS, NON_SEMANTIC, from_canonical

WINDOW, STEP = 200, 100  # sliding-window inference (8 s windows, 4 s step), overlaps averaged
#: Temporal smoothing sigma in frames: MODA's values at 30 fps scaled to 25 fps.
SIGMA = {"lip": 1.5 * 25 / 30, "eye": 2.0 * 25 / 30, "rot": 4.0 * 25 / 30, "trans": 6.0 * 25 / 30,
         "torso": 4.0 * 25 / 30, "dense": 5.0 * 25 / 30}


def _load(path: Union[str, Path]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a corrupt or foreign file
        raise UserInputError(f"cannot read checkpoint {path}: {exc}") from exc


@dataclass
class Subject:
    """A person's means: mesh (478, 3) canonical px, head7 (7,); optional reference image and frames."""

    mean_dense: np.ndarray
    mean_head7: np.ndarray
    frame_size: tuple = (512, 512)  # (H, W) of the person's video
    reference: Optional[np.ndarray] = None  # (H, W, 3) uint8 BGR

    @classmethod
    def load(cls, folder: Union[str, Path]) -> "Subject":
        folder = Path(folder)
        f = folder / "subject.npz"
        if not f.is_file():
            raise UserInputError(f"not a MODA avatar (no subject.npz): {folder}")
        with np.load(f, allow_pickle=False) as d:
            ref = cv2.imread(str(folder / "reference.png"))
            return cls(d["mean_dense"], d["mean_head7"], tuple(int(x) for x in d["frame_size"]), ref)


class MODAPredictor:
    """A trained MODA-lite checkpoint (``{"config", "state_dict", "stats"}``), or a training run's
    ``last.pth`` (evaluated as it stands)."""

    def __init__(self, path: Union[str, Path]):
        ck = _load(path)
        if "state_dict" not in ck and "model" in ck:  # a training checkpoint
            ck = {"config": ck["config"]["model"], "state_dict": ck["model"], "stats": ck["stats"]}
        self.cfg = MODAConfig(**ck["config"])
        self.net = MODANet(self.cfg).eval()
        self.net.load_state_dict(ck["state_dict"])
        self.stats = TargetStats.from_dict(ck["stats"])

    @torch.no_grad()
    def predict(self, audio: np.ndarray, subject: Subject, seed: int = 0, n_frames: Optional[int] = None,
                smooth: bool = True) -> Dict[str, np.ndarray]:
        """Motion deltas (target units) for the whole audio: lip, eye, head, torso (N, D) float64."""
        n = n_frames or int(np.ceil(len(audio) / 640))
        fb = moda_fbank(audio, n, self.cfg)
        subj = torch.from_numpy(subject_vector(subject.mean_dense))[None]
        gen = torch.Generator().manual_seed(seed)
        acc = {k: np.zeros((n, self.stats.std[k].size)) for k in HEADS}
        weight = np.zeros(n)
        starts = list(range(0, max(n - WINDOW, 0) + 1, STEP))
        if starts[-1] + WINDOW < n:
            starts.append(n - WINDOW)
        f = self.cfg.fbank_per_frame
        # cvae: one prior draw for the whole clip, so overlapping windows decode the same motion plan
        # (independent draws per window would be averaged in the overlaps, halving the variance).
        latent = self.net.prob.sample_prior(1, n, gen) if self.cfg.prob_mode == "cvae" else None
        for s in starts:
            e = min(s + WINDOW, n)
            out = self.net(torch.from_numpy(fb[f * s: f * e])[None], subj, generator=gen,
                           latent=None if latent is None else latent[:, s:e])
            for k in HEADS:
                acc[k][s:e] += out[k][0].numpy() * self.stats.std[k]
            weight[s:e] += 1
        res = {k: v / weight[:, None] for k, v in acc.items()}
        return smooth_motion(res) if smooth else res


def smooth_motion(m: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Gaussian smoothing over time with :data:`SIGMA` (scale not smoothed)."""
    out = {k: v.copy() for k, v in m.items()}
    if len(out["lip"]) < 2:
        return out
    out["lip"] = gaussian_filter1d(m["lip"], SIGMA["lip"], axis=0, mode="nearest")
    out["eye"] = gaussian_filter1d(m["eye"], SIGMA["eye"], axis=0, mode="nearest")
    out["torso"] = gaussian_filter1d(m["torso"], SIGMA["torso"], axis=0, mode="nearest")
    out["head"][:, :3] = gaussian_filter1d(m["head"][:, :3], SIGMA["rot"], axis=0, mode="nearest")
    out["head"][:, 3:6] = gaussian_filter1d(m["head"][:, 3:6], SIGMA["trans"], axis=0, mode="nearest")
    return out


class FaCoPredictor:
    """A trained FaCo-Net checkpoint (``{"config", "state_dict"}``)."""

    def __init__(self, path: Union[str, Path]):
        ck = _load(path)
        if "state_dict" not in ck and "g" in ck:  # a training run's last.pth
            ck = {"config": ck["config"]["model"], "state_dict": ck["g"]}
        self.net = FaCoNet(FaCoConfig(**ck["config"])).eval()
        self.net.load_state_dict(ck["state_dict"])

    @torch.no_grad()
    def dense(self, lip: np.ndarray, eye: np.ndarray, subject: Subject, smooth: bool = True) -> np.ndarray:
        """Lip (N, 120) and eye (N, 180) deltas -> dense mesh (N, 478, 3) canonical px."""
        subj = torch.from_numpy(subject_vector(subject.mean_dense))[None]
        d = self.net(torch.from_numpy(lip.astype(np.float32)), torch.from_numpy(eye.astype(np.float32)), subj)
        d = d.numpy().astype(np.float64).reshape(len(lip), 478, 3)
        if smooth and len(d) > 1:
            d[:, NON_SEMANTIC] = gaussian_filter1d(d[:, NON_SEMANTIC], SIGMA["dense"], axis=0, mode="nearest")
        return d + subject.mean_dense


def paste_dense(lip: np.ndarray, eye: np.ndarray, subject: Subject) -> np.ndarray:
    """Without FaCo: the subject's mean mesh with the predicted lips and eyes pasted in (N, 478, 3)."""
    d = np.repeat(subject.mean_dense[None], len(lip), axis=0).astype(np.float64)
    d[:, LIPS] += lip.reshape(len(lip), 40, 3)
    d[:, EYES] += eye.reshape(len(eye), 60, 3)
    return d


def frame_landmarks(dense: np.ndarray, head_delta: np.ndarray, subject: Subject) -> np.ndarray:
    """Canonical meshes + predicted head deltas -> landmarks (N, 478, 3) in the person's video px."""
    return from_canonical(dense, head_from_targets(head_delta, subject.mean_head7))


# ------------------------------------------------------------------------------------ drawing
@lru_cache(maxsize=1)
def _connections() -> dict:
    # mediapipe is imported lazily: its import costs seconds and only drawing needs it.
    from mediapipe.python.solutions import face_mesh_connections as c

    return {"tess": c.FACEMESH_TESSELATION, "lips": c.FACEMESH_LIPS, "oval": c.FACEMESH_FACE_OVAL,
            "left": c.FACEMESH_LEFT_EYE | c.FACEMESH_LEFT_EYEBROW | c.FACEMESH_LEFT_IRIS,
            "right": c.FACEMESH_RIGHT_EYE | c.FACEMESH_RIGHT_EYEBROW | c.FACEMESH_RIGHT_IRIS}


def draw_condition(points: np.ndarray, frame_size: tuple, size: int) -> np.ndarray:
    """Landmarks (478, >=2) px of a (H, W) frame -> (size, size, 3) uint8 BGR condition image:
    tesselation grey 1 px, lips and face oval light grey 2 px, the subject's left eye/brow/iris
    green and the right ones red, on black."""
    h, w = frame_size
    p = np.round(np.asarray(points)[:, :2] * [size / w, size / h]).astype(np.int32)
    img = np.zeros((size, size, 3), np.uint8)
    styles = (("tess", (128, 128, 128), 1), ("lips", (224, 224, 224), 2), ("oval", (224, 224, 224), 2),
              ("left", (48, 255, 48), 2), ("right", (48, 48, 255), 2))
    conn = _connections()
    for key, colour, thick in styles:
        lines = [np.stack([p[a], p[b]]) for a, b in conn[key]]
        cv2.polylines(img, lines, False, colour, thick, cv2.LINE_AA)
    return img


# ----------------------------------------------------------------------------------- renderer
class RendererPredictor:
    """A per-person TPE renderer checkpoint (``{"config", "state_dict"}``) and its reference image."""

    def __init__(self, path: Union[str, Path], reference_bgr: np.ndarray):
        ck = _load(path)
        self.cfg = RendererConfig(**ck["config"])
        self.net = TPERenderer(self.cfg).eval()
        self.net.load_state_dict(ck["state_dict"])
        r = self.cfg.resolution
        self.reference = to_tensor(cv2.resize(reference_bgr, (r, r), interpolation=cv2.INTER_AREA))

    @torch.no_grad()
    def render(self, condition_bgr: np.ndarray, index: int) -> np.ndarray:
        """Condition (R, R, 3) BGR + frame index (TPE t = index / 1000) -> (R, R, 3) uint8 BGR."""
        x = self.net.make_input(to_tensor(condition_bgr)[None], self.reference[None], torch.tensor([index / 1000.0]))
        return from_tensor(self.net(x)[0])


def to_tensor(bgr: np.ndarray) -> torch.Tensor:
    """uint8 BGR (H, W, 3) -> float RGB (3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))).float() / 127.5 - 1.0


def from_tensor(t: torch.Tensor) -> np.ndarray:
    """float RGB (3, H, W) in [-1, 1] -> uint8 BGR (H, W, 3)."""
    a = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(a[:, :, ::-1])
