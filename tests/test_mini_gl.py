"""The headless OpenGL mouth renderer: backend choice, exact warp/label encoding, a real avatar frame.

Runs with no display (EGL). PNGs of the rendered frames go to ``$TALKINGFACE_TEST_OUT`` when set, else
to pytest's temporary folder (the path is logged).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mini_live.obj.image_utils import render_inputs
from talkingface.data.mouth_crop import standard_image, standard_points, video_mouth_rects
from mini_live.obj.obj_io import read_obj
from mini_live.obj.utils import (fit_avatar, load_bs_coef_std, load_bs_table, load_wrap_template,
                                 read_original_bs_png)
from mini_live.obj.wrap_utils import WrapMesh, newWrapModel
from mini_live.opengl_render_interface import GLError, resolve_backend
from mini_live.render import ORIGINAL_JAW, MouthRenderer
from talkingface.run_utils import apply_pose, calc_face_mat, load_mean_face

log = logging.getLogger(__name__)
N_FRAMES = 12


# ------------------------------------------------------------------------------------------ helpers
def lower_lip(img):
    return (img[..., 0] == 127) & (img[..., 1] == 0) & (img[..., 2] == 0)


def lips(img):
    return ((img[..., 0] == 255) | (img[..., 0] == 127)) & (img[..., 1] == 0) & (img[..., 2] == 0)


def cavity(img):
    return (img[..., :3] == 0).all(-1)


def lower_teeth(img):
    return (img[..., 0] == 0) & (img[..., 1] == 0) & (img[..., 2] == 255)


def upper_teeth(img):
    return (img[..., 0] == 0) & (img[..., 1] == 255) & (img[..., 2] == 0)


def mouth_labels(img):
    return img[..., 2] != 128


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    d = Path(os.environ["TALKINGFACE_TEST_OUT"]) if os.environ.get("TALKINGFACE_TEST_OUT") \
        else tmp_path_factory.mktemp("mini_gl")
    d.mkdir(parents=True, exist_ok=True)
    log.info("mini GL test images in %s", d)
    return d


@pytest.fixture(scope="module")
def renderer():
    """The acceptance setting: no display, automatic backend choice -> headless EGL."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("DISPLAY", "WAYLAND_DISPLAY", "TALKINGFACE_GL_BACKEND"):
            mp.delenv(var, raising=False)
        r = MouthRenderer(size=256, backend="auto")
    assert r.backend == "egl"
    yield r
    r.close()


@pytest.fixture(scope="module")
def avatar(request, sample_data):
    """Landmarks (N, 478, 3) and frame 0 of a prepared mini avatar of dh_live/video_data/000002."""
    from talkingface.util.media import iter_video_frames

    try:
        prepared = Path(request.getfixturevalue("mini_avatar_dir"))
    except pytest.FixtureLookupError:
        prepared = None
    if prepared is not None:
        from talkingface.mediapipe_utils import load_keypoints

        lm = load_keypoints(prepared / "data" / "processed.pkl")
        frame0 = next(iter(iter_video_frames(prepared / "data" / "processed.mp4")))
    else:  # the same steps as data_preparation_mini on the first frames
        from talkingface.mediapipe_utils import landmarks_for_video

        video = sample_data / "dh_live" / "video_data" / "000002" / "video.mp4"
        frames = []
        for f in iter_video_frames(video):
            frames.append(f)
            if len(frames) == N_FRAMES:
                break
        lm = landmarks_for_video(frames, progress=False)
        frame0 = frames[0]
    h, w = frame0.shape[:2]
    rects = video_mouth_rects(lm, (w, h))
    std = standard_points(lm, rects)
    return {"lm": lm, "frame0": frame0, "rects": rects, "std": std}


