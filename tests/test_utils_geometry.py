"""Landmark groups, measures, crops and the pose solver."""
import numpy as np
import pytest

from talkingface import utils as U
from talkingface.run_utils import (apply_pose, calc_face_mat, jaw_mask_contour, load_mean_face,
                                   load_mean_face_main, smooth_sequence, solve_pose)


def test_index_groups_match_reference():
    assert len(U.MAIN_KEYPOINTS) == 141 and len(set(U.MAIN_KEYPOINTS)) == 141
    sizes = [len(g) for g in (U.MP_LEFT_EYEBROW, U.MP_RIGHT_EYEBROW, U.MP_NOSE_EDGE, U.MP_NOSE_MID,
                              U.MP_LIPS_INNER, U.MP_LIPS_OUTER, U.MP_LEFT_EYE, U.MP_RIGHT_EYE,
                              U.MP_FACE_OVAL_LOWER, U.MP_MUSCLE)]
    assert sizes == [10, 10, 11, 5, 20, 20, 16, 16, 21, 12]
    assert [U.MAIN_KEYPOINTS[i] for i in U.INDEX_LIPS_INNER] == U.MP_LIPS_INNER
    assert U.MAIN_KEYPOINTS[U.INDEX_NOSE_EDGE[5]] == 2
    assert len(U.ROTATE_REF_INDEX) == 101 and not set(U.ROTATE_REF_INDEX) & set(U.INDEX_LIPS)
    assert np.array(U.MP_LIPS_RINGS).shape == (4, 20)
    assert [r[0] for r in U.MP_LIPS_RINGS] == [291, 306, 292, 308]


def test_lip_rings_follow_the_mesh():
    import mediapipe as mp

    edges = {tuple(sorted(e)) for e in mp.solutions.face_mesh_connections.FACEMESH_TESSELATION}
    rings = np.array(U.MP_LIPS_RINGS)
    for ring in rings:
        assert all(tuple(sorted((ring[i], ring[(i + 1) % 20]))) in edges for i in range(20))
    for a, b in zip(rings[:-1], rings[1:]):
        assert all(tuple(sorted((x, y))) in edges for x, y in zip(a, b))


def test_mouth_opening_tracks_real_speech(grid_landmarks):
    opening = U.mouth_opening(grid_landmarks)
    assert opening.shape == (75,)
    assert opening[:8].max() < 0.02  # GRID clips start with a closed mouth
    assert opening.max() > 0.08  # and open it while speaking


def test_crop_face_and_feature_map(grid_landmarks):
    kps = U.main_keypoints(grid_landmarks[0])
    x0, y0, x1, y1 = U.crop_face(kps)
    assert x1 - x0 == y1 - y0 > 80
    lips = kps[U.INDEX_LIPS, :2]
    assert (lips[:, 0] > x0).all() and (lips[:, 0] < x1).all() and (lips[:, 1] < y1).all()
    fmap = U.draw_face_feature_map(kps, (360, 288))
    assert fmap.shape == (288, 360, 3)
    assert fmap[..., 0].max() == 255 and fmap[..., 2].max() == 255  # mouth (blue) and oval (red) drawn


def test_safe_crop_pads_outside():
    img = np.arange(100, dtype=np.uint8).reshape(10, 10, 1).repeat(3, 2)
    crop = U.safe_crop(img, (-2, -2, 4, 4))
    assert crop.shape == (6, 6, 3)
    assert (crop[:2] == 0).all() and crop[2, 2, 0] == img[0, 0, 0]


def test_solve_pose_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(50, 3)) * 100
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    mat = np.eye(4)
    mat[:3, :3] = 0.5 * rot
    mat[:3, 3] = [10, -20, 5]
    dst = apply_pose(mat, src)
    np.testing.assert_allclose(solve_pose(src, dst), mat, atol=1e-8)


@pytest.mark.parametrize("n", [1, 7, 75])
def test_calc_face_mat_any_length(grid_landmarks, n):
    kps = U.main_keypoints(grid_landmarks[:n])
    mats, norm, personal = calc_face_mat(kps, load_mean_face_main(), ref_index=U.ROTATE_REF_INDEX)
    assert mats.shape == (n, 4, 4) and norm.shape == (n, 141, 3) and personal.shape == (141, 3)
    np.testing.assert_allclose(apply_pose(mats, norm), kps, atol=1e-6)
    # normalised rigid points sit close to the canonical mean face (units: ~400 across the face)
    resid = np.abs(norm[:, U.ROTATE_REF_INDEX] - load_mean_face_main()[U.ROTATE_REF_INDEX]).mean()
    assert resid < 8.0


def test_mean_face_is_canonical():
    mean = load_mean_face()
    assert mean.shape == (478, 3)
    main = mean[U.MAIN_KEYPOINTS]
    assert main[:, 0].min() == pytest.approx(506, abs=0.5) and main[:, 0].max() == pytest.approx(908, abs=0.5)
    assert main[:, 1].min() == pytest.approx(291, abs=0.5)
    # upright face: eyes above the mouth above the chin
    assert mean[33, 1] < mean[13, 1] < mean[152, 1]


def test_jaw_contour_lies_outside_the_oval(grid_landmarks):
    kps = U.main_keypoints(grid_landmarks)
    mats, norm, personal = calc_face_mat(kps, load_mean_face_main(), ref_index=U.ROTATE_REF_INDEX)
    contour = jaw_mask_contour(norm, personal)
    assert contour.shape == (21, 3)
    oval_max_y = norm[:, U.INDEX_FACE_OVAL, 1].max(0)
    assert (contour[:, 1] > oval_max_y).all()


def test_smooth_sequence_keeps_constants_and_edges():
    x = np.ones((6, 4))
    np.testing.assert_allclose(smooth_sequence(x), x)
    ramp = np.arange(10.0)[:, None]
    out = smooth_sequence(ramp, (0.02, 0.09, 0.78, 0.09, 0.02), keep_edges=True)
    np.testing.assert_allclose(out[:2], ramp[:2])
    np.testing.assert_allclose(out[2:-2], ramp[2:-2])  # symmetric kernel keeps a ramp
    assert smooth_sequence(np.ones((1, 3))).shape == (1, 3)


def test_safe_crop_replicate_repeats_edges():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    crop = U.safe_crop(img, (-2, 2, 3, 6), border="replicate")
    assert crop.shape == (4, 5)
    assert (crop[:, 0] == crop[:, 2]).all() and (crop[-1] == crop[1]).all()
    assert (crop[0, 2:] == img[2, :3]).all()
