"""MODA's motion on a person the renderer never saw: a whole-face mesh warp of one photo (or one frame of a
short silent video), drawn with OpenGL (headless EGL), with a drawn mouth cavity.

Pipeline (demo_moda.py --renderer warp PHOTO AUDIO OUT.mp4):

1. :func:`subject_from_media`: the face mesh of the photo (or of every frame of the video, up to
   :data:`MAX_VIDEO_FRAMES`) with the project's MediaPipe helper -> canonical meshes and head pose
   (:func:`talkingface.moda_geometry.canonicalize`) -> a :class:`Subject` (the means) plus the source
   frame and its own landmarks. A video's source frame is its most closed mouth (as the avatar's
   reference in data_preparation_moda.py).
2. MODA + FaCo + :func:`frame_landmarks` give the target 478 landmarks of every output frame.
3. :class:`FaceWarper` draws the source frame as a textured triangle mesh: a Delaunay triangulation of the
   source's 478 landmarks plus three rings of extra points: an inner ring around the face oval
   (x 1.3 from the face centre) that follows the head's affine motion, an outer ring (x 1.9) that follows
   it by :data:`OUTER_FOLLOW`, and points on the frame border that never move. So the face deforms with
   the landmarks (lips, lids, head pose), hair and neck follow the head partly, the background stays put.
4. :func:`fill_mouth`: where the target's inner lips open wider than the source's, the inner-lip polygon
   is painted with a dark cavity (feathered edge, darker in its middle). No teeth are drawn.
5. Optionally (``--mouth dinet``, experimental) :class:`MouthPainter`: DINet_mini paints teeth and cavity
   into the opening over that fill, from a label image of the target landmarks (the mini route's
   interior blend without its GL render). docs/MODA.md describes how both look.
"""
from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Optional, Tuple, Union

import cv2
import numpy as np
from scipy.spatial import Delaunay

from mini_live.opengl_render_interface import Framebuffer, MeshProgram, compile_program, create_context
from talkingface.errors import NoFaceError, UserInputError
from talkingface.moda_geometry import canonicalize
from talkingface.moda_pipeline import Subject
from talkingface.utils import (MP_FACE_OVAL, MP_LIPS_INNER, MP_LOWER_INNER_LIP_MID, MP_UPPER_INNER_LIP_MID, inter_ocular,
                               mouth_opening)

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_VIDEO_FRAMES = 250  # 10 s: enough for the means; the face mesh costs ~20 ms a frame
INNER_RING, OUTER_RING = 1.3, 1.9  # ring radii relative to the face oval, from the oval's centre
OUTER_FOLLOW = 0.4  # share of the head's motion the outer ring follows
BORDER_STEPS = 6  # points per frame edge
CAVITY_BGR = np.array([38, 30, 62], np.float32)  # dark red-brown
CAVITY_CORE_BGR = np.array([14, 10, 24], np.float32)

_VERTEX = """#version 330 core
layout(location = 0) in vec2 pos;   // target position, pixels (x right, y down)
layout(location = 1) in vec2 uv;    // source position / frame size
uniform vec2 size;
out vec2 tc;
void main() {
    tc = uv;
    gl_Position = vec4(pos / size * 2.0 - 1.0, 0.0, 1.0);
}
"""
_FRAGMENT = """#version 330 core
in vec2 tc;
uniform sampler2D image;
out vec4 colour;
void main() { colour = texture(image, tc); }
"""


# ------------------------------------------------------------------------------------ the subject
def _read_media(path: Path) -> Tuple[list, bool]:
    """Frames (BGR uint8) of a photo or of a video's first MAX_VIDEO_FRAMES; and whether it is a photo."""
    from talkingface.util.media import read_video

    if path.suffix.lower() in IMAGE_EXTS:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise UserInputError(f"cannot read image {path}")
        return [img], True
    try:
        frames = read_video(path, max_frames=MAX_VIDEO_FRAMES)
    except UserInputError:
        raise
    except Exception as exc:  # ffmpeg could not decode it
        raise UserInputError(f"cannot read {path} as a photo or video: {exc}") from exc
    if not frames:
        raise UserInputError(f"no video frames in {path}")
    return frames, False