# ------------------------------------------------------------------------------------------ backend
def test_backend_resolution(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("TALKINGFACE_GL_BACKEND", raising=False)
    assert resolve_backend("auto") == "egl"
    monkeypatch.setenv("DISPLAY", ":0")
    assert resolve_backend("auto") == "glfw"
    monkeypatch.setenv("TALKINGFACE_GL_BACKEND", "egl")
    assert resolve_backend("auto") == "egl"
    assert resolve_backend("glfw") == "glfw"
    with pytest.raises(GLError):
        resolve_backend("osmesa")
    monkeypatch.setenv("TALKINGFACE_GL_BACKEND", "vulkan")
    with pytest.raises(GLError):
        resolve_backend("auto")


# ------------------------------------------------------------------------------ exact encoding (synthetic)
def _quad_mesh(label_left: float, label_right: float) -> WrapMesh:
    """Two squares side by side at model x 0..2, y 0..1 (z 0), left and right vertex columns labelled."""
    v = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [1, 1, 0], [2, 1, 0]], np.float64)
    labels = np.array([label_left, label_right, label_right, label_left, label_right, label_right], np.float64)
    faces = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]])
    return WrapMesh(vertices=v, labels=labels, faces=faces, mp_ids=np.arange(6), ring_source=np.full(6, -1),
                    num_targets=6)


def test_warp_field_encoding(renderer):
    mesh = _quad_mesh(0.0, 0.0)
    renderer.set_mesh(mesh)
    renderer.set_blendshapes(np.zeros((1, 6, 3), np.float32))
    pose = np.diag([100.0, 100.0, 100.0, 1.0])
    pose[:2, 3] = [20, 60]  # model (x, y) -> pixels (20 + 100x, 60 + 100y)
    projected = apply_pose(pose, mesh.vertices)[:, :2]
    shift = np.array([8.0, -4.0])  # rendered position - source landmark, in pixels
    img = renderer.render(projected - shift, pose, None)
    assert img.shape == (256, 256, 4) and img.dtype == np.uint8
    inside = img[70:150, 30:210]
    expect = (shift * 2 / 256 + 1) / 2 * 255
    assert np.abs(inside[..., 0].astype(float) - expect[0]).max() <= 1
    assert np.abs(inside[..., 1].astype(float) - expect[1]).max() <= 1
    assert (inside[..., 2] == 128).all() and (inside[..., 3] == 255).all()
    assert (img[:50, :, :3] == 128).all() and (img[:50, :, 3] == 0).all()  # background: zero warp
    # the y axis runs down: a mesh placed at pixel row 60..160 is found there in the array
    rows = np.flatnonzero(img[..., 3].any(1))
    assert rows.min() == pytest.approx(60, abs=1) and rows.max() == pytest.approx(160, abs=1)
    # blendshape morph: one row moving vertex 4 by +0.1 model units in x
    table = np.zeros((1, 6, 3), np.float32)
    table[0, :, 0] = 0.1
    renderer.set_blendshapes(table)
    moved = renderer.render(projected, pose, [1.0])
    assert np.abs(moved[70:150, 40:200, 0].astype(float) - (10 * 2 / 256 + 1) / 2 * 255).max() <= 1
    assert moved[..., 3].any(0).nonzero()[0].min() == pytest.approx(30, abs=1)


@pytest.mark.parametrize("labels,colour", [((2.0, 2.0), (255, 0, 0)), ((2.01, 2.01), (127, 0, 0)),
                                           ((2.0, 2.01), (127, 0, 0)), ((3.0, 3.0), (0, 255, 0)),
                                           ((4.0, 4.0), (0, 0, 255)), ((3.0, 4.0), (0, 0, 0))])
def test_label_colours(renderer, labels, colour):
    renderer.set_mesh(_quad_mesh(*labels))
    renderer.set_blendshapes(np.zeros((1, 6, 3), np.float32))
    pose = np.diag([100.0, 100.0, 100.0, 1.0])
    pose[:2, 3] = [20, 60]
    img = renderer.render(None, pose, None)
    centre = img[100:120, 50:90, :3].reshape(-1, 3)  # inside the left square
    assert (centre == colour).all(), (labels, np.unique(centre, axis=0))


def test_teeth_are_hidden_behind_the_face(renderer):
    skin, teeth = _quad_mesh(0.0, 0.0), _quad_mesh(3.0, 3.0)
    teeth.vertices[:, 2] = -50.0  # even when nearer the viewer than the skin
    merged = WrapMesh(vertices=np.concatenate([skin.vertices, teeth.vertices]),
                      labels=np.concatenate([skin.labels, teeth.labels]),
                      faces=np.concatenate([teeth.faces + 6, skin.faces]), mp_ids=np.full(12, -1),
                      ring_source=np.full(12, -1), num_targets=0)
    renderer.set_mesh(merged)
    renderer.set_blendshapes(np.zeros((1, 12, 3), np.float32))
    pose = np.diag([100.0, 100.0, 100.0, 1.0])
    pose[:2, 3] = [20, 60]
    img = renderer.render(None, pose, None)
    assert (img[70:150, 30:210, 1] != 255).all()


