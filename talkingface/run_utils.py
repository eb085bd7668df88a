"""Pose maths in one place: head-pose matrices (fitted to landmarks or built from Euler angles), the
canonical mean face, temporal smoothing.

Conventions
- A pose matrix ``M`` (4x4) maps a point of the canonical (mean-face) space into the frame:
  ``p_frame = M @ [p_mean, 1]``; its 3x3 block is a rotation times a scale.
- The canonical mean face (:func:`load_mean_face`) is project-made from real videos
  (:func:`build_mean_face`) and expressed at the original's scale: its 141 main keypoints span
  x 506..908 and start at y 291 (y down, z toward the viewer negative, like MediaPipe), so the
  pixel offsets of the original's jaw-mask rule (:func:`jaw_mask_contour`) keep their meaning.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from talkingface.config.paths import MEAN_FACE as MEAN_FACE_PATH
from talkingface.utils import INDEX_FACE_OVAL, MAIN_KEYPOINTS, ROTATE_REF_INDEX, main_keypoints


#: Temporal kernel the original applies to the 16 pose-matrix entries.
POSE_SMOOTH_KERNEL = (0.03, 0.1, 0.74, 0.1, 0.03)
#: Temporal kernel of the web asset pack's keypoint smoothing (first/last 2 frames left raw).
KEYPOINT_SMOOTH_KERNEL = (0.02, 0.09, 0.78, 0.09, 0.02)

# Where the original's 141-point mean face sits (docs/REFERENCE.md §8): x 506..908, top y 291.
_CANON_X_MIN, _CANON_X_MAX, _CANON_Y_MIN = 506.0, 908.0, 291.0


# ------------------------------------------------------------------------------------------ smoothing
def smooth_sequence(x: np.ndarray, kernel: Sequence[float] = POSE_SMOOTH_KERNEL, keep_edges: bool = False) -> np.ndarray:
    """Smooth ``x`` (N, ...) along time with a symmetric FIR ``kernel`` (odd length).

    Edges use replicate padding; with ``keep_edges`` the first and last ``len(kernel)//2`` frames are
    returned unchanged instead (the web asset pack's rule). Works for any N >= 1.
    """
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    r = len(k) // 2
    if len(x) == 0 or r == 0:
        return x.copy()
    padded = np.concatenate([np.repeat(x[:1], r, axis=0), x, np.repeat(x[-1:], r, axis=0)], axis=0)
    out = np.zeros_like(x)
    for j, w in enumerate(k):
        out += w * padded[j:j + len(x)]
    if keep_edges:
        out[:r] = x[:r]
        out[len(x) - r:] = x[len(x) - r:]
    return out


# --------------------------------------------------------------------------------------- pose solving
def solve_pose(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """4x4 rotation-scale-translation mapping ``src`` (K,3) onto ``dst`` (K,3) (docs/REFERENCE.md §3.1 steps 1-2).

    A least-squares 3x4 affine is solved first; its 3x3 block is then made a proper rotation (times
    scale) through an SVD: if det(U Vt) < 0 the last row of Vt is flipped, and the block is rebuilt
    as U S Vt. The translation maps the source centroid onto the target centroid.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    design = np.hstack([src, np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(design, dst, rcond=None)  # (4, 3)
    u, s, vt = np.linalg.svd(sol[:3].T)
    if np.linalg.det(u @ vt) < 0:
        vt[-1] *= -1
    rot = u @ np.diag(s) @ vt
    mat = np.eye(4)
    mat[:3, :3] = rot
    mat[:3, 3] = dst.mean(axis=0) - rot @ src.mean(axis=0)
    return mat


def apply_pose(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply 4x4 ``mat`` (or (N,4,4)) to points (K,3) (or (N,K,3))."""
    pts = np.asarray(pts, np.float64)
    return pts @ np.swapaxes(mat[..., :3, :3], -1, -2) + mat[..., None, :3, 3]


def calc_face_mat(pts: np.ndarray, mean: np.ndarray, ref_index: Optional[Sequence[int]] = None,
                  smooth: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame head pose of a video against a mean face (docs/REFERENCE.md §3.1), for any N >= 1.

    pts: (N, K, 3) landmarks in pixels. mean: (K, 3) mean face in canonical units. ``ref_index``
    selects the points used to solve the pose (default all; pass ``ROTATE_REF_INDEX`` for the 141
    main keypoints to keep the lips out of it).

    Steps: solve each frame; normalise every frame into canonical space; denoise the normalised
    shapes with a PCA of min(25, N // 20) components (skipped for N < 20, where the original
    crashed); re-solve each frame against its denoised shape; smooth the matrices over time.

    Returns ``(mats (N,4,4), normalized (N,K,3), personal_mean (K,3))``: normalised points are the
    frame points mapped back through the final matrices; the personal mean is the mean denoised shape.
    """
    pts = np.asarray(pts, np.float64)
    mean = np.asarray(mean, np.float64)
    if pts.ndim != 3 or pts.shape[1:] != mean.shape:
        raise ValueError(f"pts {pts.shape} and mean {mean.shape} do not match")
    idx = np.arange(mean.shape[0]) if ref_index is None else np.asarray(ref_index)
    n = len(pts)
    first = np.stack([solve_pose(mean[idx], p[idx]) for p in pts])
    normalized = apply_pose(np.linalg.inv(first), pts)
    n_comp = min(25, n // 20)
    if n_comp >= 1:
        # Lazy: scikit-learn takes about a second to import; only this path needs it.
        from sklearn.decomposition import PCA

        flat = normalized.reshape(n, -1)
        pca = PCA(n_components=n_comp, svd_solver="full")  # deterministic (no randomized SVD)
        denoised = pca.inverse_transform(pca.fit_transform(flat)).reshape(normalized.shape)
    else:
        denoised = normalized
    personal_mean = denoised.mean(axis=0)
    mats = np.stack([solve_pose(d[idx], p[idx]) for d, p in zip(denoised, pts)])
    if smooth:
        mats = smooth_sequence(mats.reshape(n, 16), POSE_SMOOTH_KERNEL).reshape(n, 4, 4)
    normalized = apply_pose(np.linalg.inv(mats), pts)
    return mats, normalized, personal_mean


def head_yaw(landmarks: np.ndarray) -> np.ndarray:
    """Head yaw in degrees of face-mesh landmarks, from the rigid pose against the canonical mean face.

    landmarks: (..., 478, 3) or (..., 141, 3) in pixels (x, y, z*width). The pose is solved on the
    main keypoints that do not move with the mouth (``ROTATE_REF_INDEX``); yaw is the rotation about
    the vertical axis: 0 frontal, about +-90 a profile (the sign says which way). Returns (...,).
    """
    pts = main_keypoints(landmarks)
    flat = pts.reshape(-1, *pts.shape[-2:])
    mean = load_mean_face_main()[ROTATE_REF_INDEX]
    out = np.empty(len(flat))
    for i, p in enumerate(flat):
        rot = solve_pose(mean, p[ROTATE_REF_INDEX])[:3, :3]
        rot = rot / np.cbrt(np.linalg.det(rot))
        out[i] = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    return out.reshape(pts.shape[:-2])


# ------------------------------------------------------------------------------------------ mean face
def load_mean_face(path: Optional[Path] = None) -> np.ndarray:
    """The project's canonical 478-point mean face (478, 3), float64, at the original's scale."""
    with np.load(path or MEAN_FACE_PATH) as data:
        return data["mean_face"].astype(np.float64)


def load_mean_face_main() -> np.ndarray:
    """The canonical mean face restricted to the 141 main keypoints (141, 3)."""
    return load_mean_face()[MAIN_KEYPOINTS]


def _similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Best similarity transform (rotation, uniform scale, translation) of src onto dst; returns src mapped."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    corr = np.diag([1.0, 1.0, d])
    rot = u @ corr @ vt
    scale = (s * np.diag(corr)).sum() / (a ** 2).sum()
    return scale * a @ rot.T + mu_d


def build_mean_face(landmark_sets: Sequence[np.ndarray], iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes mean of many face meshes, placed at the canonical scale.

    landmark_sets: arrays (N_i, 478, 3) of pixel landmarks (frames of real videos). Every frame is
    similarity-aligned to the running mean, which is re-estimated ``iterations`` times; the result is
    then scaled and shifted so its 141 main keypoints span x 506..908 with top y 291.
    """
    shapes = np.concatenate([np.asarray(s, np.float64) for s in landmark_sets], axis=0)
    shapes = shapes[np.isfinite(shapes).all(axis=(1, 2))]
    if len(shapes) == 0:
        raise ValueError("no finite landmark frames to build a mean face from")
    ref = shapes[0] - shapes[0].mean(0)
    for _ in range(iterations):
        aligned = np.stack([_similarity_align(s, ref) for s in shapes])
        ref = aligned.mean(0)
        ref -= ref.mean(0)
        ref /= np.sqrt((ref ** 2).sum())
    main = ref[MAIN_KEYPOINTS]
    scale = (_CANON_X_MAX - _CANON_X_MIN) / (main[:, 0].max() - main[:, 0].min())
    out = ref * scale
    main = out[MAIN_KEYPOINTS]
    out[:, 0] += _CANON_X_MIN - main[:, 0].min()
    out[:, 1] += _CANON_Y_MIN - main[:, 1].min()
    out[:, 2] -= out[:, 2].mean()
    return out


# ------------------------------------------------------------------------------------ DH_live jaw mask
def jaw_mask_contour(normalized_main: np.ndarray, personal_mean_main: np.ndarray) -> np.ndarray:
    """The 21-point jaw mask contour in canonical space (docs/REFERENCE.md §3.1 ``video_pts_process``).

    normalized_main: (N, 141, 3) pose-normalised main keypoints of a video; personal_mean_main (141, 3).
    The face-oval points are pushed outward from their per-video extremes so the contour covers the
    widest jaw opening of the video: the first 10 (one side) down by 5, 7, ..., 23 and in toward the
    chin from the max x; the last 10 symmetric from the min x; the chin (point 10) down by 25.
    Returns (21, 3); project it per frame with the pose matrices (:func:`apply_pose`).
    """
    oval = np.asarray(normalized_main)[:, INDEX_FACE_OVAL]
    x_max, x_min, y_max = oval[..., 0].max(0), oval[..., 0].min(0), oval[..., 1].max(0)
    contour = np.asarray(personal_mean_main)[INDEX_FACE_OVAL].copy()
    for i in range(10):
        contour[i, 1] = y_max[i] + 5 + 2 * i
        contour[i, 0] = x_max[i] - (9 - i)
        j = 20 - i
        contour[j, 1] = y_max[j] + 5 + 2 * i
        contour[j, 0] = x_min[j] + (9 - i)
    contour[10, 1] = y_max[10] + 25
    return contour


# ------------------------------------------------------------------------------ Euler-angle poses
def rotation_matrix(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """3x3 rotation R = Rz(roll) Ry(yaw) Rx(pitch), angles in degrees (x right, y down, z away)."""
    a, b, c = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotation_angles(rot: np.ndarray) -> Tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a rotation (3x3) or of a pose matrix's scaled 3x3 block."""
    r = np.asarray(rot, np.float64)[:3, :3]
    r = r / np.cbrt(np.linalg.det(r))
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(pitch), float(yaw), float(roll)


def pose_matrix(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, scale: float = 1.0,
                centre: Optional[Sequence[float]] = None, target: Optional[Sequence[float]] = None) -> np.ndarray:
    """4x4 pose: rotate and scale about model point ``centre`` and put it at ``target`` (default: origin)."""
    mat = np.eye(4)
    mat[:3, :3] = scale * rotation_matrix(pitch, yaw, roll)
    c = np.zeros(3) if centre is None else np.asarray(centre, np.float64)
    t = np.zeros(3) if target is None else np.asarray(target, np.float64)
    mat[:3, 3] = t - mat[:3, :3] @ c
    return mat
