"""The mini mouth renderer: a labelled wrap mesh -> warp field + mouth labels, offscreen, headless.

API (what the mini pipeline calls)::

    from mini_live.render import MouthRenderer
    from mini_live.obj.image_utils import render_inputs
    from talkingface.data.mouth_crop import standard_points, video_mouth_rects
    from mini_live.obj.utils import fit_avatar, load_bs_table

    rects = video_mouth_rects(landmarks, (width, height))   # (N, 4) mouth crops of the avatar video
    std = standard_points(landmarks, rects)                 # (N, 478, 3) in the 128 standard crop
    mesh, mats = fit_avatar(std)                            # wrap mesh of this person + poses (N, 4, 4)
    points, poses = render_inputs(std, mats, mesh.target_ids)   # at 2 x 128 = 256

    r = MouthRenderer(size=256, backend="auto")        # "egl" (headless) | "glfw" | "auto"
    r.set_mesh(mesh)                                     # once per avatar
    r.set_blendshapes(load_bs_table())                   # (6, V, 3) displacement per unit weight
    gl = r.render(points[i], poses[i], bs_weights)       # (256, 256, 4) uint8 RGBA, row 0 = top
    gl128 = gl[::2, ::2]                                 # DINet_mini's 128 input, as demo_mini does
    r.close()

Inputs of :meth:`MouthRenderer.render`
- ``points``: (P, 2) float, pixel coordinates (x right, y down) *in the output image* of the source
  frame's landmarks for the first P mesh vertices (``mesh.target_ids``: ``landmarks[mesh.target_ids, :2]``
  mapped into the output crop). Vertex i < P that is not an anchor gets a warp vector.
- ``pose``: (4, 4) float, maps model space (the canonical mean-face space of the mesh) to output pixels:
  ``[x, y, z]_out = pose @ [p_model, 1]``; z in pixels too (negative toward the viewer).
- ``bs_weights``: up to 12 floats; row i of the blendshape table is moved by ``bs_weights[i]``.
  With :func:`mini_live.obj.utils.bs_table_from_basis` these are ``BlendshapeBasis`` coefficients
  (0 = mouth at rest, positive coefficient 0 opens).

Output (docs/REFERENCE.md §5.3, the input DINet_mini's pipeline expects, docs/REFERENCE.md §2.2):
- mouth labels: upper lip (255, 0, 0), lower lip (127, 0, 0), upper teeth (0, 255, 0),
  lower teeth (0, 0, 255), cavity (0, 0, 0);
- elsewhere a warp field: R, G = (d + 1) / 2 * 255 with d = (rendered position - source landmark) in
  NDC of the output image (x right, y down: d = 2 * pixels / size), B = 128 ("not mouth");
  background (no mesh) is (128, 128, 128): zero warp. Alpha is 255 on the mesh and 0 elsewhere.

Blendshape morphing is done in the vertex shader from an RGB32F texture (column = vertex index,
row = blendshape), i.e. the reference's texture design with float precision. The lower teeth follow the
jaw through their own texture columns (see ``bs_table_from_basis``) plus an optional linear term
``jaw = (gain, offset)``: ``y += gain * (w0 + w1) + offset`` (the original's meshes use (1/2.7, 6)).
Teeth and cavity are drawn at a fixed depth behind the face, upper teeth first, so lips hide them.
"""
from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from mini_live.obj.wrap_utils import WrapMesh
from mini_live.opengl_render_interface import Framebuffer, GLError, MeshProgram, compile_program, create_context
from talkingface.config.paths import SHADER_DIR

log = logging.getLogger(__name__)

MAX_BLENDSHAPES = 12
#: Depth scale of the orthographic projection: z_ndc = z_pixels / DEPTH_RANGE (the reference's 1000).
DEPTH_RANGE = 1000.0
TEETH_DEPTH = 0.5
#: The original's lower-teeth jaw rule, for its own meshes (face3D units).
ORIGINAL_JAW = (1.0 / 2.7, 6.0)


def ortho_pixels(width: int, height: int, depth: float = DEPTH_RANGE) -> np.ndarray:
    """4x4 projection: output pixels (x right, y down, z) -> NDC, with pixel row y at NDC (2y/H - 1).

    No y flip: ``glReadPixels`` returns rows from NDC y = -1 upward, so the read-back array is the image
    top-down. z_ndc = z / depth, so smaller (more negative) z is nearer.
    """
    m = np.eye(4, dtype=np.float64)
    m[0, 0], m[0, 3] = 2.0 / width, -1.0
    m[1, 1], m[1, 3] = 2.0 / height, -1.0
    m[2, 2] = 1.0 / depth
    return m