# --------------------------------------------------------------------------------- real avatar frame
def test_avatar_frame_neutral_and_opening(renderer, avatar, out_dir):
    mesh, mats = fit_avatar(avatar["std"])
    table = load_bs_table()
    coef_std = load_bs_coef_std()
    renderer.set_mesh(mesh)
    renderer.set_blendshapes(table)
    points, poses = render_inputs(avatar["std"][:1], mats[:1], mesh.target_ids)
    pose = poses[0]

    # all weights 0, targets = the neutral mesh as posed: no warp anywhere outside the mouth labels
    own = apply_pose(pose, mesh.vertices[: mesh.num_targets])[:, :2]
    neutral = renderer.render(own, pose, np.zeros(6))
    outside = ~mouth_labels(neutral)
    rg = neutral[..., :2].astype(np.float64)
    assert np.abs(rg[outside] - 127.5).max() <= 1.0
    # at rest no teeth show; the rest shape's inner-lip gap (0.05 W) is a thin dark line, as the training labels draw it
    assert lips(neutral).sum() > 300 and not lower_teeth(neutral).any() and not upper_teeth(neutral).any()
    assert cavity(neutral).sum() < 0.15 * lips(neutral).sum()

    # all weights 0 with the frame's own landmarks: the warp pulls them onto the rest shape, a few pixels
    real = renderer.render(points[0], pose, np.zeros(6))
    on_mesh = ~mouth_labels(real) & (real[..., 3] > 0)
    warp_px = np.abs(real[..., :2].astype(np.float64)[on_mesh] - 127.5) * 256 / 255
    assert np.median(warp_px) <= 1.5 and np.percentile(warp_px, 99) < 12

    # raising the opening weight: lower lip down, cavity grows, lower teeth appear
    frames, cy, cav, low = [], [], [], []
    for k in range(5):
        img = renderer.render(points[0], pose, [k * coef_std[0], 0, 0, 0, 0, 0])
        frames.append(img)
        ys, _ = np.nonzero(lower_lip(img))
        cy.append(ys.mean())
        cav.append(int(cavity(img).sum()))
        low.append(int(lower_teeth(img).sum()))
    log.info("opening sweep: lower-lip centroid y %s, cavity px %s, lower-teeth px %s", np.round(cy, 1), cav, low)
    assert all(b > a + 2 for a, b in zip(cy, cy[1:]))
    assert cav[-1] > cav[2] > cav[0] and cav[-1] > 200
    assert max(low) > 100 and low[0] == 0

    crop = cv2.cvtColor(standard_image(avatar["frame0"], avatar["rects"][0], 256), cv2.COLOR_BGR2RGB)
    tiles = []
    for img in [neutral] + frames:
        over = crop.copy()
        m = mouth_labels(img)
        over[m] = img[..., :3][m]
        warp = img[..., :3].astype(np.float64)
        warp[..., :2] = np.clip((warp[..., :2] - 127.5) * 8 + 127.5, 0, 255)  # exaggerate the warp to see it
        tiles.append(np.vstack([warp.astype(np.uint8), over]))
    cv2.imwrite(str(out_dir / "avatar_opening_sweep.png"), cv2.cvtColor(np.hstack(tiles), cv2.COLOR_RGB2BGR))


