"""RenderModelMini: the DH_live_mini per-frame renderer on a loaded asset pack (docs/REFERENCE.md §1.7, docs/REFERENCE.md §2.2).

    pack = load_asset_pack("video_data/mini")              # talkingface.mini_pack (re-exported here)
    model = RenderModelMini(device="cpu")                  # DINet_mini weights + two GL renderers
    model.reset_charactor(pack, basis=basis)               # mesh, blendshape table, reference feature
    frame = model.interface(frame_index, bs)               # 6 blendshape weights -> BGR video frame

Per frame: the GL renderer morphs the avatar's wrap mesh by the weights and draws its warp field and
mouth labels in the 128 crop; the DINet_mini pipeline turns crop + render into the new mouth; the
change is pasted into the full frame. The original's file and class (``RenderModel_Mini``) held the
pack reader and the offline loop too; here they live in :mod:`talkingface.mini_pack` and
:mod:`talkingface.mini_pipeline` (mirroring :mod:`talkingface.render_model` /
:mod:`talkingface.dhlive_pipeline`), and the pack names users reach for are re-exported below.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from mini_live.generate_fusion_mask import load_fusion_masks
from mini_live.obj.utils import bs_table_from_basis, load_bs_table, load_wrap_template
from mini_live.obj.wrap_utils import LABEL_ANCHOR, LABEL_LOWER_LIP, LABEL_LOWER_TEETH, LABEL_SKIN, LABEL_UPPER_LIP
from mini_live.render import MouthRenderer
from talkingface.data.mouth_crop import standard_image
from talkingface.errors import UserInputError
from talkingface.export.runtime import resolve_engine
from talkingface.fast.mini import FastMiniPipeline
from talkingface.fast.yuv import FileSpan, I420Frames, even_box
from talkingface.mini_pack import DEFAULT_CHECKPOINT, AssetPack, PathLike, load_asset_pack, pack_reference, weights_id
from talkingface.mini_reference import reference_tensor
from talkingface.models.DINet_mini import (INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y, DINet_mini_pipeline,
                                           load_dinet_mini)
from talkingface.util.files import check_input_file

__all__ = ["RenderModelMini", "mesh_bs_table", "warp_only_mesh", "loop_index", "paste_change", "eager_change",
           # the pack names a user of the renderer needs, re-exported from talkingface.mini_pack
           "AssetPack", "load_asset_pack", "DEFAULT_CHECKPOINT"]

log = logging.getLogger(__name__)


def mesh_bs_table(mesh, basis=None) -> np.ndarray:
    """The blendshape table (K, V, 3) for ``mesh``.

    With ``basis`` (a ``talkingface.mouth_basis.BlendshapeBasis``, the one the audio model predicts)
    the table is built from it through the mesh's MediaPipe ids, so the weights mean what the audio
    model meant. Without, the committed table of the project's template is used, re-indexed through
    MediaPipe ids when ``mesh`` has another topology (an original pack).
    """
    if basis is not None:
        return bs_table_from_basis(basis, mesh)

    table = load_bs_table()
    template = load_wrap_template()
    if len(mesh.vertices) == len(template.vertices) and np.array_equal(mesh.mp_ids, template.mp_ids):
        return table
    column = {int(m): v for v, m in enumerate(template.mp_ids) if m >= 0}
    out = np.zeros((table.shape[0], len(mesh.vertices), 3), np.float32)
    for v, m in enumerate(mesh.mp_ids):
        if m >= 0 and int(m) in column and mesh.labels[v] != LABEL_ANCHOR:
            out[:, v] = table[:, column[int(m)]]
    lower_teeth_template = np.flatnonzero(template.labels == LABEL_LOWER_TEETH)
    if len(lower_teeth_template):
        out[:, np.asarray(mesh.labels) == LABEL_LOWER_TEETH] = table[:, lower_teeth_template].mean(axis=1, keepdims=True)
    return out


def warp_only_mesh(mesh):
    """The mesh with lips drawn as skin and no teeth/cavity faces: a pure warp field, no labels
    (the "no network" baseline renders with it)."""
    labels = np.asarray(mesh.labels, np.float64).copy()
    labels[np.isclose(labels, LABEL_UPPER_LIP) | np.isclose(labels, LABEL_LOWER_LIP)] = LABEL_SKIN
    keep = (labels[mesh.faces] < 2.5).all(axis=1)
    return dataclasses.replace(mesh, labels=labels, faces=mesh.faces[keep])


def loop_index(i: int, n: int) -> int:
    """Frame of a ping-pong (palindrome) loop of n frames at step i: 0..n-1, n-1..0, ..."""
    if n <= 1:
        return 0
    k = i % (2 * n)
    return k if k < n else 2 * n - 1 - k


class RenderModelMini:
    """Per-frame DH_live_mini synthesis: GL warp/labels -> DINet_mini pipeline -> paste.

    ``checkpoint``: DINet_mini weights in any layout :func:`load_dinet_mini_state` reads.
    ``warp_only``: render without mouth labels and skip the network (the comparison baseline).
    ``blend``: "interior" (default: the network paints only the mouth opening, lips and skin are
    warped; a second, label-free render per frame) or "original" (docs/REFERENCE.md §2.2, the network's
    output over the whole mouth window), see :class:`~talkingface.models.DINet_mini.DINet_mini_pipeline`.
    On held-out self-reconstruction the interior blend scores higher (checkpoint/DINet_mini/DINet_mini.md).
    ``engine``: ``auto`` (default: ONNX Runtime when installed and on CPU, see
    :class:`talkingface.fast.mini.FastMiniPipeline`; the "original" blend always runs in torch), ``onnx``
    or ``torch``. ``threads``: ONNX Runtime intra-op threads (default: torch's thread count).
    """

    def __init__(self, checkpoint: PathLike = DEFAULT_CHECKPOINT, device: str = "cpu", backend: str = "auto",
                 warp_only: bool = False, blend: str = "interior", engine: str = "auto",
                 threads: Optional[int] = None):
        face_mask, mouth_mask = load_fusion_masks()
        self.device = device
        self.warp_only = warp_only
        self.engine = resolve_engine(engine) if str(device) == "cpu" and (blend == "interior" or warp_only) \
            else "torch"
        self.threads = threads
        self.fast: Optional[FastMiniPipeline] = None
        self.pipeline = DINet_mini_pipeline(3, 12, face_mask, mouth_mask, blend=blend).to(device).eval()
        self.checkpoint_id: Optional[str] = None
        self.loadModel(checkpoint)
        self.renderer = MouthRenderer(size=2 * MODEL_SIZE, backend=backend)
        need_clean = blend == "interior" and not warp_only
        # the label-free render only supplies a smooth warp field: render it straight at 128
        self.warp_renderer = MouthRenderer(size=MODEL_SIZE, backend=backend) if need_clean else None
        self.pack: Optional[AssetPack] = None
        self.timings: Dict[str, float] = {"gl": 0.0, "network": 0.0, "paste": 0.0}
        self.cpu_timings: Dict[str, float] = dict(self.timings)  # thread CPU seconds of the same stages

    def loadModel(self, checkpoint: PathLike) -> None:  # noqa: N802 (original's name)
        """Load DINet_mini weights (strict) and keep a BatchNorm-folded copy for inference."""
        net, state = load_dinet_mini(check_input_file(checkpoint, "DINet_mini checkpoint"), map_location=self.device)
        self.pipeline.infer_model = net.eval().fused()
        self.checkpoint_id = weights_id(state)
        if self.engine == "onnx":
            self.fast = FastMiniPipeline(self.pipeline, threads=self.threads or torch.get_num_threads(),
                                         warp_only=self.warp_only)

    def reset_charactor(self, pack: AssetPack, use_pack_ref: Optional[bool] = None, basis=None) -> None:  # noqa: N802
        """Set the avatar: upload its mesh and blendshape table, set the reference feature.

        ``use_pack_ref``: True uses the pack's ``ref_data`` as is, False recomputes it, None (default)
        uses it only when the pack says it was made with the loaded checkpoint. ``basis``: the
        ``BlendshapeBasis`` of the audio model that will drive the mouth (see :func:`mesh_bs_table`).
        """
        self.pack = pack
        self.renderer.set_mesh(warp_only_mesh(pack.mesh) if self.warp_only else pack.mesh)
        table = mesh_bs_table(pack.mesh, basis)
        self.renderer.set_blendshapes(table)
        if self.warp_renderer is not None:
            self.warp_renderer.set_mesh(warp_only_mesh(pack.mesh))
            self.warp_renderer.set_blendshapes(table)
        if use_pack_ref is None:
            use_pack_ref = pack.ref_data is not None and pack.ref_checkpoint == self.checkpoint_id
        if use_pack_ref:
            if pack.ref_data is None:
                raise UserInputError("the asset pack has no 6480-float ref_data to use")
            feature = torch.from_numpy(pack.ref_data.reshape(1, 20, 18, 18)).to(self.device)
            self.pipeline.infer_model.ref_in_feature = feature
        else:
            log.info("computing the reference feature from the pack's frame 0 with the loaded checkpoint")
            with torch.no_grad():
                self.pipeline.ref_input(reference_tensor(pack_reference(pack)).to(self.device))
        if self.fast is not None:
            self.fast.set_reference(self.pipeline.infer_model.ref_in_feature,
                                    calibration=self._calibration_frames(basis))

    def _calibration_frames(self, basis, frames: int = 4, per_frame: int = 3) -> List[Tuple[np.ndarray, ...]]:
        """(crop, gl, gl_warp) of ``frames`` evenly spaced pack frames, each rendered with ``per_frame``
        random mouth shapes (weights ~ N(0, 1.5 coef_std) of the audio model's basis, fixed seed):
        the int8 calibration set of :meth:`FastMiniPipeline.set_reference` (closed mouths are skipped
        there). Empty without a basis (its coefficient scale is unknown) or on the warp-only path."""
        if basis is None or self.warp_only or self.warp_renderer is None:
            return []
        rng = np.random.default_rng(0)
        out = []
        for k in np.linspace(0, len(self.pack) - 1, frames).round().astype(int):
            crop = standard_image(self.pack.frames[k], self.pack.rects[k], MODEL_SIZE)
            for _ in range(per_frame):
                bs = rng.normal(0.0, 1.5, len(basis.coef_std)) * basis.coef_std
                out.append((crop, self.render_gl(k, bs, window_only=True), self.render_gl(k, bs, self.warp_renderer)))
        return out

    def render_gl(self, frame_index: int, bs: Sequence[float], renderer=None, window_only: bool = False
                  ) -> np.ndarray:
        """GL warp field + labels of one frame at the 128 scale: 128x128x4 uint8 RGBA (the label render is
        drawn at 256 and decimated, as the original does). ``window_only``: draw and read back only the
        network's 72x72 window (the interior blend reads the label render nowhere else); the rest of
        the array is the background value (128, 128, 128, 0)."""
        pack = self.pack
        renderer = renderer or self.renderer
        scale = renderer.size / float(MODEL_SIZE)
        pose = np.diag([scale, scale, scale, 1.0]) @ pack.mats[frame_index]
        step = int(round(scale))
        if not window_only:
            return renderer.render(pack.points[frame_index] * scale, pose, bs)[::step, ::step]
        box = (PAD_X * step, PAD_Y * step, (PAD_X + INPUT_WIDTH) * step, (PAD_Y + INPUT_HEIGHT) * step)
        out = np.empty((MODEL_SIZE, MODEL_SIZE, 4), np.uint8)
        out[...] = (128, 128, 128, 0)
        out[PAD_Y:PAD_Y + INPUT_HEIGHT, PAD_X:PAD_X + INPUT_WIDTH] = \
            renderer.render(pack.points[frame_index] * scale, pose, bs, region=box)[::step, ::step]
        return out

    @torch.no_grad()
    def interface(self, frame_index: int, bs: Sequence[float]) -> np.ndarray:
        """One output frame (HxWx3 uint8 BGR) for video frame ``frame_index`` and weights ``bs``."""
        if self.pack is None:
            raise RuntimeError("call reset_charactor(pack) first")
        return self._render_into(frame_index, bs, self.pack.frames[frame_index], self.pack.rects[frame_index])

    @torch.no_grad()
    def render_i420(self, frame_index: int, bs: Sequence[float]) -> List[Union[memoryview, FileSpan]]:
        """Like :meth:`interface` for a pack loaded with ``frame_store="i420"`` or ``"i420-spill"``: the
        output frame as I420 parts for ``VideoWriter.write_i420`` (:meth:`I420Frames.planes_with_region`).
        Only the mouth rect (grown to even coordinates) is converted to BGR, rendered into and converted
        back; the rest is the stored frame as is."""
        frames = self.pack.frames if self.pack is not None else None
        if not isinstance(frames, I420Frames):
            raise RuntimeError("render_i420 needs a pack loaded with frame_store='i420' or 'i420-spill'")
        t0 = time.perf_counter(), time.thread_time()
        box = even_box(self.pack.rects[frame_index], frames.width, frames.height)
        region = frames.region_bgr(frame_index, box)
        rect = np.asarray(self.pack.rects[frame_index]) - np.array([box[0], box[1], box[0], box[1]])
        self._add_time("paste", t0)
        out = self._render_into(frame_index, bs, region, rect)
        t0 = time.perf_counter(), time.thread_time()
        planes = list(frames.planes_with_region(frame_index, box, out))
        self._add_time("paste", t0)
        return planes

    def _add_time(self, stage: str, start: Tuple[float, float]) -> None:
        self.timings[stage] += time.perf_counter() - start[0]
        self.cpu_timings[stage] += time.thread_time() - start[1]

    def _render_into(self, frame_index: int, bs: Sequence[float], image: np.ndarray, rect: Sequence[int]
                     ) -> np.ndarray:
        """GL renders, network stage and paste of one frame into ``image`` (the frame or a region of it
        holding ``rect``); returns a new image."""
        t0 = time.perf_counter(), time.thread_time()
        gl = self.render_gl(frame_index, bs, window_only=self.warp_renderer is not None)
        gl_clean = self.render_gl(frame_index, bs, self.warp_renderer) if self.warp_renderer is not None else None
        self._add_time("gl", t0)
        t0 = time.perf_counter(), time.thread_time()
        crop = standard_image(image, rect, MODEL_SIZE)
        if self.fast is not None:
            delta = self.fast.delta(crop, None if self.warp_only else gl, gl if gl_clean is None else gl_clean)
        else:
            delta = eager_change(self.pipeline, crop, gl, gl_clean, self.device, use_network=not self.warp_only)
        self._add_time("network", t0)
        t0 = time.perf_counter(), time.thread_time()
        result = paste_change(image, rect, delta)
        self._add_time("paste", t0)
        return result

    def close(self) -> None:
        self.renderer.close()
        if self.warp_renderer is not None:
            self.warp_renderer.close()


def _rgba_tensor(image: np.ndarray, device: str) -> torch.Tensor:
    """HxWx4 uint8 RGBA (a crop or a GL render) -> 1x4xHxW float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float().div_(255.0).to(device)


@torch.no_grad()
def eager_change(pipeline: DINet_mini_pipeline, crop: np.ndarray, gl: np.ndarray, gl_warp: Optional[np.ndarray] = None,
                 device: str = "cpu", use_network: bool = True) -> np.ndarray:
    """The torch pipeline on one frame: 128x128x3 uint8 BGR crop, its label render ``gl`` and optional
    label-free render ``gl_warp`` (128x128x4 uint8 RGBA) -> the 128x128x3 float32 BGR change that
    :func:`paste_change` pastes (:class:`talkingface.fast.mini.FastMiniPipeline` ``delta`` is its fast twin)."""
    src = np.dstack([cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), np.full(crop.shape[:2], 255, np.uint8)])
    warp_t = _rgba_tensor(gl_warp, device) if gl_warp is not None else None
    out = pipeline.interface(_rgba_tensor(src, device), _rgba_tensor(gl, device), use_network=use_network,
                             gl_warp=warp_t)[0, :3]
    return crop_change(src[..., :3], out.permute(1, 2, 0).cpu().numpy())


def crop_change(src_rgb: np.ndarray, out_rgb: np.ndarray) -> np.ndarray:
    """The pipeline's change of the 128 crop in BGR pixel units: src_rgb 128x128x3 uint8, out_rgb
    128x128x3 float in [0, 1] -> 128x128x3 float32 ``255 * out - src`` (BGR)."""
    return out_rgb[..., ::-1] * 255.0 - src_rgb[..., ::-1].astype(np.float32)


def paste_change(frame: np.ndarray, rect: Sequence[int], delta_bgr: np.ndarray) -> np.ndarray:
    """A new BGR frame: ``frame`` + the 128-crop change ``delta_bgr`` (float32 BGR) resized onto ``rect``.

    Where the pipeline left the crop unchanged the frame keeps its full-resolution pixels (the
    original resized the whole 128 crop back, blurring it); only the part of ``rect`` inside the frame
    is written. delta_bgr: 128x128x3 float32 BGR change in 0..255 units. Returns a new BGR frame.
    """
    x0, y0, x1, y1 = (int(v) for v in rect)
    delta = cv2.resize(delta_bgr, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    result = frame.copy()
    h, w = frame.shape[:2]
    # a rect crossing the frame's border (tight crop, padded when cut): paste the part inside the frame
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 <= sx0 or sy1 <= sy0:
        return result
    region = result[sy0:sy1, sx0:sx1].astype(np.float32) + delta[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
    result[sy0:sy1, sx0:sx1] = np.clip(np.round(region), 0, 255).astype(np.uint8)
    return result