def subject_from_media(path: Union[str, Path]) -> Tuple[Subject, np.ndarray, np.ndarray]:
    """A photo or short video -> (Subject with the means, source frame (H, W, 3) BGR, its landmarks (478, 3))."""
    from talkingface.mediapipe_utils import FaceLandmarker, landmarks_for_video

    path = Path(path)
    frames, photo = _read_media(path)
    if photo:
        with FaceLandmarker(static_image_mode=True) as mesh:
            lm = mesh(frames[0])
        if lm is None:
            raise NoFaceError(f"no face found in {path}")
        lms = lm[None]
    else:
        try:
            lms = landmarks_for_video(frames, progress=False)
        except NoFaceError as exc:
            raise NoFaceError(f"{path}: {exc}") from exc
    dense, head7 = canonicalize(lms)
    if not np.isfinite(dense).all():
        raise NoFaceError(f"{path}: the face mesh gave no usable pose")
    idx = int(np.argmin(mouth_opening(lms))) if len(lms) > 1 else 0
    h, w = frames[idx].shape[:2]
    subject = Subject(dense.mean(0), head7.mean(0), (h, w), frames[idx])
    log.info("%s: %s, %d frame(s) for the means, source frame %d (%dx%d)", path, "photo" if photo else "video",
             len(frames), idx, w, h)
    return subject, frames[idx], lms[idx]


