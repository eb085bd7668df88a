"""The two mouth-motion representations the audio model predicts, fit on real talking videos.

- :class:`BlendshapeBasis` (mini renderer): 6 displacement modes of the lower-face/lip landmarks in
  the pose-normalised canonical space of :func:`talkingface.run_utils.load_mean_face` (same units).
  ``shape = mean + sum_i coef_i * components[i]``; coefficient 0 is the jaw/lips open-closed mode
  (positive opens). Coefficients are measured from each clip's own neutral (closed-mouth) shape,
  so all-zero coefficients mean "mouth at rest".
- :class:`PixelBasis` (DH_live renderer): PCA of 15x30x3 BGR mouth crops (docs/REFERENCE.md §6.2 step 2)
  cut from the pose-normalised outer-lip box, made grey, left-right symmetrised and
  contrast-normalised per crop (lighting and skin colour vary across real videos); the
  coefficients written for training are computed on those same processed crops (the original
  computed them on raw crops, its bug docs/REFERENCE.md §9.13). ``image = mean + coef @ components``.

Both are stored as ``.npz`` (no pickles). The original's sklearn ``pca.pkl`` can be converted with
:func:`read_original_pca_pkl`, an explicit opt-in that unpickles a file (only for trusted files).
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.run_utils import apply_pose, calc_face_mat, load_mean_face
from talkingface.util.files import atomic_write
from talkingface.utils import (MP_LIPS_INNER, MP_LIPS_OUTER, MP_LOWER_INNER_LIP_MID, MP_UPPER_INNER_LIP_MID,
                               mouth_opening)

log = logging.getLogger(__name__)

N_COEFS = 6
MOUTH_SHAPE = (15, 30, 3)  # h, w, BGR
MP_NOSE_TIP = 1
MP_LOWER_EYELIDS = (145, 374)


# ------------------------------------------------------------------------------------------- helpers
def lower_face_ids(mean_face: np.ndarray) -> np.ndarray:
    """MediaPipe ids below the lower eyelids in the canonical face: nose, cheeks, lips, chin (sorted)."""
    y_cut = max(mean_face[i, 1] for i in MP_LOWER_EYELIDS)
    return np.flatnonzero(mean_face[:478, 1] > y_cut)


def rigid_ids(mean_face: np.ndarray) -> np.ndarray:
    """Ids above the nose tip (forehead, brows, eyes, upper nose): the points used to solve head pose,
    so that jaw and lip motion do not pull the pose."""
    return np.flatnonzero(mean_face[:478, 1] < mean_face[MP_NOSE_TIP, 1])


def normalize_landmarks(landmarks: np.ndarray, mean_face: Optional[np.ndarray] = None
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Pose-normalise one clip's landmarks: (N,478,3) pixels -> (mats (N,4,4), normalised (N,478,3)).

    The pose is solved on :func:`rigid_ids` only (no temporal smoothing, which would blur fast jaw
    motion into the pose); normalised points are in canonical mean-face units.
    """
    mean_face = load_mean_face() if mean_face is None else mean_face
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (478, 3) or not np.isfinite(lm).all():
        raise UserInputError(f"expected finite (N, 478, 3) landmarks, got {lm.shape}")
    mats, normalized, _ = calc_face_mat(lm, mean_face, ref_index=rigid_ids(mean_face), smooth=False)
    return mats, normalized


def neutral_shape(normalized: np.ndarray, quantile: float = 0.1, min_frames: int = 3) -> np.ndarray:
    """A clip's own closed-mouth shape: mean of its frames with the smallest inner-lip gap. (478,3)."""
    opening = mouth_opening(normalized)
    k = max(min_frames, int(round(quantile * len(opening))))
    closed = np.argsort(opening)[: min(k, len(opening))]
    return normalized[closed].mean(axis=0)


def _fix_signs(components: np.ndarray, opening_dir: Optional[np.ndarray]) -> np.ndarray:
    """Deterministic signs: component 0 along ``opening_dir`` (if given), others with their largest
    absolute entry positive."""
    out = components.copy()
    for i, c in enumerate(out):
        flat = c.reshape(-1)
        if i == 0 and opening_dir is not None:
            s = np.sign(flat @ opening_dir.reshape(-1))
        else:
            s = np.sign(flat[np.argmax(np.abs(flat))])
        out[i] = c * (s if s != 0 else 1.0)
    return out


