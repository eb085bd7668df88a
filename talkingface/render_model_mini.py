"""DH_live_mini avatar packs and the per-frame mini renderer (reference_system.md §1.4, §1.7, §2.2).

An **asset pack** is a folder with ``01.mp4`` (the avatar's 25 fps silent video) and
``combined_data.json.gz`` in the original's JSON layout::

    uid, frame_num, authorized, ref_data (6480 floats = the 1x20x18x18 reference feature),
    face3D_obj: ["v x y z label index", ..., "f a b c", ...]   (the avatar's wrap mesh),
    json_data[frame]: {rect: [x0, y0, x1, y1], points: 16 pose floats (4x4 transposed, i.e.
        column-major) + 2 x P wrap-vertex positions in the model_size crop}

Three variants are read: ours (written by :func:`write_asset_pack`), the original's 8b74e3f packs
(266-vertex mesh) and its 3e5ce86 packs (267 vertices with a -2 "cavity" label, ``size`` 184).
Our packs add one key, ``talkingface``, with what the original layout cannot say: the MediaPipe id
of every mesh vertex, the number of landmark-driven vertices, the checkpoint that made ``ref_data``
and the teeth-reference seed. For the original's packs those are recovered at load time: the face
mesh is run on a few frames of ``01.mp4`` and each pack point is matched to a landmark.

``ref_data`` belongs to the weights that computed it. When the loaded checkpoint is not the one a
pack names, :class:`RenderModelMini` recomputes the reference feature from the pack's frame 0 and
two teeth references (deterministic; see :func:`teeth_references`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from talkingface.errors import UserInputError
from talkingface.models.DINet_mini import INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y
from talkingface.util.files import write_image

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
PACK_VIDEO = "01.mp4"
PACK_JSON = "combined_data.json.gz"
REF_DATA_SIZE = 20 * 18 * 18
#: The original's 3e5ce86 cavity label; drawn black here (any label strictly between 3 and 4).
CAVITY_LABEL_3E5CE86 = -2.0
CAVITY_LABEL = 3.5
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoint" / "DINet_mini" / "epoch_40.pth"
#: Mouth opening (inner-lip gap / inter-ocular distance) above which a frame can serve as a teeth reference.
TEETH_REF_MIN_OPENING = 0.08
DEFAULT_TEETH_SEED = 1009


# -------------------------------------------------------------------------------------- pack data
@dataclass
class AssetPack:
    """A loaded avatar pack (frames decoded, everything at the 128 pipeline scale).

    frames: N x HxWx3 uint8 BGR; rects: (N, 4) int64 [x0, y0, x1, y1]; mats: (N, 4, 4) model space ->
    128-crop pixels; points: (N, P, 2) crop pixels of the landmark-driven wrap vertices;
    mesh: ``mini_live.obj.wrap_utils.WrapMesh`` (with MediaPipe ids); reference: 72x72x12 uint8 RGB +
    lip-map channels of the 3 references (built on demand); ref_data: (6480,) or None.
    """

    frames: List[np.ndarray]
    rects: np.ndarray
    mats: np.ndarray
    points: np.ndarray
    mesh: object
    variant: str
    uid: str
    ref_data: Optional[np.ndarray] = None
    ref_checkpoint: Optional[str] = None
    teeth_seed: int = DEFAULT_TEETH_SEED
    frame0_landmarks: Optional[np.ndarray] = None  # (478, 3) in 128-crop pixels
    reference: Optional[np.ndarray] = None
    meta: Dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


def weights_id(state: Dict[str, torch.Tensor]) -> str:
    """A short content hash of a DINet_mini state dict (names ``ref_data``'s checkpoint in packs)."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _read_json_gz(path: Path) -> dict:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"cannot read asset pack data {path}: {exc}") from exc


def _parse_points(json_data: list, model_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """json_data -> (rects (N,4) int, mats (N,4,4) at the 128 scale, points (N,P,2) at 128)."""
    rects = np.array([f["rect"] for f in json_data], np.int64)
    flat = np.array([f["points"] for f in json_data], np.float64)
    if flat.ndim != 2 or flat.shape[1] < 18 or (flat.shape[1] - 16) % 2:
        raise UserInputError("asset pack points must be 16 pose floats + 2 x P coordinates per frame")
    mats = flat[:, :16].reshape(-1, 4, 4).transpose(0, 2, 1)
    points = flat[:, 16:].reshape(len(flat), -1, 2)
    s = MODEL_SIZE / float(model_size)
    if s != 1.0:
        mats = np.diag([s, s, s, 1.0]) @ mats
        points = points * s
    return rects, mats, points


def _check_rects(rects: np.ndarray, frame_shape: Tuple[int, int]) -> None:
    h, w = frame_shape[:2]
    bad = np.nonzero((rects[:, 0] < 0) | (rects[:, 1] < 0) | (rects[:, 2] > w) | (rects[:, 3] > h)
                     | (rects[:, 2] <= rects[:, 0]) | (rects[:, 3] <= rects[:, 1]))[0]
    if len(bad):
        raise UserInputError(f"asset pack frame {int(bad[0])}: rect {rects[bad[0]].tolist()} is not inside the "
                             f"{w}x{h} video")


def load_asset_pack(pack_dir: PathLike) -> AssetPack:
    """Read an asset pack folder (ours or the original's, see the module doc)."""
    from mini_live.obj.wrap_utils import WrapMesh
    from talkingface.util.media import read_video

    pack_dir = Path(pack_dir)
    if (pack_dir / "assets" / PACK_JSON).is_file():
        pack_dir = pack_dir / "assets"
    video, data_path = pack_dir / PACK_VIDEO, pack_dir / PACK_JSON
    for p in (video, data_path):
        if not p.is_file():
            raise UserInputError(f"not an asset pack: {p} is missing")
    data = _read_json_gz(data_path)
    for key in ("frame_num", "face3D_obj", "json_data"):
        if key not in data:
            raise UserInputError(f"{data_path}: key {key!r} missing")
    ours = data.get("talkingface") or {}
    model_size = int(data.get("size", MODEL_SIZE))
    variant = "talkingface" if ours else ("3e5ce86" if "version" in data or model_size != MODEL_SIZE else "8b74e3f")
    rects, mats, points = _parse_points(data["json_data"], model_size)
    frames = read_video(video)
    n = min(len(frames), len(rects))
    if n < 1:
        raise UserInputError(f"{video}: no frames")
    if len(frames) != len(rects):
        log.warning("%s has %d frames but the pack describes %d; using %d", video, len(frames), len(rects), n)
    frames, rects, mats, points = frames[:n], rects[:n], mats[:n], points[:n]
    _check_rects(rects, frames[0].shape)

    lines = [ln.replace(f" {CAVITY_LABEL_3E5CE86:.2f} ", f" {CAVITY_LABEL:.2f} ") for ln in data["face3D_obj"]]
    mesh = WrapMesh.from_obj_lines(lines, num_targets=points.shape[1])
    ref_data = np.asarray(data["ref_data"], np.float32) if len(data.get("ref_data", [])) == REF_DATA_SIZE else None
    pack = AssetPack(frames=frames, rects=rects, mats=mats, points=points, mesh=mesh, variant=variant,
                     uid=str(data.get("uid", "")), ref_data=ref_data, ref_checkpoint=ours.get("ref_checkpoint"),
                     teeth_seed=int(ours.get("teeth_seed", DEFAULT_TEETH_SEED)), meta={"path": str(pack_dir)})
    if ours:
        mesh.mp_ids = np.asarray(ours["mp_ids"], np.int64)
        if ours.get("frame0_landmarks") is not None:
            pack.frame0_landmarks = np.asarray(ours["frame0_landmarks"], np.float64).reshape(-1, 3)
    else:
        _recover_landmark_ids(pack)
    log.info("asset pack %s: %s format, %d frames, mesh %d vertices (%d driven)", pack_dir, variant, n,
             len(mesh.vertices), mesh.num_targets)
    return pack


def crop_landmarks(frame: np.ndarray, rect: Sequence[int], mesh=None) -> Optional[np.ndarray]:
    """Face mesh of one frame, in the 128 crop of ``rect``: (478, 3) or None when no face is found.
    ``mesh``: a static-image ``FaceLandmarker`` to reuse (one is built when omitted)."""
    from mini_live.obj.image_utils import standard_points
    from talkingface.mediapipe_utils import FaceLandmarker

    if mesh is None:
        with FaceLandmarker(static_image_mode=True) as own:
            lm = own(frame)
    else:
        lm = mesh(frame)
    if lm is None:
        return None
    return standard_points(lm[None], np.asarray(rect, np.float64)[None], MODEL_SIZE)[0]


def _recover_landmark_ids(pack: AssetPack, n_probe: int = 3) -> None:
    """Give an original pack's driven vertices MediaPipe ids: run the face mesh on a few frames and
    assign each pack point to a distinct landmark by minimum mean distance (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    from talkingface.mediapipe_utils import FaceLandmarker

    probes = sorted(set(np.linspace(0, len(pack) - 1, n_probe).round().astype(int).tolist()))  # includes 0
    cost = np.zeros((pack.points.shape[1], 478))
    used = 0
    with FaceLandmarker(static_image_mode=True) as mesh:
        for k in probes:
            lm = crop_landmarks(pack.frames[k], pack.rects[k], mesh)
            if lm is None:
                continue
            if k == 0:  # the reference is built from frame 0 (pack_reference)
                pack.frame0_landmarks = lm
            cost += np.linalg.norm(pack.points[k][:, None, :] - lm[None, :, :2], axis=-1)
            used += 1
    if used == 0:
        raise UserInputError(f"asset pack {pack.meta.get('path')}: no face found in its video")
    rows, cols = linear_sum_assignment(cost / used)
    ids = np.full(len(pack.mesh.vertices), -1, np.int64)
    ids[rows] = cols
    pack.mesh.mp_ids = ids
    err = float((cost / used)[rows, cols].mean())
    log.info("matched %d pack points to face-mesh landmarks (mean distance %.2f px at 128)", len(rows), err)


# ------------------------------------------------------------------------------------ references
def teeth_references(frames: Sequence[np.ndarray], rects: np.ndarray, landmarks: Optional[np.ndarray],
                     seed: int = DEFAULT_TEETH_SEED, n: int = 2) -> List[np.ndarray]:
    """``n`` teeth references (72x72x4 uint8: RGB of the mouth opening + lip map), deterministic.

    From the avatar's own most open frames when its mouth opens enough (landmarks: (N, 478, 3)
    in 128-crop pixels, or None), else procedural ones drawn with ``seed``.
    """
    from talkingface.data.teeth_labels import inner_mouth, lip_map, mouth_labels, procedural_teeth_reference
    from talkingface.utils import mouth_opening

    refs: List[np.ndarray] = []
    if landmarks is not None and len(landmarks):
        opening = mouth_opening(landmarks)
        for i in np.argsort(-opening)[:n]:
            if opening[i] < TEETH_REF_MIN_OPENING:
                break
            rgb = _crop_rgb(frames[i], rects[i])
            labels = mouth_labels(rgb, landmarks[i][:, :2])
            win = _window(rgb), _window(labels)
            refs.append(np.dstack([inner_mouth(*win), lip_map(win[1])]))
    k = 0
    while len(refs) < n:
        refs.append(procedural_teeth_reference(seed + k, (INPUT_HEIGHT, INPUT_WIDTH)))
        k += 1
    return refs


def _crop_rgb(frame: np.ndarray, rect: Sequence[int]) -> np.ndarray:
    from mini_live.obj.image_utils import standard_image

    return cv2.cvtColor(standard_image(frame, rect, MODEL_SIZE), cv2.COLOR_BGR2RGB)


def _window(img: np.ndarray) -> np.ndarray:
    return img[PAD_Y:PAD_Y + INPUT_HEIGHT, PAD_X:PAD_X + INPUT_WIDTH]


def build_reference(frame: np.ndarray, rect: Sequence[int], landmarks: np.ndarray,
                    teeth_refs: Sequence[np.ndarray]) -> np.ndarray:
    """The 72x72x12 uint8 reference: frame's mouth window (RGB + lip map) + the teeth references.

    landmarks: (478, >=2) of ``frame`` in its 128-crop pixels.
    """
    from talkingface.data.DHLive_mini_dataset import reference_stack
    from talkingface.data.teeth_labels import lip_labels, lip_map

    rgb = _window(_crop_rgb(frame, rect))
    labels = _window(lip_labels(np.asarray(landmarks)[:, :2], (MODEL_SIZE, MODEL_SIZE)))
    return reference_stack([rgb] + [t[..., :3] for t in teeth_refs], [lip_map(labels)] + [t[..., 3] for t in teeth_refs])


def pack_reference(pack: AssetPack) -> np.ndarray:
    """The pack's 72x72x12 reference (frame 0 + teeth references), cached on the pack."""
    if pack.reference is None:
        if pack.frame0_landmarks is None:
            pack.frame0_landmarks = crop_landmarks(pack.frames[0], pack.rects[0])
            if pack.frame0_landmarks is None:
                raise UserInputError("no face found in frame 0 of the asset pack")
        teeth = teeth_references(pack.frames, pack.rects, None, seed=pack.teeth_seed)
        pack.reference = build_reference(pack.frames[0], pack.rects[0], pack.frame0_landmarks, teeth)
    return pack.reference


def reference_tensor(reference: np.ndarray) -> torch.Tensor:
    """72x72x12 uint8 -> 1x12x72x72 float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(reference.transpose(2, 0, 1)))[None].float() / 255.0


# --------------------------------------------------------------------------------------- writing
def write_asset_pack(out_dir: PathLike, video: PathLike, landmarks: np.ndarray, checkpoint: PathLike = DEFAULT_CHECKPOINT,
                     teeth_seed: int = DEFAULT_TEETH_SEED, device: str = "cpu") -> Path:
    """Build ``out_dir/assets`` from a processed video and its (N, 478, 3) landmarks (reference §1.4).

    Steps: smooth the landmarks over time (first/last 2 frames raw); per-frame mouth rects of one
    size with smoothed centres (every border checked); landmarks in the 128 crop; poses and the
    avatar's wrap mesh (``mini_live.obj.utils.fit_avatar``); ``ref_data`` from frame 0 and two
    teeth references with ``checkpoint``. Deterministic: the uid is derived from the inputs.
    Written to a temporary folder and moved into place.
    """
    from mini_live.obj.image_utils import standard_points
    from mini_live.obj.utils import fit_avatar
    from talkingface.data.mouth_crop import video_mouth_rects
    from talkingface.web.pack_web import web_extension
    from talkingface.models.DINet_mini import DINet_mini, load_dinet_mini_state
    from talkingface.run_utils import KEYPOINT_SMOOTH_KERNEL, smooth_sequence
    from talkingface.util.media import read_video

    out_dir = Path(out_dir)
    video = Path(video)
    frames = read_video(video)
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (478, 3):
        raise UserInputError(f"landmarks must be (N, 478, 3), got {lm.shape}")
    if len(lm) != len(frames):
        raise UserInputError(f"{video} has {len(frames)} frames but the landmarks describe {len(lm)}")
    if not Path(checkpoint).is_file():
        raise UserInputError(f"DINet_mini checkpoint not found: {checkpoint}")
    lm = smooth_sequence(lm, KEYPOINT_SMOOTH_KERNEL, keep_edges=True)
    h, w = frames[0].shape[:2]
    try:
        rects = video_mouth_rects(lm, (w, h))
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc
    std = standard_points(lm, rects, MODEL_SIZE)
    mesh, mats = fit_avatar(std)
    points = std[:, mesh.target_ids, :2]

    state = load_dinet_mini_state(checkpoint)
    net = DINet_mini(3, 12)
    net.load_state_dict(state, strict=True)
    net.eval().to(device)
    teeth = teeth_references(frames, rects, std, seed=teeth_seed)
    reference = build_reference(frames[0], rects[0], std[0], teeth)
    with torch.no_grad():
        ref_feature = net.ref_input(reference_tensor(reference).to(device)).cpu().numpy().ravel()

    digest = hashlib.sha256(video.read_bytes())
    digest.update(np.ascontiguousarray(lm.astype(np.float32)).tobytes())
    uid = "matesx_" + str(uuid.UUID(digest.hexdigest()[:32]))
    json_data = []
    for rect, mat, pts in zip(rects, mats, points):
        flat = [round(float(v), 5) for v in mat.T.ravel()] + [round(float(v), 1) for v in pts.ravel()]
        json_data.append({"rect": [int(v) for v in rect], "points": flat})
    data = {
        "uid": uid,
        "frame_num": len(frames),
        "face3D_obj": mesh.obj_lines(),
        "ref_data": [round(float(v), 6) for v in ref_feature],
        "json_data": json_data,
        "authorized": False,
        "talkingface": {
            "mp_ids": [int(v) for v in mesh.mp_ids],
            "num_targets": int(mesh.num_targets),
            "ref_checkpoint": weights_id(state),
            "teeth_seed": int(teeth_seed),
            "frame0_landmarks": [round(float(v), 3) for v in std[0].ravel()],
        },
    }
    data["talkingface"]["web"] = web_extension(data)  # what the browser player needs (talkingface.web.pack_web)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / "assets"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_assets_", dir=out_dir))
    try:
        _copy_file(video, tmp / PACK_VIDEO)
        with gzip.GzipFile(tmp / PACK_JSON, "wb", mtime=0) as fh:
            fh.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))
        os.chmod(tmp, 0o755)
        if final.exists():
            import shutil

            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s (%d frames, uid %s)", final, len(frames), uid)
    return final


def write_avatar_pack(avatar_dir: PathLike, checkpoint: PathLike = DEFAULT_CHECKPOINT,
                      teeth_seed: int = DEFAULT_TEETH_SEED, device: str = "cpu") -> Path:
    """``data_preparation_web.py``: the asset pack ``avatar_dir/assets`` of a ``data_preparation_mini.py``
    folder (its ``data/processed.mp4`` + ``data/processed.pkl``); see :func:`write_asset_pack`."""
    from talkingface.preparation import load_keypoints

    avatar_dir = Path(avatar_dir)
    video, keypoints = avatar_dir / "data" / "processed.mp4", avatar_dir / "data" / "processed.pkl"
    for p in (video, keypoints):
        if not p.is_file():
            raise UserInputError(f"{p} not found: run data_preparation_mini.py VIDEO {avatar_dir} first")
    return write_asset_pack(avatar_dir, video, load_keypoints(keypoints), checkpoint=checkpoint,
                            teeth_seed=teeth_seed, device=device)


def _copy_file(src: Path, dst: Path) -> None:
    import shutil

    shutil.copyfile(src, dst)


# ------------------------------------------------------------------------------------ rendering
def resolve_blendshape_basis(audio_checkpoint: PathLike, card: dict) -> Optional[Path]:
    """The ``BlendshapeBasis`` file that decodes a blendshape audio model's outputs: named by its
    card's ``basis`` (relative to the checkpoint's folder or the repository), else
    ``blendshape_basis.npz`` beside the checkpoint; None when there is none."""
    names = [card["basis"]] if isinstance(card.get("basis"), str) else []
    names.append("blendshape_basis.npz")
    for name in names:
        for base in (Path(audio_checkpoint).parent, REPO_ROOT):
            path = Path(name) if Path(name).is_absolute() else base / name
            if path.is_file():
                return path
    return None


def mesh_bs_table(mesh, basis=None) -> np.ndarray:
    """The blendshape table (K, V, 3) for ``mesh``.

    With ``basis`` (a ``talkingface.mouth_basis.BlendshapeBasis``, the one the audio model predicts)
    the table is built from it through the mesh's MediaPipe ids, so the weights mean what the audio
    model meant. Without, the committed table of the project's template is used, re-indexed through
    MediaPipe ids when ``mesh`` has another topology (an original pack).
    """
    from mini_live.obj.utils import bs_table_from_basis, load_bs_table, load_wrap_template
    from mini_live.obj.wrap_utils import LABEL_ANCHOR, LABEL_LOWER_TEETH

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
    import dataclasses

    from mini_live.obj.wrap_utils import LABEL_LOWER_LIP, LABEL_SKIN, LABEL_UPPER_LIP

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
    warped; a second, label-free render per frame) or "original" (reference §2.2, the network's
    output over the whole mouth window), see :class:`~talkingface.models.DINet_mini.DINet_mini_pipeline`.
    On held-out self-reconstruction the interior blend scores higher (checkpoint/DINet_mini/DINet_mini.md).
    """

    def __init__(self, checkpoint: PathLike = DEFAULT_CHECKPOINT, device: str = "cpu", backend: str = "auto",
                 warp_only: bool = False, blend: str = "interior"):
        from mini_live.generate_fusion_mask import load_fusion_masks
        from mini_live.render import MouthRenderer
        from talkingface.models.DINet_mini import DINet_mini_pipeline

        face_mask, mouth_mask = load_fusion_masks()
        self.device = device
        self.pipeline = DINet_mini_pipeline(3, 12, face_mask, mouth_mask, blend=blend).to(device).eval()
        self.checkpoint_id: Optional[str] = None
        self.loadModel(checkpoint)
        self.renderer = MouthRenderer(size=2 * MODEL_SIZE, backend=backend)
        need_clean = blend == "interior" and not warp_only
        # the label-free render only supplies a smooth warp field: render it straight at 128
        self.warp_renderer = MouthRenderer(size=MODEL_SIZE, backend=backend) if need_clean else None
        self.pack: Optional[AssetPack] = None
        self.warp_only = warp_only
        self.timings: Dict[str, float] = {"gl": 0.0, "network": 0.0, "paste": 0.0}

    def loadModel(self, checkpoint: PathLike) -> None:  # noqa: N802 (original's name)
        """Load DINet_mini weights (strict) and keep a BatchNorm-folded copy for inference."""
        from talkingface.models.DINet_mini import DINet_mini, load_dinet_mini_state

        if not Path(checkpoint).is_file():
            raise UserInputError(f"DINet_mini checkpoint not found: {checkpoint}")
        state = load_dinet_mini_state(checkpoint, map_location=self.device)
        net = DINet_mini(3, 12).to(self.device)
        net.load_state_dict(state, strict=True)
        self.pipeline.infer_model = net.eval().fused()
        self.checkpoint_id = weights_id(state)

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

    def render_gl(self, frame_index: int, bs: Sequence[float], renderer=None) -> np.ndarray:
        """GL warp field + labels of one frame at the 128 scale: 128x128x4 uint8 RGBA (the label render is
        drawn at 256 and decimated, as the original does)."""
        pack = self.pack
        renderer = renderer or self.renderer
        scale = renderer.size / float(MODEL_SIZE)
        pose = np.diag([scale, scale, scale, 1.0]) @ pack.mats[frame_index]
        gl = renderer.render(pack.points[frame_index] * scale, pose, bs)
        step = int(round(scale))
        return gl[::step, ::step]

    @torch.no_grad()
    def interface(self, frame_index: int, bs: Sequence[float]) -> np.ndarray:
        """One output frame (HxWx3 uint8 BGR) for video frame ``frame_index`` and weights ``bs``."""
        import time

        from mini_live.obj.image_utils import standard_image

        if self.pack is None:
            raise RuntimeError("call reset_charactor(pack) first")
        pack = self.pack
        t0 = time.perf_counter()
        gl = self.render_gl(frame_index, bs)
        gl_clean = self.render_gl(frame_index, bs, self.warp_renderer) if self.warp_renderer is not None else None
        t1 = time.perf_counter()
        frame = pack.frames[frame_index]
        rect = pack.rects[frame_index]
        crop = standard_image(frame, rect, MODEL_SIZE)
        src = np.dstack([cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), np.full(crop.shape[:2], 255, np.uint8)])
        src_t = torch.from_numpy(src.transpose(2, 0, 1).copy())[None].float().div_(255.0).to(self.device)
        gl_warp = _gl_tensor(gl_clean, self.device) if gl_clean is not None else None
        out = self.pipeline.interface(src_t, _gl_tensor(gl, self.device), use_network=not self.warp_only,
                                      gl_warp=gl_warp)[0, :3]
        t2 = time.perf_counter()
        result = paste_delta(frame, rect, src[..., :3], out.permute(1, 2, 0).cpu().numpy())
        t3 = time.perf_counter()
        self.timings["gl"] += t1 - t0
        self.timings["network"] += t2 - t1
        self.timings["paste"] += t3 - t2
        return result

    def close(self) -> None:
        self.renderer.close()
        if self.warp_renderer is not None:
            self.warp_renderer.close()


