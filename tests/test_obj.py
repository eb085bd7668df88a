"""OBJ handling, face-mesh topology, the wrap mesh and its committed assets, fusion masks, image helpers."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mini_live.obj.face_mesh import face_mesh_triangles, mesh_edges, tessellation_edges
from mini_live.obj.obj_io import nearest_vertex, parse_obj_lines, read_obj, reindex_obj, write_obj
from mini_live.obj.utils import (DATA_DIR, bs_table_from_basis, load_bs_table, load_face_triangles,
                                 load_neutral_face, load_wrap_template)
from mini_live.obj.wrap_utils import (LABEL_ANCHOR, LABEL_LOWER_LIP, LABEL_LOWER_TEETH, LABEL_SKIN,
                                      LABEL_UPPER_LIP, LABEL_UPPER_TEETH, WrapMesh, generate_wrap_obj,
                                      newWrapModel, normalizeLips)
from talkingface.errors import UserInputError
from talkingface.run_utils import load_mean_face
from talkingface.utils import MP_FACE_OVAL_LOWER, MP_LIPS_RINGS


@pytest.fixture(scope="module")
def original_obj_dir(sample_data):
    d = sample_data / "dh_live" / "mini_live" / "obj" / "obj_mediapipe"
    if not d.is_dir():
        pytest.skip("original meshes not in the sample data")
    return d


# ------------------------------------------------------------------------------------------ OBJ I/O
def test_original_meshes_read(original_obj_dir):
    expect = {"face3D": (478, 860), "wrap": (209, 356), "face_wrap_entity": (266, 430), "teeth_upper": (18, 16),
              "teeth_lower": (18, 16), "modified_teeth_upper": (18, 16), "modified_teeth_lower": (18, 16)}
    for name, (nv, nf) in expect.items():
        mesh = read_obj(original_obj_dir / f"{name}.obj")
        assert (len(mesh.v), len(mesh.faces)) == (nv, nf), name
    entity = read_obj(original_obj_dir / "face_wrap_entity.obj")
    assert entity.v_extra.shape == (266, 2)


def test_reindex_teeth_matches_original_modified(original_obj_dir):
    raw = read_obj(original_obj_dir / "teeth_upper.obj")
    assert not np.array_equal(raw.faces[:, :, 0], raw.faces[:, :, 1])  # separate v / vt indices
    fixed = reindex_obj(raw)
    assert len(fixed.v) == 18 and len(fixed.faces) == 16
    assert np.array_equal(fixed.faces[:, :, 0], fixed.faces[:, :, 1])
    ref = read_obj(original_obj_dir / "modified_teeth_upper.obj")
    idx, dist = nearest_vertex(fixed.v, ref.v, return_distance=True)
    assert dist.max() < 1e-5 and sorted(idx) == list(range(18))
    assert np.allclose(fixed.vt, ref.vt[idx])
    # the same triangles (as position triples) as the original's re-indexed file
    tri = {tuple(sorted(idx[f])) for f in fixed.triangles}
    assert tri == {tuple(sorted(f)) for f in ref.triangles}


def test_obj_round_trip_and_errors(tmp_path):
    mesh = parse_obj_lines(["v 0 0 0 1", "v 1 0 0 2", "v 0 1 0 3", "v 1 1 0 4", "vt 0 0", "vt 1 1",
                            "vn 0 0 1", "f 1/1/1 2/2/1 3/1/1 4/2/1"])  # a quad -> 2 triangles
    assert mesh.faces.shape == (2, 3, 3) and mesh.v_extra[:, 0].tolist() == [1, 2, 3, 4]
    write_obj(tmp_path / "m.obj", mesh, header="test")
    back = read_obj(tmp_path / "m.obj")
    assert np.allclose(back.v, mesh.v) and np.array_equal(back.faces, mesh.faces)
    assert np.allclose(back.v_extra, mesh.v_extra)
    with pytest.raises(UserInputError):
        parse_obj_lines(["v 0 0 0", "f 1 2 3"])
    with pytest.raises(UserInputError):
        read_obj(tmp_path / "missing.obj")


def test_nearest_vertex_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(500, 3))
    brute = ((a[:, None] - b[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(nearest_vertex(a, b), brute)


# ----------------------------------------------------------------------------------- face topology
def test_face_triangles_from_tessellation():
    tris = load_face_triangles()
    assert tris.shape == (852, 3)
    assert {tuple(e) for e in mesh_edges(tris)} == tessellation_edges()
    # consistently wound: every interior edge is walked once in each direction
    directed = Counter((int(t[k]), int(t[(k + 1) % 3])) for t in tris for k in range(3))
    assert max(directed.values()) == 1
    assert np.array_equal(np.sort(tris, axis=1), np.sort(face_mesh_triangles(load_mean_face()), axis=1))


# --------------------------------------------------------------------------------------- wrap mesh
def test_committed_template_is_up_to_date_and_labelled():
    template = load_wrap_template()
    fresh = generate_wrap_obj(load_mean_face(), load_face_triangles(), template.config)
    assert np.allclose(fresh.vertices, template.vertices) and np.array_equal(fresh.faces, template.faces)
    counts = Counter(template.labels.tolist())
    assert counts[LABEL_UPPER_LIP] == 44 and counts[LABEL_LOWER_LIP] == 36
    assert counts[LABEL_UPPER_TEETH] == 18 and counts[LABEL_LOWER_TEETH] == 18
    assert counts[LABEL_SKIN] > 50 and counts[LABEL_ANCHOR] >= 21
    ring = np.flatnonzero(template.ring_source >= 0)
    assert len(ring) == 21 and (template.labels[ring] == LABEL_ANCHOR).all()
    assert template.mp_ids[template.ring_source[ring]].tolist() == MP_FACE_OVAL_LOWER
    assert set(np.concatenate(MP_LIPS_RINGS)) <= set(template.target_ids.tolist())
    assert (template.mp_ids[: template.num_targets] >= 0).all() and (template.mp_ids[template.num_targets:] < 0).all()
    # text form round trip (the asset-pack lines)
    back = WrapMesh.from_obj_lines(template.obj_lines(decimals=6), face_vertices=load_mean_face())
    assert back.num_targets == template.num_targets and np.array_equal(back.mp_ids, template.mp_ids)
    assert np.array_equal(back.faces, template.faces)


def test_original_wrap_entity_labels(original_obj_dir):
    face3d = read_obj(original_obj_dir / "face3D.obj").v
    mesh = WrapMesh.from_obj_lines(open(original_obj_dir / "face_wrap_entity.obj"), face_vertices=face3d)
    assert mesh.num_targets == 209 and len(mesh.faces) == 430
    counts = Counter(np.round(mesh.labels, 2).tolist())
    assert counts == {-1.0: 44, 0.0: 106, 2.0: 44, 2.01: 36, 3.0: 18, 4.0: 18}
    # its lips are the same four MediaPipe rings as ours
    lips = set(mesh.mp_ids[np.isin(np.round(mesh.labels, 2), [2.0, 2.01])].tolist())
    assert lips == set(np.concatenate(MP_LIPS_RINGS).tolist())


def test_normalize_lips_pairs_and_gap():
    mean = load_mean_face()
    neutral = load_neutral_face()
    inner = MP_LIPS_RINGS[3]
    closed = normalizeLips(mean, neutral)
    for k in range(1, 10):
        up, low = inner[k], inner[20 - k]
        assert closed[low, 1] - closed[up, 1] == pytest.approx(neutral[low, 1] - neutral[up, 1], abs=1e-9)
    # the pair fix: ring position 1 (next to the right corner, upper) pairs with 19 (lower), never the corner
    moved = np.flatnonzero(np.abs(closed - mean).sum(1) > 1e-9)
    corners = [ring[0] for ring in MP_LIPS_RINGS] + [ring[10] for ring in MP_LIPS_RINGS]
    assert not set(corners) & set(moved.tolist())
    assert len(moved) == 4 * 18
    assert np.allclose(np.delete(closed, moved, 0), np.delete(mean, moved, 0))


def test_new_wrap_model_follows_personal_face():
    template = load_wrap_template()
    rng = np.random.default_rng(1)
    personal = load_mean_face() + rng.normal(scale=2.0, size=(478, 3))
    mesh = newWrapModel(template, personal)
    assert np.allclose(mesh.vertices[: mesh.num_targets], personal[mesh.target_ids])
    ring = np.flatnonzero(mesh.ring_source >= 0)
    src = mesh.vertices[mesh.ring_source[ring]]
    assert np.allclose(mesh.vertices[ring, 2], src[:, 2])
    # ring points lie outside their oval points, away from the oval centroid
    centre = src[:, :2].mean(0)
    assert (np.linalg.norm(mesh.vertices[ring, :2] - centre, axis=1) > np.linalg.norm(src[:, :2] - centre, axis=1)).all()
    teeth = mesh.labels >= LABEL_UPPER_TEETH
    lips_x = personal[[61, 291], 0]
    assert lips_x.min() - 1 < mesh.vertices[teeth, 0].min() and mesh.vertices[teeth, 0].max() < lips_x.max() + 1
    assert np.array_equal(mesh.faces, template.faces) and template.vertices is not mesh.vertices
    with pytest.raises(UserInputError):
        newWrapModel(template, personal[:100])


def test_bs_table_columns():
    template = load_wrap_template()
    table = load_bs_table()
    assert table.shape == (6, len(template.vertices), 3) and table.dtype == np.float32
    assert np.abs(table[:, template.labels == LABEL_ANCHOR]).max() == 0
    up = np.flatnonzero(template.labels == LABEL_UPPER_TEETH)
    low = np.flatnonzero(template.labels == LABEL_LOWER_TEETH)
    centre = 2 * (len(up) // 4)  # top row of the middle column
    pos = {int(m): v for v, m in enumerate(template.mp_ids) if m >= 0}
    # the outer rows follow the inner lips (upper band top: upper lip 13; lower band bottom: lower lip 14)
    assert np.allclose(table[:, up[centre], 1], table[:, pos[13], 1], atol=2e-3)
    assert np.allclose(table[:, low[centre + 1], 1], table[:, pos[14], 1], atol=2e-3)
    # opening the mouth (component 0, y down) widens the cavity between the incisal edges ...
    edge_gap = table[0, low[centre], 1] - table[0, up[centre + 1], 1]
    lip_gap = table[0, pos[14], 1] - table[0, pos[13], 1]
    assert lip_gap > 0 and 0 < edge_gap < lip_gap
    # ... by the lip gap's share not taken by the teeth
    share = 1.0 - template.config.upper_teeth_share - template.config.lower_teeth_share
    assert edge_gap == pytest.approx(share * lip_gap, rel=0.05)

    class Basis:  # a basis without the inner lips cannot drive the teeth
        landmark_ids = np.array([1, 2, 3])
        components = np.zeros((6, 3, 3))

    with pytest.raises(UserInputError):
        bs_table_from_basis(Basis(), template)


def test_assets_are_committed_files():
    for name in ("face_mesh.npz", "wrap_template.npz", "bs_table.npz", "face_wrap_entity.obj",
                 "teeth_upper.obj", "teeth_lower.obj"):
        assert (DATA_DIR / name).is_file(), name
    teeth = read_obj(DATA_DIR / "teeth_upper.obj")
    assert len(teeth.v) == 18 and len(teeth.faces) == 16 and len(teeth.vt) == 18


# ---------------------------------------------------------------------------------------- masks
def test_fusion_masks_shaped(tmp_path):
    from mini_live.generate_fusion_mask import face_fusion_mask, load_fusion_masks, main, mouth_fusion_mask

    face, mouth = load_fusion_masks()
    assert face.shape == (128, 128) and mouth.shape == (72, 72)
    assert np.array_equal(np.round(face * 255).astype(np.uint8), face_fusion_mask())
    assert np.array_equal(np.round(mouth * 255).astype(np.uint8), mouth_fusion_mask())
    assert face[0].max() == 0 and face[16:-16, 16:-16].min() == 1.0 and face[0 + 8, 64] == pytest.approx(128 / 255)
    assert mouth[36, 36] == pytest.approx(252 / 255) and mouth[0].max() < 0.25 and mouth[:, 0].max() < 0.25
    assert (np.diff(mouth[36, :36]) >= 0).all()  # monotone feather from the edge inward
    with pytest.raises(SystemExit) as exc:
        from talkingface.util.cli import run_cli

        run_cli(main, ["--out", str(tmp_path)])
    assert exc.value.code == 0 and (tmp_path / "face_fusion_mask.png").is_file()
    assert (tmp_path / "mouth_fusion_mask.png").is_file()


def test_fusion_masks_match_the_original(sample_data):
    """The code reproduces the original's masks (read from the sample data, never committed)."""
    import cv2

    from mini_live.generate_fusion_mask import face_fusion_mask, mouth_fusion_mask

    orig_face = cv2.imread(str(sample_data / "dh_live/mini_live/face_fusion_mask.png"), cv2.IMREAD_UNCHANGED)
    orig_mouth = cv2.imread(str(sample_data / "dh_live/mini_live/mouth_fusion_mask.png"), cv2.IMREAD_UNCHANGED)
    orig_face = orig_face if orig_face.ndim == 2 else orig_face[..., 0]
    orig_mouth = orig_mouth if orig_mouth.ndim == 2 else orig_mouth[..., 0]
    assert np.array_equal(face_fusion_mask(), orig_face)
    assert orig_mouth.shape == (72, 72)
    assert np.abs(mouth_fusion_mask().astype(int) - orig_mouth.astype(int)).mean() < 6