# ---------------------------------------------------------------------------------- blendshape basis
@dataclass
class BlendshapeBasis:
    """6 lower-face displacement modes in canonical mean-face space.

    landmark_ids: (K,) int MediaPipe ids; mean: (K,3) neutral shape; components: (6,K,3)
    displacement per unit coefficient (orthonormal over K*3); coef_std: (6,) std of each
    coefficient over the fitting frames. Component 0 opens the jaw/lips for positive values.
    """

    landmark_ids: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    coef_std: np.ndarray
    info: dict = field(default_factory=dict)

    def save(self, path: Union[str, Path]) -> Path:
        return _save_basis(path, self, landmark_ids=self.landmark_ids.astype(np.int32))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "BlendshapeBasis":
        with _open_npz(path, ("landmark_ids", "mean", "components", "coef_std")) as d:
            return cls(d["landmark_ids"].astype(np.int64), d["mean"].astype(np.float64),
                       d["components"].astype(np.float64), d["coef_std"].astype(np.float64))

    def displacement(self, coefs: np.ndarray) -> np.ndarray:
        """coefs (..., 6) -> displacements (..., K, 3) in canonical units."""
        c = np.asarray(coefs, np.float64)[..., : len(self.components)]
        return np.tensordot(c, self.components, axes=([-1], [0]))

    def decode(self, coefs: np.ndarray, neutral: Optional[np.ndarray] = None) -> np.ndarray:
        """coefs (..., 6) -> shapes (..., K, 3): ``neutral`` (default: the basis mean) + displacement."""
        base = self.mean if neutral is None else np.asarray(neutral, np.float64)
        return base + self.displacement(coefs)

    def draw(self, coefs: np.ndarray, size: int = 256) -> np.ndarray:
        """A size x size BGR picture of the shape for ``coefs`` (6,): lip rings as polylines, other
        points as dots, in the canonical x-y plane framed on the neutral shape."""
        shape = self.decode(coefs)
        lo, hi = self.mean[:, :2].min(0), self.mean[:, :2].max(0)
        scale = 0.8 * size / max(hi - lo)
        xy = (shape[:, :2] - (lo + hi) / 2) * scale + size / 2
        img = np.full((size, size, 3), 255, np.uint8)
        pos = {int(m): i for i, m in enumerate(self.landmark_ids)}
        for p in xy:
            cv2.circle(img, (int(round(p[0])), int(round(p[1]))), 1, (170, 170, 170), -1)
        for ring in (MP_LIPS_OUTER, MP_LIPS_INNER):
            if all(i in pos for i in ring):
                pts = np.round(xy[[pos[i] for i in ring]]).astype(np.int32)
                cv2.polylines(img, [pts], True, (0, 0, 200), 2, cv2.LINE_AA)
        return img

    def project(self, normalized: np.ndarray, neutral: np.ndarray) -> np.ndarray:
        """Coefficients of pose-normalised shapes: normalized (N,478,3), neutral (478,3) -> (N,6)."""
        d = (np.asarray(normalized)[:, self.landmark_ids] - np.asarray(neutral)[self.landmark_ids])
        return d.reshape(len(d), -1) @ self.components.reshape(len(self.components), -1).T


