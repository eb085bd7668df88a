"""MODA's canonical face space, its 7-value head pose and the landmark subsets it predicts.

Canonical space (512-px units, the released MODA meta's): for a frame's MediaPipe mesh ``v``
(478, 3) in pixels (x right, y down, z = MediaPipe z * width), negate z, take the anchor
``a = mean(v[50], v[280], v[168])`` (cheekbones and nose bridge), rotate ``u = Rot (v - a)``, scale
``s = 120 / mean |u_x(left eye_i) - u_x(right eye_i)|`` over the 16 paired eye-contour points and
shift: ``c = s u + f`` with ``f = (256, 232, 128)``. The inverse is exact:
``v = Rot^T (c - f) / s + a`` (z negated back).

Head pose: ``Rot`` is the rotation that turns the frame's face into the project's frontal mean face
(:func:`talkingface.run_utils.load_mean_face`), solved with :func:`talkingface.run_utils.solve_pose`
on the rigid upper-face points (:func:`talkingface.mouth_basis.rigid_ids`). MODA's convention is
``Rot = Rotation.from_euler('xyz', [pitch, yaw, roll], degrees=True)``, so the Euler angles
``(e_x, e_y, e_z) = as_euler('xyz')`` are stored as yaw = e_y, pitch = e_x, roll = e_z.
``head7 = [yaw, pitch, roll (deg), a_x, a_y, a_z (px, z negated), s]``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from talkingface.mouth_basis import rigid_ids
from talkingface.run_utils import load_mean_face, solve_pose
from talkingface.utils import MP_LIPS_40

# MediaPipe FaceMesh 0.10.14 connection-set endpoints, each sorted (tests check them against mediapipe).
LEFT_IRIS = [474, 475, 476, 477]
LEFT_EYE = [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
LEFT_EYEBROW = [276, 282, 283, 285, 293, 295, 296, 300, 334, 336]
RIGHT_IRIS = [469, 470, 471, 472]
RIGHT_EYE = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]
RIGHT_EYEBROW = [46, 52, 53, 55, 63, 65, 66, 70, 105, 107]

#: MODA's 40 lip points (FACEMESH_LIPS, sorted) and 60 eye points (iris, eye, brow; left then right).
LIPS = sorted(MP_LIPS_40)
EYES = LEFT_IRIS + LEFT_EYE + LEFT_EYEBROW + RIGHT_IRIS + RIGHT_EYE + RIGHT_EYEBROW
#: The other 376 points of 0..467 (jaw, cheeks, nose, forehead): FaCo's "non-semantic" set.
NON_SEMANTIC = [i for i in range(468) if i not in set(LIPS) | set(EYES)]
ANCHOR = (50, 280, 168)
CANON_SIZE = 512
CANON_OFFSET = np.array([CANON_SIZE / 2, np.floor(CANON_SIZE / 2.2), CANON_SIZE / 4])  # (256, 232, 128)
EYE_WIDTH = 120.0


def _flip_z(v: np.ndarray) -> np.ndarray:
    out = np.array(v, np.float64, copy=True)
    out[..., 2] *= -1
    return out


def euler_to_matrix(yaw_pitch_roll: np.ndarray) -> np.ndarray:
    """(..., 3) [yaw, pitch, roll] degrees -> (..., 3, 3) ``from_euler('xyz', [pitch, yaw, roll])``."""
    e = np.asarray(yaw_pitch_roll, np.float64)
    flat = e.reshape(-1, 3)[:, [1, 0, 2]]
    return Rotation.from_euler("xyz", flat, degrees=True).as_matrix().reshape(e.shape[:-1] + (3, 3))


def matrix_to_euler(rot: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) [yaw, pitch, roll] degrees (inverse of :func:`euler_to_matrix`)."""
    r = np.asarray(rot, np.float64)
    e = Rotation.from_matrix(r.reshape(-1, 3, 3)).as_euler("xyz", degrees=True)
    return e[:, [1, 0, 2]].reshape(r.shape[:-2] + (3,))


