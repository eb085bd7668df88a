"""MODA canonical space, head pose and data records on real clips."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from scipy.spatial.transform import Rotation

from talkingface import moda_geometry as g
from talkingface.run_utils import load_mean_face


def test_index_sets_are_mediapipes():
    import mediapipe as mp

    fm = mp.solutions.face_mesh

    def pts(conn):
        return sorted({i for e in conn for i in e})

    assert g.LIPS == pts(fm.FACEMESH_LIPS) and len(g.LIPS) == 40
    assert g.EYES == (pts(fm.FACEMESH_LEFT_IRIS) + pts(fm.FACEMESH_LEFT_EYE) + pts(fm.FACEMESH_LEFT_EYEBROW)
                      + pts(fm.FACEMESH_RIGHT_IRIS) + pts(fm.FACEMESH_RIGHT_EYE) + pts(fm.FACEMESH_RIGHT_EYEBROW))
    assert len(g.EYES) == 60 and len(g.NON_SEMANTIC) == 376


def test_canonical_round_trip_on_a_real_clip(grid_landmarks):
    lm = grid_landmarks
    dense, head7 = g.canonicalize(lm)
    assert dense.shape == lm.shape and head7.shape == (len(lm), 7)
    # the defining properties of the space: anchor at f, eye width 120
    assert np.allclose(dense[:, list(g.ANCHOR)].mean(1), g.CANON_OFFSET, atol=1e-9)
    assert np.allclose(g.eye_width(dense), 120.0)
    back = g.from_canonical(dense, head7)
    assert np.abs(back - lm).max() < 1e-4
    assert np.abs(g.to_canonical(lm, head7) - dense).max() < 1e-6


def _angle_deg(a, b):
    return np.degrees(Rotation.from_matrix(a @ b.transpose(0, 2, 1)).magnitude())


def test_head_pose_of_a_synthetic_rotation(grid_landmarks):
    rng = np.random.default_rng(0)
    n = 40
    # MODA convention: yaw, pitch, roll in degrees
    angles = np.stack([rng.uniform(-25, 25, n), rng.uniform(-15, 15, n), rng.uniform(-12, 12, n)], 1)
    q = g.euler_to_matrix(angles)
    # (a) the frontal mean face turned by R^T reads back exactly (yaw, pitch, roll)
    tmpl = load_mean_face()
    v = tmpl.copy()
    v[:, 2] *= -1
    a = v[list(g.ANCHOR)].mean(0)
    turned = np.einsum("nji,kj->nki", q, v - a) + a  # R^T (v - a) + a
    turned[..., 2] *= -1
    _, head7 = g.canonicalize(turned)
    assert np.abs(head7[:, :3] - angles).max() < 0.5
    # (b) a real frame rotated by Q_k: the recovered rotation is R_0 Q_k^T within 0.5 deg
    lm0 = grid_landmarks[0].copy()
    lm0[:, 2] *= -1
    a0 = lm0[list(g.ANCHOR)].mean(0)
    seq = np.einsum("nij,kj->nki", q, lm0 - a0) + a0
    seq[..., 2] *= -1
    _, h = g.canonicalize(seq)
    _, h0 = g.canonicalize(grid_landmarks[:1])
    expected = g.euler_to_matrix(h0[:, :3]) @ q.transpose(0, 2, 1)
    assert _angle_deg(g.euler_to_matrix(h[:, :3]), expected).max() < 0.5
    assert np.allclose(h[:, 6], h0[0, 6], rtol=1e-3)  # scale unchanged by rotation


def test_mean_face_placement():
    c = g.canonical_mean_face()
    assert np.allclose(c[list(g.ANCHOR)].mean(0), g.CANON_OFFSET)
    assert np.isclose(g.eye_width(c), 120.0)
    dense, head7 = g.canonicalize(load_mean_face()[None])
    assert np.abs(head7[0, :3]).max() < 1e-6 and np.abs(dense[0] - c).max() < 1e-6


def test_speech_pseudo_labels(sample_data):
    from talkingface.audio_model import AudioModel
    from talkingface.config.moda import BASIS_PATH, TEACHER_CHECKPOINT
    from talkingface.data.moda_clips import record_from_speech
    from talkingface.mouth_basis import BlendshapeBasis

    rec = record_from_speech(sample_data / "speech" / "arctic_a0007.wav", AudioModel(TEACHER_CHECKPOINT),
                             BlendshapeBasis.load(BASIS_PATH), "a7")
    assert rec.lip_only and rec.has_audio and rec.n_frames == int(np.ceil(rec.audio.size / 640))
    lips = rec.dense[:, g.LIPS]
    gap = np.linalg.norm(rec.dense[:, 14] - rec.dense[:, 13], axis=-1)
    assert lips.std(0).mean() > 0.5 and gap.max() - gap.min() > 3  # the mouth moves, in canonical px


def test_prep_script_errors(tmp_path, repo_root):
    r = subprocess.run([sys.executable, str(repo_root / "data_preparation_moda.py"), str(tmp_path / "nope.mp4"),
                        str(tmp_path / "out")], capture_output=True, text=True, cwd=repo_root)
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