def fit_blendshape_basis(sequences: Sequence[np.ndarray], n_components: int = N_COEFS,
                         mean_face: Optional[np.ndarray] = None,
                         landmark_ids: Optional[np.ndarray] = None) -> BlendshapeBasis:
    """Fit the basis on pose-normalised clips.

    sequences: list of (N_i, 478, 3) pose-normalised landmarks (one per clip, e.g. from
    :func:`normalize_landmarks`). Each clip's displacements are taken from its own
    :func:`neutral_shape`; an uncentred PCA (SVD) of all displacements gives the modes, so zero
    coefficients are the neutral mouth.
    """
    mean_face = load_mean_face() if mean_face is None else mean_face
    ids = lower_face_ids(mean_face) if landmark_ids is None else np.asarray(landmark_ids)
    disp, neutrals = [], []
    for seq in sequences:
        seq = np.asarray(seq, np.float64)
        neutral = neutral_shape(seq)
        neutrals.append(neutral[ids])
        disp.append((seq[:, ids] - neutral[ids]).reshape(len(seq), -1))
    if not disp:
        raise UserInputError("no clips to fit a blendshape basis on")
    data = np.concatenate(disp)
    if len(data) < n_components:
        raise UserInputError(f"too few frames ({len(data)}) to fit {n_components} components")
    _, _, vt = np.linalg.svd(data, full_matrices=False)
    comps = vt[:n_components].reshape(n_components, len(ids), 3)
    opening = np.zeros((len(ids), 3))
    pos = {int(m): k for k, m in enumerate(ids)}
    if MP_LOWER_INNER_LIP_MID in pos and MP_UPPER_INNER_LIP_MID in pos:
        opening[pos[MP_LOWER_INNER_LIP_MID], 1] = 1.0  # y grows downward: lower lip down ...
        opening[pos[MP_UPPER_INNER_LIP_MID], 1] = -1.0  # ... upper lip up = open
    comps = _fix_signs(comps, opening if opening.any() else None)
    coefs = data @ comps.reshape(n_components, -1).T
    info = {"frames": int(len(data)), "clips": len(sequences),
            "explained_energy": [float(x) for x in (coefs ** 2).sum(0) / (data ** 2).sum()]}
    return BlendshapeBasis(ids.astype(np.int64), np.mean(neutrals, axis=0), comps, coefs.std(axis=0), info)


# --------------------------------------------------------------------------------------- pixel basis
@dataclass
class PixelBasis:
    """PCA of 15x30x3 BGR mouth crops.

    mean: (1350,) float in pixel units; components: (6, 1350); coef_std: (6,);
    ``decode(coefs) = clip(mean + coefs @ components)`` reshaped to 15x30x3 uint8 BGR.
    """

    mean: np.ndarray
    components: np.ndarray
    coef_std: np.ndarray
    info: dict = field(default_factory=dict)

    def save(self, path: Union[str, Path]) -> Path:
        return _save_basis(path, self, shape=np.array(MOUTH_SHAPE, np.int32))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "PixelBasis":
        with _open_npz(path, ("mean", "components", "coef_std")) as d:
            return cls(d["mean"].astype(np.float64), d["components"].astype(np.float64),
                       d["coef_std"].astype(np.float64))

    def decode(self, coefs: np.ndarray) -> np.ndarray:
        """coefs (..., 6) -> mouth images (..., 15, 30, 3) uint8 BGR."""
        c = np.asarray(coefs, np.float64)[..., : len(self.components)]
        img = self.mean + c @ self.components
        return np.clip(img, 0, 255).astype(np.uint8).reshape(*c.shape[:-1], *MOUTH_SHAPE)

    def draw(self, coefs: np.ndarray, zoom: int = 8) -> np.ndarray:
        """The decoded 15x30 mouth for ``coefs`` (6,), enlarged ``zoom`` times (bicubic), BGR uint8."""
        return cv2.resize(self.decode(coefs), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)

    def project(self, crops: np.ndarray) -> np.ndarray:
        """Processed crops (N, 15, 30, 3) -> coefficients (N, 6)."""
        x = np.asarray(crops, np.float64).reshape(len(crops), -1) - self.mean
        return x @ self.components.T


def symmetrize(crops: np.ndarray) -> np.ndarray:
    """Average each crop with its left-right mirror: (..., H, W, C) -> same shape, float64."""
    c = np.asarray(crops, np.float64)
    return 0.5 * (c + c[..., ::-1, :])


def normalize_contrast(crops: np.ndarray, target_std: float = 40.0, target_mean: float = 128.0) -> np.ndarray:
    """Per-crop contrast normalisation (lighting varies across real videos): each crop is shifted
    and scaled to mean 128 and std ``target_std`` over its pixels, clipped to [0, 255]."""
    c = np.asarray(crops, np.float64)
    axes = tuple(range(c.ndim - 3, c.ndim))
    mu = c.mean(axis=axes, keepdims=True)
    sd = np.maximum(c.std(axis=axes, keepdims=True), 1.0)
    return np.clip((c - mu) / sd * target_std + target_mean, 0, 255)