# -------------------------------------------------------------------------------------- the mesh
def _affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2-D affine (3, 2) with [x, y, 1] @ A ~ dst."""
    a = np.hstack([src, np.ones((len(src), 1))])
    return np.linalg.lstsq(a, dst, rcond=None)[0]


class WarpMesh:
    """Source vertices = 478 landmarks + inner ring + outer ring + border; triangles from Delaunay."""

    def __init__(self, landmarks: np.ndarray, frame_size: Tuple[int, int]):
        h, w = frame_size
        self.size = (w, h)
        lm = np.asarray(landmarks, np.float64)[:, :2]
        self.source_landmarks = lm
        oval = lm[MP_FACE_OVAL]
        centre = oval.mean(0)
        inner = centre + INNER_RING * (oval - centre)
        outer = centre + OUTER_RING * (oval - centre)
        t = np.linspace(0.0, 1.0, BORDER_STEPS + 1)[:-1]
        zero = np.zeros_like(t)
        border = np.concatenate([np.stack([t * w, zero], 1), np.stack([zero + w, t * h], 1),
                                 np.stack([w - t * w, zero + h], 1), np.stack([zero, h - t * h], 1)])
        # rings are kept only inside the frame (minus a margin), away from the border points
        margin = 0.02 * max(w, h)

        def inside(p):
            return (p[:, 0] > margin) & (p[:, 0] < w - margin) & (p[:, 1] > margin) & (p[:, 1] < h - margin)

        inner, outer = inner[inside(inner)], outer[inside(outer)]
        self.n_lm, self.n_inner, self.n_outer = len(lm), len(inner), len(outer)
        self.source = np.concatenate([lm, inner, outer, border]).astype(np.float64)
        self.triangles = Delaunay(self.source).simplices.astype(np.uint32)
        self.uv = (self.source / [w, h]).astype(np.float32)
        self._rigid = np.array(MP_FACE_OVAL + [1, 4, 6, 168, 33, 133, 263, 362], np.int64)

    def target(self, landmarks: np.ndarray) -> np.ndarray:
        """Target landmarks (478, >=2) px -> all vertex positions (V, 2) px."""
        tgt = np.asarray(landmarks, np.float64)[:, :2]
        a = _affine(self.source_landmarks[self._rigid], tgt[self._rigid])
        out = self.source.copy()
        out[: self.n_lm] = tgt
        s0, s1 = self.n_lm, self.n_lm + self.n_inner
        ring = np.hstack([out[s0:s1], np.ones((self.n_inner, 1))]) @ a
        out[s0:s1] = ring
        s2 = s1 + self.n_outer
        moved = np.hstack([out[s1:s2], np.ones((self.n_outer, 1))]) @ a
        out[s1:s2] += OUTER_FOLLOW * (moved - out[s1:s2])
        return out


class FaceWarper(MeshProgram):
    """Offscreen OpenGL renderer of a frame warped by a :class:`WarpMesh`: ``warp(target_landmarks)`` ->
    (H, W, 3) uint8 BGR. One EGL context per warper; ``close()`` frees it."""

    def __init__(self, frame_bgr: np.ndarray, landmarks: np.ndarray, backend: str = "auto"):
        self.frame = np.ascontiguousarray(frame_bgr)
        h, w = self.frame.shape[:2]
        self.mesh = WarpMesh(landmarks, (h, w))
        self._ctx, gl = create_context(backend, (w, h))
        self._gl = gl
        self._prog = compile_program(gl, _VERTEX, _FRAGMENT)
        self._fbo = Framebuffer(gl, w, h)
        gl.glUseProgram(self._prog)
        gl.glUniform2f(gl.glGetUniformLocation(self._prog, "size"), float(w), float(h))
        gl.glUniform1i(gl.glGetUniformLocation(self._prog, "image"), 0)
        self._tex = gl.glGenTextures(1)
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D, self._tex)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        # BGR bytes uploaded as "RGB": the read-back's first three channels are BGR again
        gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGB8, w, h, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, self.frame)
        for key, val in ((gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR), (gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR),
                         (gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE), (gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, key, val)
        self._vao = gl.glGenVertexArrays(1)
        self._pos, self._uv, self._ebo = gl.glGenBuffers(3)
        gl.glBindVertexArray(self._vao)
        n = len(self.mesh.source)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._pos)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, n * 8, None, gl.GL_DYNAMIC_DRAW)
        gl.glEnableVertexAttribArray(0)
        gl.glVertexAttribPointer(0, 2, gl.GL_FLOAT, gl.GL_FALSE, 8, ctypes.c_void_p(0))
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._uv)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, self.mesh.uv.nbytes, self.mesh.uv, gl.GL_STATIC_DRAW)
        gl.glEnableVertexAttribArray(1)
        gl.glVertexAttribPointer(1, 2, gl.GL_FLOAT, gl.GL_FALSE, 8, ctypes.c_void_p(0))
        tri = np.ascontiguousarray(self.mesh.triangles)
        gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, self._ebo)
        gl.glBufferData(gl.GL_ELEMENT_ARRAY_BUFFER, tri.nbytes, tri, gl.GL_STATIC_DRAW)
        self._n_index = tri.size
        gl.glBindVertexArray(0)
        gl.glDisable(gl.GL_DEPTH_TEST)
        gl.glDisable(gl.GL_CULL_FACE)
        gl.glDisable(gl.GL_BLEND)
        gl.glClearColor(0.0, 0.0, 0.0, 1.0)

    def warp(self, target_landmarks: np.ndarray) -> np.ndarray:
        """Target landmarks (478, >=2) px of the frame -> the warped frame (H, W, 3) uint8 BGR."""
        gl = self._gl
        self._ctx.make_current()
        pos = np.ascontiguousarray(self.mesh.target(target_landmarks), np.float32)
        self._fbo.bind()
        gl.glUseProgram(self._prog)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        self._draw(self._pos, pos)
        return np.ascontiguousarray(self._fbo.read()[:, :, :3])

    def _gl_buffers(self) -> list:
        return [self._pos, self._uv, self._ebo]


# ---------------------------------------------------------------------------------- the cavity
def inner_gap(landmarks: np.ndarray) -> float:
    """Inner-lip gap |p14 - p13| in px."""
    lm = np.asarray(landmarks, np.float64)
    return float(np.linalg.norm(lm[MP_LOWER_INNER_LIP_MID, :2] - lm[MP_UPPER_INNER_LIP_MID, :2]))


def fill_mouth(frame: np.ndarray, target_landmarks: np.ndarray, source_gap: float) -> np.ndarray:
    """Paint the target's inner-lip polygon dark, in place, with opacity rising from 0 (gap no wider than
    the source's) to 1 (3 % of the inter-ocular distance wider). Returns ``frame``."""
    lm = np.asarray(target_landmarks, np.float64)
    iod = float(inter_ocular(lm[None])[0])
    alpha = np.clip((inner_gap(lm) - source_gap) / max(0.03 * iod, 1.0), 0.0, 1.0)
    if alpha <= 0.0:
        return frame
    poly = lm[MP_LIPS_INNER, :2]
    h, w = frame.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - 4, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 5, [w, h])
    if x1 <= x0 or y1 <= y0:
        return frame
    shift = 4  # sub-pixel polygon edges
    pts = np.round((poly - [x0, y0]) * (1 << shift)).astype(np.int32)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift)
    m = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) / 255.0
    # darker towards the middle: a blurred, eroded copy of the mask mixes the core colour in
    core = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.25 * (y1 - y0)))[..., None]
    colour = CAVITY_BGR + (CAVITY_CORE_BGR - CAVITY_BGR) * np.clip(core * 1.5, 0, 1)
    a = (alpha * m)[..., None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.round(roi * (1 - a) + colour * a).astype(np.uint8)
    return frame


# ------------------------------------------------------------------------- DINet_mini's interior
class MouthPainter:
    """DINet_mini paints the opened mouth of the warped frames, as in the mini route's interior blend.

    Per frame: the 128 mouth crop of the warped frame (rects of the whole clip from the target landmarks,
    :func:`talkingface.data.mouth_crop.video_mouth_rects`), a label image in place of the mini renderer's
    GL render (zero warp field everywhere, the lips and, inside the target's inner lips, the renderer's
    procedural teeth bands and cavity, :func:`talkingface.data.teeth_labels.renderer_teeth_labels`), the
    reference feature of the photo's own mouth window plus teeth references
    (:func:`talkingface.mini_reference.build_reference`: the photo's teeth when its mouth is open,
    else procedural ones). The network's output replaces only the mouth opening (blend "interior");
    lips and skin stay the warp's pixels.
    """

    def __init__(self, photo: np.ndarray, source_landmarks: np.ndarray, target_landmarks: np.ndarray,
                 checkpoint: Optional[Union[str, Path]] = None):
        import torch

        from mini_live.generate_fusion_mask import load_fusion_masks
        from talkingface.data.mouth_crop import standard_points, video_mouth_rects
        from talkingface.mini_pack import DEFAULT_CHECKPOINT
        from talkingface.mini_reference import build_reference, reference_tensor, teeth_references
        from talkingface.models.DINet_mini import MODEL_SIZE, DINet_mini_pipeline, load_dinet_mini

        h, w = photo.shape[:2]
        face_mask, mouth_mask = load_fusion_masks()
        self.pipe = DINet_mini_pipeline(3, 12, face_mask, mouth_mask, blend="interior").eval()
        net, _ = load_dinet_mini(checkpoint or DEFAULT_CHECKPOINT)
        self.pipe.infer_model = net.eval().fused()
        src = np.asarray(source_landmarks, np.float64)[None]
        tgt = np.asarray(target_landmarks, np.float64)
        try:
            src_rect = video_mouth_rects(src, (w, h), smooth=False)
            self.rects = video_mouth_rects(tgt, (w, h))
        except ValueError as exc:  # the mouth leaves the frame
            raise UserInputError(f"mouth crop: {exc}") from exc
        src_std = standard_points(src, src_rect, MODEL_SIZE)
        teeth = teeth_references([photo], src_rect, src_std)
        ref = build_reference(photo, src_rect[0], src_std[0], teeth)
        with torch.no_grad():
            self.pipe.ref_input(reference_tensor(ref))
        self.points = standard_points(tgt, self.rects, MODEL_SIZE)
        self.size = MODEL_SIZE
        self._no_warp = np.full((MODEL_SIZE, MODEL_SIZE, 4), (128, 128, 128, 255), np.uint8)  # zero warp field

    def labels(self, i: int) -> np.ndarray:
        """The label image of frame i (128, 128, 4) uint8 RGBA, the mini renderer's colour code."""
        from talkingface.data.teeth_labels import label_colours, lip_labels, renderer_teeth_labels

        lm = self.points[i]
        labels = renderer_teeth_labels(lip_labels(lm, (self.size, self.size)), lm)
        colour, mask = label_colours(labels)
        rgb = np.where(mask[..., None] > 0, colour * 255.0, 128.0)
        return np.dstack([np.round(rgb), np.full(mask.shape, 255.0)]).astype(np.uint8)

    def paint(self, frame: np.ndarray, i: int) -> np.ndarray:
        """Warped frame i (H, W, 3) BGR -> a new frame with the mouth opening painted by DINet_mini."""
        from talkingface.data.mouth_crop import standard_image
        from talkingface.fast.mini import mouth_interior_visible
        from talkingface.render_model_mini import eager_change, paste_change

        gl = self.labels(i)
        if not mouth_interior_visible(gl):  # the interior blend weight is 0 everywhere: nothing to paint
            return frame
        rect = self.rects[i]
        crop = standard_image(frame, rect, self.size)
        return paste_change(frame, rect, eager_change(self.pipe, crop, gl, self._no_warp))