def test_lip_region_matches_original_mesh(renderer, avatar, sample_data, out_dir):
    obj_dir = sample_data / "dh_live" / "mini_live" / "obj" / "obj_mediapipe"
    face3d = read_obj(obj_dir / "face3D.obj").v
    original = WrapMesh.from_obj_lines(open(obj_dir / "face_wrap_entity.obj"), face_vertices=face3d)
    std = avatar["std"]

    masks = []
    for mean_face, template in ((load_mean_face(), load_wrap_template()), (face3d, original)):
        mats, _, personal = calc_face_mat(std, mean_face)
        if template is original:  # the original's own rule: its targets take the personal mean, the rest stays
            mesh = WrapMesh(vertices=template.vertices.copy(), labels=template.labels, faces=template.faces,
                            mp_ids=template.mp_ids, ring_source=template.ring_source,
                            num_targets=template.num_targets)
            mesh.vertices[: mesh.num_targets] = personal[mesh.target_ids]
            renderer.set_mesh(mesh, jaw=ORIGINAL_JAW)
            renderer.set_blendshapes(read_original_bs_png(sample_data / "dh_live" / "mini_live" /
                                                          "bs_texture_halfFace.png"))
        else:
            mesh = newWrapModel(template, personal)
            renderer.set_mesh(mesh)
            renderer.set_blendshapes(load_bs_table())
        points, poses = render_inputs(std[:1], mats[:1], mesh.target_ids)
        img = renderer.render(points[0], poses[0], np.zeros(6))
        masks.append(img)
    a, b = lips(masks[0]), lips(masks[1])
    iou = (a & b).sum() / (a | b).sum()
    log.info("lip-label IoU ours vs original mesh: %.3f (%d / %d px)", iou, a.sum(), b.sum())
    cv2.imwrite(str(out_dir / "lips_ours_vs_original.png"),
                cv2.cvtColor(np.hstack([masks[0][..., :3], masks[1][..., :3]]), cv2.COLOR_RGB2BGR))
    assert iou >= 0.8


def test_platform_preselected_on_import():
    """Importing the renderer first makes a later ``import OpenGL`` elsewhere use EGL (no display)."""
    import subprocess
    import sys

    code = ("import mini_live.render as r\n"
            "from OpenGL import GL\n"
            "import numpy as np\n"
            "from mini_live.obj.utils import load_wrap_template\n"
            "m = r.MouthRenderer(size=32)\n"
            "m.set_mesh(load_wrap_template())\n"
            "print(m.backend, m.render(None, np.eye(4), None).shape)\n"
            "m.close()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYOPENGL_PLATFORM",
                                                            "TALKINGFACE_GL_BACKEND")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["egl", "(32,", "32,", "4)"]


def test_glfw_backend_matches_egl(renderer, tmp_path):
    """With a display (a virtual X server here) the glfw backend renders the same image as EGL."""
    import shutil
    import subprocess
    import sys

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run not installed: no display to test the glfw backend with")
    code = ("import sys, numpy as np\n"
            "from mini_live.render import MouthRenderer\n"
            "from mini_live.obj.utils import load_wrap_template, load_bs_table\n"
            "r = MouthRenderer(size=128, backend='glfw')\n"
            "r.set_mesh(load_wrap_template()); r.set_blendshapes(load_bs_table())\n"
            "pose = np.diag([0.3, 0.3, 0.3, 1.0]); pose[:2, 3] = [-150, -120]\n"
            "np.save(sys.argv[1], r.render(None, pose, [100.0, 0, 0, 0, 0, 0]))\n"
            "print(r.backend); r.close()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYOPENGL_PLATFORM", "TALKINGFACE_GL_BACKEND")}
    out = tmp_path / "glfw.npy"
    res = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "glfw"
    small = MouthRenderer(size=128, backend="egl")
    try:
        small.set_mesh(load_wrap_template())
        small.set_blendshapes(load_bs_table())
        pose = np.diag([0.3, 0.3, 0.3, 1.0])
        pose[:2, 3] = [-150, -120]
        ours = small.render(None, pose, [100.0, 0, 0, 0, 0, 0])
    finally:
        small.close()
    glfw_img = np.load(out)
    assert lips(ours).sum() > 100
    assert (np.abs(glfw_img.astype(int) - ours.astype(int)) > 1).mean() < 0.001


def test_preview_script(request, tmp_path):
    from mini_live.render import main
    from talkingface.util.cli import run_cli
    from talkingface.util.media import read_video

    with pytest.raises(SystemExit) as exc:
        run_cli(main, [str(tmp_path / "nothing"), str(tmp_path / "x.mp4")])
    assert exc.value.code == 2 and not (tmp_path / "x.mp4").exists()
    try:
        prepared = Path(request.getfixturevalue("mini_avatar_dir"))
    except pytest.FixtureLookupError:
        pytest.skip("no mini_avatar_dir fixture (prepared avatar) in this conftest")
    out = tmp_path / "preview.mp4"
    with pytest.raises(SystemExit) as exc:
        run_cli(main, [str(prepared), str(out), "--frames", "5"])
    assert exc.value.code == 0
    frames = read_video(out)
    assert len(frames) == 5 and frames[0].shape == (256, 512, 3)