def mouth_box(normalized: np.ndarray, extent: float = 0.9) -> np.ndarray:
    """The canonical outer-lip box of a clip: corners (3, 3) = top-left, top-right, bottom-left.

    The box is the bbox of the clip's mean normalised outer-lip points (x, y) scaled by ``extent``
    about its centre (docs/REFERENCE.md §6.2 step 2 / docs/REFERENCE.md §3.2 ``generate_input_pixels``); z is the mean lip depth.
    """
    lips = np.asarray(normalized)[:, MP_LIPS_OUTER].mean(axis=0)
    lo, hi = lips[:, :2].min(0), lips[:, :2].max(0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * extent
    z = lips[:, 2].mean()
    x0, y0 = centre - half
    x1, y1 = centre + half
    return np.array([[x0, y0, z], [x1, y0, z], [x0, y1, z]])


def cut_mouth_crops(frames: Sequence[np.ndarray], mats: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Warp the canonical mouth box of every frame to a raw 15x30 BGR crop: (N, 15, 30, 3) uint8.

    frames: N BGR uint8 images; mats: (N,4,4) canonical->frame pose matrices; box: from :func:`mouth_box`.
    """
    h, w = MOUTH_SHAPE[:2]
    dst = np.float32([[0, 0], [w, 0], [0, h]])
    out = np.empty((len(frames), h, w, 3), np.uint8)
    for i, frame in enumerate(frames):
        src = apply_pose(mats[i], box)[:, :2].astype(np.float32)
        aff = cv2.getAffineTransform(src, dst)
        out[i] = cv2.warpAffine(frame, aff, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return out


def process_crops(raw: np.ndarray) -> np.ndarray:
    """Raw BGR crops -> what the pixel basis models: grey (replicated to 3 channels, as the DH_live
    renderer uses the mouth prompt in grey), symmetrised and contrast-normalised; (N,15,30,3) float."""
    raw = np.asarray(raw, np.float64)
    grey = raw @ np.array([0.114, 0.587, 0.299])  # BGR -> luma
    return normalize_contrast(symmetrize(np.repeat(grey[..., None], 3, axis=-1)))


def fit_pixel_basis(crop_sets: Sequence[np.ndarray], openings: Optional[Sequence[np.ndarray]] = None,
                    n_components: int = N_COEFS, max_samples: int = 150_000, seed: int = 0) -> PixelBasis:
    """PCA of processed mouth crops (list of (N_i,15,30,3) from :func:`process_crops`).

    ``openings`` (per clip (N_i,) mouth opening) orient component 0 so that positive opens the mouth.
    """
    data = np.concatenate([np.asarray(c, np.float64).reshape(len(c), -1) for c in crop_sets])
    op = None if openings is None else np.concatenate([np.asarray(o, np.float64) for o in openings])
    if op is not None and len(op) != len(data):
        raise ValueError("openings must have one value per crop")
    if len(data) < n_components + 1:
        raise UserInputError(f"too few mouth crops ({len(data)}) to fit {n_components} components")
    if len(data) > max_samples:
        keep = np.random.default_rng(seed).choice(len(data), max_samples, replace=False)
        data = data[keep]
        op = None if op is None else op[keep]
    mean = data.mean(axis=0)
    _, s, vt = np.linalg.svd(data - mean, full_matrices=False)
    comps = vt[:n_components]
    direction = None if op is None else ((op - op.mean())[:, None] * (data - mean)).sum(0)
    comps = _fix_signs(comps[:, None, :], direction).reshape(n_components, -1)
    coefs = (data - mean) @ comps.T
    var = s ** 2
    info = {"frames": int(len(data)), "clips": len(crop_sets),
            "explained_variance_ratio": [float(v) for v in var[:n_components] / var.sum()]}
    return PixelBasis(mean, comps, coefs.std(axis=0), info)


def read_original_pca_pkl(path: Union[str, Path], *, allow_pickle: bool = False) -> PixelBasis:
    """Convert the original's sklearn ``pca.pkl`` (15x30x3 mouth PCA) into a :class:`PixelBasis`.

    Explicit opt-in: this unpickles the file, which can run arbitrary code, so pass
    ``allow_pickle=True`` only for a file you trust. Needs scikit-learn. The mean and the first 6
    components are left-right symmetrised as the original's ``pca_process`` does.
    """
    if not allow_pickle:
        raise UserInputError("reading a pickled PCA is opt-in: pass allow_pickle=True for a trusted file")

    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"PCA file not found: {p}")
    with open(p, "rb") as fh:
        pca = pickle.load(fh)
    comps = np.asarray(pca.components_[:N_COEFS], np.float64)
    if comps.shape[1] != int(np.prod(MOUTH_SHAPE)):
        raise UserInputError(f"{p} is not a 15x30x3 mouth PCA (components {comps.shape})")
    mean = symmetrize(np.asarray(pca.mean_, np.float64).reshape(MOUTH_SHAPE)).reshape(-1)
    comps = symmetrize(comps.reshape(-1, *MOUTH_SHAPE)).reshape(len(comps), -1)
    std = np.sqrt(np.asarray(pca.explained_variance_[:N_COEFS], np.float64))
    return PixelBasis(mean, comps, std, {"source": str(p.name)})


# ----------------------------------------------------------------------------------------------- io
def _save_basis(path: Union[str, Path], basis: Union[BlendshapeBasis, PixelBasis], **extra: np.ndarray) -> Path:
    """Save a basis: its ``mean``, ``components`` and ``coef_std`` as float32, ``info`` as its repr,
    plus its own ``extra`` arrays."""
    return _save_npz(path, **extra, mean=basis.mean.astype(np.float32), components=basis.components.astype(np.float32),
                     coef_std=basis.coef_std.astype(np.float32), info=np.array(repr(basis.info)))


def _save_npz(path: Union[str, Path], **arrays) -> Path:
    with atomic_write(path) as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


class _open_npz:
    """Open an .npz without pickles and check it has ``keys``; a clear error otherwise."""

    def __init__(self, path: Union[str, Path], keys: Sequence[str]):
        p = Path(path)
        if not p.is_file():
            raise UserInputError(f"basis file not found: {p}")
        try:
            self._data = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise UserInputError(f"cannot read basis file {p}: {exc}") from exc
        missing = [k for k in keys if k not in self._data.files]
        if missing:
            self._data.close()
            raise UserInputError(f"{p} is not a mouth basis (missing {', '.join(missing)})")

    def __enter__(self):
        return self._data

    def __exit__(self, *exc) -> None:
        self._data.close()


def basis_sweep_shapes(basis: BlendshapeBasis, n_std: float = 2.0) -> List[Tuple[int, float, np.ndarray]]:
    """(component, multiple of std, shape (K,3)) for mean - n_std*std, mean, mean + n_std*std of each mode."""
    out = []
    for i in range(len(basis.components)):
        for m in (-n_std, 0.0, n_std):
            coef = np.zeros(len(basis.components))
            coef[i] = m * basis.coef_std[i]
            out.append((i, m, basis.decode(coef)))
    return out


def blendshape_sweep_image(basis: BlendshapeBasis, n_std: float = 2.0, cell: int = 220) -> np.ndarray:
    """A BGR mosaic: one row per component, columns mean - n_std*std, mean, mean + n_std*std.

    Points are drawn in the x-y plane of the canonical space (lips red, other points grey)."""
    shapes = basis_sweep_shapes(basis, n_std)
    allxy = np.concatenate([s[:, :2] for _, _, s in shapes])
    lo, hi = allxy.min(0), allxy.max(0)
    scale = (cell - 20) / max(hi - lo)
    lips = set(MP_LIPS_INNER) | set(MP_LIPS_OUTER)
    rows = []
    for i in range(len(basis.components)):
        tiles = []
        for _, m, shape in [s for s in shapes if s[0] == i]:
            img = np.full((cell, cell, 3), 255, np.uint8)
            for lid, p in zip(basis.landmark_ids, shape):
                x, y = ((p[:2] - lo) * scale + 10).astype(int)
                colour = (0, 0, 220) if int(lid) in lips else (150, 150, 150)
                cv2.circle(img, (int(x), int(y)), 2 if int(lid) in lips else 1, colour, -1)
            cv2.putText(img, f"c{i} {m:+.0f} std", (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
            tiles.append(img)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def pixel_sweep_image(basis: PixelBasis, n_std: float = 2.0, zoom: int = 6) -> np.ndarray:
    """A BGR mosaic of decoded mouths: one row per component at -n_std, -n_std/2, 0, +n_std/2, +n_std std."""
    rows = []
    for i in range(len(basis.components)):
        tiles = []
        for m in np.linspace(-n_std, n_std, 5):
            coef = np.zeros(len(basis.components))
            coef[i] = m * basis.coef_std[i]
            img = cv2.resize(basis.decode(coef), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
            tiles.append(cv2.copyMakeBorder(img, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)