def draw_order(labels: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Face order for drawing: upper teeth, lower teeth, cavity (mixed 3/4), then the rest.

    Teeth and cavity share one depth, where the first drawn wins the depth test.
    """
    lab = labels[faces]
    key = np.full(len(faces), 3)
    key[(lab == 3.0).all(1)] = 0
    key[(lab == 4.0).all(1)] = 1
    key[((lab >= 3.0) & (lab <= 4.0)).all(1) & (key == 3)] = 2
    return np.argsort(key, kind="stable")


class MouthRenderer(MeshProgram):
    """Offscreen renderer of a :class:`WrapMesh` into a (size, size, 4) uint8 warp/label image."""

    def __init__(self, size: int = 256, backend: str = "auto"):
        if int(size) < 8:
            raise ValueError("size must be at least 8 pixels")
        self.size = int(size)
        self._ctx, self._gl = create_context(backend, (self.size, self.size))
        self.backend = self._ctx.backend
        gl = self._gl
        self._prog = compile_program(gl, (SHADER_DIR / "prompt3.vsh").read_text(),
                                     (SHADER_DIR / "prompt3.fsh").read_text())
        self._fbo = Framebuffer(gl, self.size, self.size)
        self._uni = {name: gl.glGetUniformLocation(self._prog, name)
                     for name in ("gProjection", "gWorld0", "bsVec", "bsCount", "texture_bs", "jawParams",
                                  "teethDepth")}
        self._vao = gl.glGenVertexArrays(1)
        self._vbo, self._tbo, self._ebo = gl.glGenBuffers(3)
        self._tex = gl.glGenTextures(1)
        self._mesh: Optional[WrapMesh] = None
        self._n_index = 0
        self._targets = np.zeros((0, 3), np.float32)
        self._bs_rows = 0
        # Constant state, set once: this renderer owns its context, so it persists between frames.
        gl.glUseProgram(self._prog)
        gl.glUniform1i(self._uni["texture_bs"], 0)
        gl.glUniform1f(self._uni["teethDepth"], TEETH_DEPTH)
        # numpy arrays are row-major: pass transpose=GL_TRUE so GLSL sees the matrices as written
        gl.glUniformMatrix4fv(self._uni["gProjection"], 1, gl.GL_TRUE,
                              ortho_pixels(self.size, self.size).astype(np.float32))
        gl.glEnable(gl.GL_DEPTH_TEST)
        gl.glDepthFunc(gl.GL_LESS)
        gl.glDisable(gl.GL_CULL_FACE)
        gl.glDisable(gl.GL_BLEND)
        gl.glClearColor(0.5, 0.5, 0.5, 0.0)
        gl.glClearDepth(1.0)

    # ------------------------------------------------------------------------------------ set-up
    def set_mesh(self, mesh: WrapMesh, jaw: Tuple[float, float] = (0.0, 0.0)) -> None:
        """Upload a mesh (once per avatar). ``jaw``: extra lower-teeth motion (gain, offset), see module doc."""
        gl = self._gl
        self._ctx.make_current()
        verts = np.asarray(mesh.vertices, np.float32)
        n = len(verts)
        attrib = np.empty((n, 5), np.float32)
        attrib[:, :3] = verts
        attrib[:, 3] = mesh.labels
        attrib[:, 4] = np.arange(n)
        faces = np.asarray(mesh.faces, np.int64)[draw_order(np.asarray(mesh.labels), mesh.faces)]
        indices = np.ascontiguousarray(faces.astype(np.uint32).ravel())
        self._targets = np.zeros((n, 3), np.float32)
        gl.glBindVertexArray(self._vao)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._vbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, attrib.nbytes, attrib, gl.GL_STATIC_DRAW)
        gl.glEnableVertexAttribArray(0)
        gl.glVertexAttribPointer(0, 3, gl.GL_FLOAT, gl.GL_FALSE, 20, None)
        gl.glEnableVertexAttribArray(1)
        gl.glVertexAttribPointer(1, 2, gl.GL_FLOAT, gl.GL_FALSE, 20, _offset(12))
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._tbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, self._targets.nbytes, self._targets, gl.GL_DYNAMIC_DRAW)
        gl.glEnableVertexAttribArray(2)
        gl.glVertexAttribPointer(2, 3, gl.GL_FLOAT, gl.GL_FALSE, 12, None)
        gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, self._ebo)
        gl.glBufferData(gl.GL_ELEMENT_ARRAY_BUFFER, indices.nbytes, indices, gl.GL_STATIC_DRAW)
        gl.glBindVertexArray(0)
        self._n_index = len(indices)
        self._mesh = mesh
        gl.glUseProgram(self._prog)
        gl.glUniform2f(self._uni["jawParams"], float(jaw[0]), float(jaw[1]))
        if self._bs_rows == 0:
            self.set_blendshapes(np.zeros((1, n, 3), np.float32))

    def set_blendshapes(self, table: np.ndarray) -> None:
        """Upload the blendshape table (B, C, 3): displacement (model units) per unit weight, B <= 12.

        Column c belongs to mesh vertex c; vertices beyond the last column get no displacement, extra
        columns are unused.
        """
        table = np.asarray(table, np.float32)
        if table.ndim != 3 or table.shape[2] != 3 or not 1 <= table.shape[0] <= MAX_BLENDSHAPES:
            raise ValueError(f"blendshape table must be (B<=12, C, 3), got {table.shape}")
        if self._mesh is not None and table.shape[1] < len(self._mesh.vertices):
            pad = np.zeros((table.shape[0], len(self._mesh.vertices) - table.shape[1], 3), np.float32)
            table = np.concatenate([table, pad], axis=1)
        table = np.ascontiguousarray(table)
        gl = self._gl
        self._ctx.make_current()
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D, self._tex)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB32F, table.shape[1], table.shape[0], 0, gl.GL_RGB,
                        gl.GL_FLOAT, table)
        for p in (gl.GL_TEXTURE_MIN_FILTER, gl.GL_TEXTURE_MAG_FILTER):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, p, gl.GL_NEAREST)
        for p in (gl.GL_TEXTURE_WRAP_S, gl.GL_TEXTURE_WRAP_T):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, p, gl.GL_CLAMP_TO_EDGE)
        self._bs_rows = table.shape[0]
        gl.glUseProgram(self._prog)
        gl.glUniform1i(self._uni["bsCount"], self._bs_rows)

    # ----------------------------------------------------------------------------------- render
    def render(self, points: Optional[np.ndarray], pose: np.ndarray,
               bs_weights: Optional[Sequence[float]] = None,
               region: Optional[Tuple[int, int, int, int]] = None) -> np.ndarray:
        """Render one frame -> (size, size, 4) uint8 RGBA, row 0 = top (see the module docstring).

        points: (P, 2) output-pixel targets of vertices 0..P-1 (None: no warp); pose: (4, 4) model ->
        output pixels; bs_weights: up to 12 weights (missing ones are 0). ``region`` (x0, y0, x1, y1),
        output pixels: draw and read back only that rectangle (scissor test), returning
        (y1-y0, x1-x0, 4) with the same pixels the full render has there.
        """
        if self._mesh is None:
            raise GLError("MouthRenderer.render called before set_mesh")
        gl = self._gl
        self._ctx.make_current()
        pose = np.asarray(pose, np.float64)
        if pose.shape != (4, 4):
            raise ValueError(f"pose must be 4x4, got {pose.shape}")
        weights = np.zeros(MAX_BLENDSHAPES, np.float32)
        if bs_weights is not None:
            w = np.asarray(bs_weights, np.float32).ravel()[:MAX_BLENDSHAPES]
            weights[: len(w)] = w
        tgt = self._targets
        tgt[:] = 0.0
        if points is not None:
            pts = np.asarray(points, np.float64).reshape(-1, 2)[: len(tgt)]
            tgt[: len(pts), :2] = pts * (2.0 / self.size) - 1.0
            tgt[: len(pts), 2] = 1.0

        self._fbo.bind()
        gl.glUseProgram(self._prog)
        if region is not None:
            x0, y0, x1, y1 = (int(v) for v in region)
            gl.glEnable(gl.GL_SCISSOR_TEST)
            gl.glScissor(x0, y0, x1 - x0, y1 - y0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        gl.glUniformMatrix4fv(self._uni["gWorld0"], 1, gl.GL_TRUE, pose.astype(np.float32))
        gl.glUniform1fv(self._uni["bsVec"], MAX_BLENDSHAPES, weights)
        self._draw(self._tbo, tgt)
        if region is not None:
            gl.glDisable(gl.GL_SCISSOR_TEST)
        return self._fbo.read(region)

    def _gl_buffers(self) -> list:
        return [self._vbo, self._tbo, self._ebo]


def _offset(n: int):
    return ctypes.c_void_p(n)


# ------------------------------------------------------------------------------------ preview script
def overlay_labels(crop_rgb: np.ndarray, gl: np.ndarray, warp_gain: float = 8.0) -> np.ndarray:
    """A side-by-side preview (H, 2W, 3) uint8 RGB: the crop with the mouth labels pasted in, and the
    GL image with its warp field (RG - 0.5) amplified ``warp_gain`` times."""
    mouth = gl[..., 2] != 128
    over = crop_rgb.copy()
    over[mouth] = gl[..., :3][mouth]
    warp = gl[..., :3].astype(np.float32)
    warp[..., :2] = np.clip((warp[..., :2] - 127.5) * warp_gain + 127.5, 0, 255)
    return np.hstack([over, warp.astype(np.uint8)])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Render a prepared mini avatar's mouth labels/warp with a synthetic opening sweep into a preview mp4."""
    # Lazy: loaded only when run as a script (the renderer module itself needs no OpenCV).
    import cv2

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from mini_live.obj.image_utils import render_inputs
    from talkingface.data.mouth_crop import standard_image, standard_points, video_mouth_rects
    from mini_live.obj.utils import fit_avatar, load_bs_coef_std, load_bs_table
    from talkingface.errors import UserInputError
    from talkingface.mediapipe_utils import load_keypoints
    from talkingface.util.cli import ScriptParser, setup_logging
    from talkingface.util.files import check_output_file
    from talkingface.util.media import VideoWriter, iter_video_frames

    parser = ScriptParser(description="Render a prepared mini avatar (data_preparation_mini.py output) "
                                      "through the mouth renderer with the mouth opening and closing; "
                                      "writes a preview mp4 (crop + labels | amplified warp field).")
    parser.add_argument("avatar_dir", type=Path, help="folder with data/processed.mp4 and data/processed.pkl")
    parser.add_argument("out", type=Path, help="preview video (.mp4)")
    parser.add_argument("--frames", type=int, default=100, help="frames to render (default 100)")
    parser.add_argument("--size", type=int, default=256, help="render size (default 256)")
    parser.add_argument("--backend", default="auto", choices=["auto", "egl", "glfw"])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    video, pkl = args.avatar_dir / "data" / "processed.mp4", args.avatar_dir / "data" / "processed.pkl"
    for p in (video, pkl):
        if not p.is_file():
            raise UserInputError(f"not a prepared mini avatar: {p} missing (run data_preparation_mini.py)")
    if args.frames < 1:
        raise UserInputError("--frames must be at least 1")
    check_output_file(args.out, "output video")
    landmarks = load_keypoints(pkl)
    frames = []
    for frame in iter_video_frames(video, max_frames=min(args.frames, len(landmarks))):
        frames.append(frame)
    landmarks = landmarks[: len(frames)]
    h, w = frames[0].shape[:2]
    try:
        rects = video_mouth_rects(landmarks, (w, h))
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc
    std = standard_points(landmarks, rects)
    mesh, mats = fit_avatar(std)
    points, poses = render_inputs(std, mats, mesh.target_ids, scale=args.size / 128)
    coef_std = load_bs_coef_std()
    with MouthRenderer(size=args.size, backend=args.backend) as renderer, VideoWriter(args.out) as writer:
        renderer.set_mesh(mesh)
        renderer.set_blendshapes(load_bs_table())
        for i, frame in enumerate(frames):
            weights = np.zeros(len(coef_std))
            weights[0] = coef_std[0] * 1.5 * (1 - np.cos(i / 4.0))
            gl = renderer.render(points[i], poses[i], weights)
            crop = cv2.cvtColor(standard_image(frame, rects[i], args.size), cv2.COLOR_BGR2RGB)
            writer.write(cv2.cvtColor(overlay_labels(crop, gl), cv2.COLOR_RGB2BGR))
    log.info("wrote %s (%d frames)", args.out, len(frames))
    return 0


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