# ------------------------------------------------------------------------------------ image helpers
def test_image_helpers():
    from mini_live.obj.image_utils import drawMouth
    from talkingface.data.mouth_crop import standard_image, standard_points, video_mouth_rects
    from talkingface.run_utils import pose_matrix, rotation_angles, rotation_matrix

    r = rotation_matrix(10, -20, 5)
    assert np.allclose(r @ r.T, np.eye(3)) and np.allclose(rotation_angles(r), (10, -20, 5))
    m = pose_matrix(0, 30, 0, scale=2.0, centre=[1, 2, 3], target=[10, 20, 30])
    assert np.allclose(m[:3, :3] @ [1, 2, 3] + m[:3, 3], [10, 20, 30])
    assert np.allclose(rotation_angles(m), (0, 30, 0))

    face = load_mean_face()
    lm = np.stack([face * 0.5 + [100, 100, 0], face * 0.5 + [102, 101, 0]])
    rects = video_mouth_rects(lm, (700, 700))
    std = standard_points(lm, rects)
    assert std.shape == lm.shape and np.allclose(std[..., 2].max(1), 0)
    side = rects[0, 2] - rects[0, 0]
    assert np.allclose(std[0, :, :2], (lm[0, :, :2] - rects[0, :2]) * 128 / side)
    frame = np.zeros((700, 700, 3), np.uint8)
    assert standard_image(frame, rects[0]).shape == (128, 128, 3)
    frame[:, :50] = 200
    padded = standard_image(frame, (-5, 0, 100, 105))  # crosses the left border: edge pixels repeated
    assert padded.shape == (128, 128, 3) and padded[:, :5].min() == 200
    with pytest.raises(UserInputError):
        standard_image(frame, (-205, 0, -100, 105))  # does not touch the frame at all
    centre = lm[0, MP_LIPS_RINGS[0], :2].mean(0)
    lips = lm[0, MP_LIPS_RINGS[0], :2]
    for axis, side in ((0, 0), (1, 0), (0, 1), (1, 1)):  # the lips 3 px from each border in turn
        half = (lips[:, axis].max() - lips[:, axis].min()) / 2 + 3
        target = half if side == 0 else 700 - half
        shift = np.zeros(3)
        shift[axis] = target - centre[axis]
        r = video_mouth_rects(lm + shift, (700, 700))  # the crop leaves the frame: padded, not refused
        assert (r[:, :2] < 0).any() or (r[:, 2:] > 700).any()
        shift[axis] = (-40 if side == 0 else 740) - centre[axis]  # the mouth itself out of the frame
        with pytest.raises(ValueError, match="mouth is outside"):
            video_mouth_rects(lm + shift, (700, 700))

    img = drawMouth(std[0], (128, 128))
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    assert {(255, 0, 0), (127, 0, 0), (128, 128, 128)} <= colours