def _gl_tensor(gl: np.ndarray, device: str) -> torch.Tensor:
    """HxWx4 uint8 GL render -> 1x4xHxW float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(gl.transpose(2, 0, 1)))[None].float().div_(255.0).to(device)


def paste_delta(frame: np.ndarray, rect: Sequence[int], src_rgb: np.ndarray, out_rgb: np.ndarray) -> np.ndarray:
    """Paste the 128-crop result into the frame as a change: frame + resize(out - src).

    Where the pipeline left the crop unchanged the frame keeps its full-resolution pixels (the
    original resized the whole 128 crop back, blurring it). src_rgb: 128x128x3 uint8; out_rgb:
    128x128x3 float in [0, 1]. Returns a new BGR frame.
    """
    x0, y0, x1, y1 = (int(v) for v in rect)
    delta = out_rgb[..., ::-1] * 255.0 - src_rgb[..., ::-1].astype(np.float32)
    delta = cv2.resize(delta, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    result = frame.copy()
    region = result[y0:y1, x0:x1].astype(np.float32) + delta
    result[y0:y1, x0:x1] = np.clip(np.round(region), 0, 255).astype(np.uint8)
    return result


# ------------------------------------------------------------------------------------- synthesis
AUDIO_CHECKPOINT_CANDIDATES = (
    REPO_ROOT / "checkpoint" / "lstm" / "lstm_blendshape.pkl",
    REPO_ROOT / "checkpoint" / "lstm" / "audio_blendshape.pkl",
    REPO_ROOT / "checkpoint" / "audio_blendshape.pkl",
)


def find_mini_audio_checkpoint() -> Path:
    """The shipped blendshape audio model: the first existing candidate, else any checkpoint under
    ``checkpoint/`` whose sidecar card says ``"target": "blendshape"``."""
    from talkingface.util.files import read_model_card

    for cand in AUDIO_CHECKPOINT_CANDIDATES:
        if cand.is_file():
            return cand
    for cand in sorted((REPO_ROOT / "checkpoint").rglob("*.pkl")):
        if read_model_card(cand).get("target") == "blendshape":
            return cand
    raise UserInputError("no blendshape audio model found under checkpoint/ (give --audio_ckpt)")


def load_mini_audio(audio_checkpoint: Optional[PathLike] = None, device: str = "cpu"):
    """The blendshape audio model that drives the mini mouth and the ``BlendshapeBasis`` that decodes
    its outputs (None when none is found: the renderer's committed table is used). Default: the shipped
    model. Raises a clear error for a missing file or a model of another target (e.g. pixel)."""
    from talkingface.audio_model import AudioModel
    from talkingface.mouth_basis import BlendshapeBasis

    audio_checkpoint = Path(audio_checkpoint) if audio_checkpoint is not None else find_mini_audio_checkpoint()
    if not audio_checkpoint.is_file():
        raise UserInputError(f"audio checkpoint not found: {audio_checkpoint}")
    audio_model = AudioModel(audio_checkpoint, device=device)
    if audio_model.card.get("target", "blendshape") != "blendshape":
        raise UserInputError(f"{audio_checkpoint} predicts {audio_model.card.get('target')!r} coefficients; "
                             "the mini renderer needs a blendshape audio model")
    basis_path = resolve_blendshape_basis(audio_checkpoint, audio_model.card)
    if basis_path is None:
        log.warning("no blendshape basis beside %s; using the renderer's committed table", audio_checkpoint)
    return audio_model, (BlendshapeBasis.load(basis_path) if basis_path is not None else None)


@dataclass
class SynthesisStats:
    """Per-stage wall time (seconds, whole run) and sizes of one :func:`synthesize` call.

    Stages: load (pack, models, reference), audio (decode + audio model), gl (label render and, for
    the interior blend, the label-free render), network (crop + warp + DINet_mini + blend), paste,
    encode (writing frames to the ffmpeg encoder).
    """

    frames: int = 0
    audio_seconds: float = 0.0
    load: float = 0.0
    audio: float = 0.0
    gl: float = 0.0
    network: float = 0.0
    paste: float = 0.0
    encode: float = 0.0
    total: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process and its children (ffmpeg), all threads


    def per_frame_ms(self) -> Dict[str, float]:
        n = max(self.frames, 1)
        return {k: 1000.0 * getattr(self, k) / n for k in ("audio", "gl", "network", "paste", "encode")}

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration (< 1 is faster than real time)."""
        return self.total / max(self.audio_seconds, 1e-9)

    @property
    def cpu_rtf(self) -> float:
        """CPU seconds per second of audio: the real-time factor on an otherwise idle core."""
        return self.cpu / max(self.audio_seconds, 1e-9)


def synthesize(pack_dir: PathLike, audio_path: PathLike, out_path: PathLike, checkpoint: PathLike = DEFAULT_CHECKPOINT,
               audio_checkpoint: Optional[PathLike] = None, device: str = "cpu", backend: str = "auto",
               use_pack_ref: Optional[bool] = None, bs_scale: float = 1.0, use_network: bool = True,
               progress: bool = True, mosaic: Optional[PathLike] = None, mosaic_frames: int = 8,
               threads: Optional[int] = 1, blend: str = "interior") -> SynthesisStats:
    """Lip-sync an avatar pack to speech and write an mp4 with the audio muxed in (reference §1.7).

    One output frame per 40 ms of audio (N = ceil(samples / 640)); the avatar video plays as a
    ping-pong loop while the mouth follows the **audio** frame index (the original indexed the
    blendshapes by the loop index, replaying the first 2N frames' motion on long audio).
    ``mosaic``: also write a PNG of the mouth crops of ``mosaic_frames`` evenly spaced output
    frames (with their mouth-opening weight), to check the motion by eye. ``threads``: torch CPU
    threads (the per-frame network is tiny: one thread avoids thread-synchronisation overhead that
    dominates at batch 1, especially on a busy machine); None keeps torch's setting.
    """
    import time

    from talkingface.util.media import SAMPLES_PER_FRAME, VideoWriter, load_audio

    import resource

    def cpu_now() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t_start = time.perf_counter()
    cpu_start = cpu_now()
    if threads is not None and device == "cpu":
        torch.set_num_threads(int(threads))
    stats = SynthesisStats()
    if not Path(audio_path).is_file():
        raise UserInputError(f"audio file not found: {audio_path}")
    pack = load_asset_pack(pack_dir)
    audio_model, basis = load_mini_audio(audio_checkpoint, device=device)
    model = RenderModelMini(checkpoint, device=device, backend=backend, warp_only=not use_network, blend=blend)
    try:
        model.reset_charactor(pack, use_pack_ref=use_pack_ref, basis=basis)
        stats.load = time.perf_counter() - t_start
        t0 = time.perf_counter()
        wav = load_audio(audio_path)
        bs = audio_model.interface_wav(wav) * float(bs_scale)
        stats.audio = time.perf_counter() - t0
        stats.audio_seconds = wav.size / 16000.0
        n = int(np.ceil(wav.size / SAMPLES_PER_FRAME))
        bs = bs[:n]
        picks = set(np.linspace(0, n - 1, min(mosaic_frames, n)).round().astype(int).tolist()) if mosaic else set()
        tiles = []
        frames_iter = range(n)
        if progress:
            from tqdm import tqdm

            frames_iter = tqdm(frames_iter, desc="demo_mini", unit="frame")
        with VideoWriter(out_path, audio=audio_path) as writer:
            for i in frames_iter:
                frame = model.interface(loop_index(i, len(pack)), bs[i])
                if i in picks:
                    tiles.append(_mosaic_tile(frame, pack.rects[loop_index(i, len(pack))], i, float(bs[i][0])))
                t1 = time.perf_counter()
                writer.write(frame)
                stats.encode += time.perf_counter() - t1
            t1 = time.perf_counter()
        stats.encode += time.perf_counter() - t1
        stats.frames = n
        stats.gl, stats.network, stats.paste = (model.timings[k] for k in ("gl", "network", "paste"))
        if mosaic and tiles:
            write_image(Path(mosaic), np.concatenate(tiles, 1))
    finally:
        model.close()
    stats.total = time.perf_counter() - t_start
    stats.cpu = cpu_now() - cpu_start
    return stats


def _mosaic_tile(frame: np.ndarray, rect: Sequence[int], index: int, weight: float, size: int = 192) -> np.ndarray:
    """The mouth rect of an output frame, enlarged, captioned with its frame index and bs[0]."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    tile = cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)
    cv2.putText(tile, f"#{index} bs0={weight:.0f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