@lru_cache(maxsize=1)
def _template() -> Tuple[np.ndarray, np.ndarray]:
    """The frontal reference (478, 3, z negated) and its rigid ids."""
    mean = load_mean_face()
    return _flip_z(mean), rigid_ids(mean)


def solve_rotations(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame rotation (N, 3, 3) turning each frame (N, 478, 3 px) into the frontal mean face."""
    tmpl, ids = _template()
    out = []
    for v in _flip_z(landmarks):
        m = solve_pose(v[ids], tmpl[ids])[:3, :3]
        u, _, vt = np.linalg.svd(m)
        out.append(u @ vt)
    return np.stack(out)


def eye_width(u: np.ndarray) -> np.ndarray:
    """Mean |x| distance of the 16 paired eye-contour points of rotated meshes (..., 478, 3) -> (...)."""
    return np.abs(u[..., LEFT_EYE, 0] - u[..., RIGHT_EYE, 0]).mean(-1)


def canonicalize(landmarks: np.ndarray, yaw_pitch_roll: np.ndarray = None) -> Tuple[np.ndarray, np.ndarray]:
    """Frame meshes (N, 478, 3) px -> (canonical meshes (N, 478, 3) in 512-px units, head7 (N, 7)).

    The pose is solved with :func:`solve_rotations` unless ``yaw_pitch_roll`` (N, 3) is given.
    Extra points (e.g. shoulders, (N, K, 3)) follow the same transform with :func:`to_canonical`.
    """
    v = _flip_z(landmarks)
    rot = solve_rotations(landmarks) if yaw_pitch_roll is None else euler_to_matrix(yaw_pitch_roll)
    anchor = v[:, ANCHOR].mean(1)
    u = np.einsum("nij,nkj->nki", rot, v - anchor[:, None])
    scale = EYE_WIDTH / eye_width(u)
    head7 = np.concatenate([matrix_to_euler(rot), anchor, scale[:, None]], 1)
    return scale[:, None, None] * u + CANON_OFFSET, head7


def to_canonical(points: np.ndarray, head7: np.ndarray) -> np.ndarray:
    """Any frame points (N, K, 3) px (MediaPipe z sign) -> canonical with the given head7 (N, 7)."""
    rot = euler_to_matrix(head7[:, :3])
    u = np.einsum("nij,nkj->nki", rot, _flip_z(points) - head7[:, None, 3:6])
    return head7[:, 6, None, None] * u + CANON_OFFSET


def from_canonical(canon: np.ndarray, head7: np.ndarray) -> np.ndarray:
    """Exact inverse: canonical points (N, K, 3) + head7 (N, 7) -> frame points (N, K, 3) px."""
    rot = euler_to_matrix(head7[:, :3])
    u = (np.asarray(canon, np.float64) - CANON_OFFSET) / head7[:, 6, None, None]
    return _flip_z(np.einsum("nji,nkj->nki", rot, u) + head7[:, None, 3:6])


def canonical_mean_face() -> np.ndarray:
    """The project's frontal mean face placed in MODA's canonical space (478, 3): the fixed similarity
    that also maps the blendshape basis (mean-face units) onto canonical lips."""
    return mean_face_to_canonical(load_mean_face())


def mean_face_to_canonical(points: np.ndarray) -> np.ndarray:
    """Points in the project's mean-face units (K, 3) or (..., K, 3), indexed like the 478 mesh when
    K = 478, -> canonical units with the mean face's own anchor and eye width (no rotation)."""
    mean = load_mean_face()
    v = _flip_z(mean)
    anchor = v[list(ANCHOR)].mean(0)
    scale = EYE_WIDTH / eye_width(v - anchor)
    return scale * (_flip_z(points) - anchor) + CANON_OFFSET


def subsets(dense: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Canonical meshes (..., 478, 3) -> (lips (..., 40, 3), eyes (..., 60, 3))."""
    d = np.asarray(dense)
    return d[..., LIPS, :], d[..., EYES, :]