def test_make_assets_script_reproduces_committed_files(tmp_path):
    from mini_live.obj.make_assets import main
    from talkingface.util.cli import run_cli

    with pytest.raises(SystemExit) as exc:
        run_cli(main, ["--out", str(tmp_path), "--basis", str(tmp_path / "missing.npz")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        run_cli(main, ["--out", str(tmp_path)])
    assert exc.value.code == 0
    for name in ("face_wrap_entity.obj", "teeth_upper.obj", "teeth_lower.obj"):
        assert (tmp_path / name).read_text() == (DATA_DIR / name).read_text(), name
    fresh, committed = WrapMesh.load(tmp_path / "wrap_template.npz"), load_wrap_template()
    assert np.array_equal(fresh.faces, committed.faces) and np.allclose(fresh.vertices, committed.vertices)
    assert fresh.config == committed.config and fresh.num_targets == committed.num_targets == 209


def test_bs_table_built_from_the_shipped_basis(repo_root):
    import hashlib

    basis = repo_root / "checkpoint" / "mouth_basis" / "blendshape_basis.npz"
    if not basis.is_file():
        pytest.skip("no shipped blendshape basis")
    with np.load(DATA_DIR / "bs_table.npz") as d:
        recorded = str(d["basis_sha256"])
    assert recorded == hashlib.sha256(basis.read_bytes()).hexdigest(), (
        "bs_table.npz is stale: python -m mini_live.obj.make_assets --basis checkpoint/mouth_basis/blendshape_basis.npz")
