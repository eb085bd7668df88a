"""The DH_live_mini asset-pack format: read (three variants) and write (docs/REFERENCE.md §1.4).

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
pack names, :class:`~talkingface.render_model_mini.RenderModelMini` recomputes the reference feature from the
pack's frame 0 and two teeth references (:func:`pack_reference`, built by :mod:`talkingface.mini_reference`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mini_live.obj.utils import fit_avatar
from mini_live.obj.wrap_utils import WrapMesh
from talkingface.config.paths import DINET_MINI_CHECKPOINT
from talkingface.data.mouth_crop import standard_points, video_mouth_rects
from talkingface.errors import UserInputError
from talkingface.fast.yuv import I420Frames
from talkingface.mediapipe_utils import FaceLandmarker, load_keypoints
from talkingface.data.teeth_labels import DEFAULT_TEETH_SEED
from talkingface.mini_reference import build_reference, crop_landmarks, reference_tensor, teeth_references
from talkingface.models.DINet_mini import MODEL_SIZE, load_dinet_mini
from talkingface.preparation import mouth_activity
from talkingface.run_utils import KEYPOINT_SMOOTH_KERNEL, smooth_sequence
from talkingface.util.files import BAD_FILE_ERRORS, check_input_file, check_output_dir, read_json
from talkingface.util.media import probe_video, read_video

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
PACK_VIDEO = "01.mp4"
PACK_JSON = "combined_data.json.gz"
REF_DATA_SIZE = 20 * 18 * 18
#: The original's 3e5ce86 cavity label; drawn black here (any label strictly between 3 and 4).
CAVITY_LABEL_3E5CE86 = -2.0
CAVITY_LABEL = 3.5
DEFAULT_CHECKPOINT = DINET_MINI_CHECKPOINT


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
    ref_frame: int = 0  # the frame the reference is cut from (a closed-mouth frame of a talking video)
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
    """Refuse empty rects and rects that miss the video; one crossing a border (a tight crop) is fine:
    its crop is padded and its result pasted back clipped."""
    h, w = frame_shape[:2]
    bad = np.nonzero((rects[:, 2] <= 0) | (rects[:, 3] <= 0) | (rects[:, 0] >= w) | (rects[:, 1] >= h)
                     | (rects[:, 2] <= rects[:, 0]) | (rects[:, 3] <= rects[:, 1]))[0]
    if len(bad):
        raise UserInputError(f"asset pack frame {int(bad[0])}: rect {rects[bad[0]].tolist()} does not overlap the "
                             f"{w}x{h} video")


def load_asset_pack(pack_dir: PathLike, frame_store: str = "bgr") -> AssetPack:
    """Read an asset pack folder (ours or the original's, see the module doc).

    ``frame_store="i420"`` keeps the video frames as :class:`talkingface.fast.yuv.I420Frames` (half the
    size; indexing still gives BGR frames) when the video size is even, else as BGR; ``"i420-spill"``
    likewise, in a temporary file read one frame at a time (memory independent of the video length)."""
    pack_dir = Path(pack_dir)
    if (pack_dir / "assets" / PACK_JSON).is_file():
        pack_dir = pack_dir / "assets"
    video, data_path = pack_dir / PACK_VIDEO, pack_dir / PACK_JSON
    for p in (video, data_path):
        if not p.is_file():
            raise UserInputError(f"not an asset pack: {p} is missing")
    # The JSON first (cheap): a truncated, corrupt or foreign file fails before the video is decoded.
    data = read_json(data_path, "asset pack data")
    if not isinstance(data, dict):
        raise UserInputError(f"{data_path} is not an asset pack (a JSON {type(data).__name__}, not an object)")
    for key in ("frame_num", "face3D_obj", "json_data"):
        if key not in data:
            raise UserInputError(f"{data_path}: key {key!r} missing (a pack of another version or layout?)")
    try:  # the layout of the original's 8b74e3f / 3e5ce86 packs and ours; anything else is another format
        ours = data.get("talkingface") or {}
        model_size = int(data.get("size", MODEL_SIZE))
        variant = "talkingface" if ours else ("3e5ce86" if "version" in data or model_size != MODEL_SIZE else "8b74e3f")
        rects, mats, points = _parse_points(data["json_data"], model_size)
        lines = [ln.replace(f" {CAVITY_LABEL_3E5CE86:.2f} ", f" {CAVITY_LABEL:.2f} ") for ln in data["face3D_obj"]]
        mesh = WrapMesh.from_obj_lines(lines, num_targets=points.shape[1])
        ref_data = np.asarray(data["ref_data"], np.float32) if len(data.get("ref_data", [])) == REF_DATA_SIZE else None
        mp_ids = np.asarray(ours["mp_ids"], np.int64) if ours else None
        frame0 = (np.asarray(ours["frame0_landmarks"], np.float64).reshape(-1, 3)
                  if ours.get("frame0_landmarks") is not None else None)
        teeth_seed = int(ours.get("teeth_seed", DEFAULT_TEETH_SEED))
        ref_frame = int(ours.get("ref_frame", 0))
    except BAD_FILE_ERRORS as exc:
        raise UserInputError(f"asset pack data {data_path} is of another format or version "
                             f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if frame_store not in ("bgr", "i420", "i420-spill"):
        raise ValueError(f"frame_store must be bgr, i420 or i420-spill, not {frame_store!r}")
    info = probe_video(video)
    even = info.width % 2 == 0 and info.height % 2 == 0
    frames = (I420Frames.from_video(video, spill=frame_store == "i420-spill", info=info) if frame_store != "bgr" and even
              else read_video(video))
    n = min(len(frames), len(rects))
    if n < 1:
        raise UserInputError(f"{video}: no frames")
    if len(frames) != len(rects):
        log.warning("%s has %d frames but the pack describes %d; using %d", video, len(frames), len(rects), n)
    frames = frames.truncate(n) if isinstance(frames, I420Frames) else frames[:n]
    rects, mats, points = rects[:n], mats[:n], points[:n]
    _check_rects(rects, frames[0].shape)

    pack = AssetPack(frames=frames, rects=rects, mats=mats, points=points, mesh=mesh, variant=variant,
                     uid=str(data.get("uid", "")), ref_data=ref_data, ref_checkpoint=ours.get("ref_checkpoint"),
                     teeth_seed=teeth_seed, meta={"path": str(pack_dir)})
    if ours:
        mesh.mp_ids = mp_ids
        pack.frame0_landmarks = frame0
        pack.ref_frame = min(max(ref_frame, 0), n - 1)
    else:
        _recover_landmark_ids(pack)
    log.info("asset pack %s: %s format, %d frames, mesh %d vertices (%d driven)", pack_dir, variant, n,
             len(mesh.vertices), mesh.num_targets)
    return pack


def _recover_landmark_ids(pack: AssetPack, n_probe: int = 3) -> None:
    """Give an original pack's driven vertices MediaPipe ids: run the face mesh on a few frames and
    assign each pack point to a distinct landmark by minimum mean distance (Hungarian)."""
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



def pack_reference(pack: AssetPack) -> np.ndarray:
    """The pack's 72x72x12 reference (its reference frame, 0 unless the pack says otherwise, + teeth
    references), cached on the pack."""
    if pack.reference is None:
        k = pack.ref_frame
        if pack.frame0_landmarks is None:
            pack.frame0_landmarks = crop_landmarks(pack.frames[k], pack.rects[k])
            if pack.frame0_landmarks is None:
                raise UserInputError(f"no face found in frame {k} of the asset pack")
        teeth = teeth_references(pack.frames, pack.rects, None, seed=pack.teeth_seed)
        pack.reference = build_reference(pack.frames[k], pack.rects[k], pack.frame0_landmarks, teeth)
    return pack.reference



# --------------------------------------------------------------------------------------- writing
def write_asset_pack(out_dir: PathLike, video: PathLike, landmarks: np.ndarray, checkpoint: PathLike = DEFAULT_CHECKPOINT,
                     teeth_seed: int = DEFAULT_TEETH_SEED, device: str = "cpu") -> Path:
    """Build ``out_dir/assets`` from a processed video and its (N, 478, 3) landmarks (docs/REFERENCE.md §1.4).

    Steps: smooth the landmarks over time (first/last 2 frames raw); per-frame mouth rects of one
    size with smoothed centres (a rect may cross the frame's border: its crops are padded); landmarks
    in the 128 crop; poses and the avatar's wrap mesh (``mini_live.obj.utils.fit_avatar``);
    ``ref_data`` from frame 0 (from the most closed-mouth frame when the video is a talking one,
    :func:`talkingface.preparation.mouth_activity`) and two teeth references with ``checkpoint``. Deterministic: the uid is derived from the inputs.
    Written to a temporary folder and moved into place.
    """
    out_dir = Path(out_dir)
    video = Path(video)
    check_output_dir(out_dir)
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (478, 3):
        raise UserInputError(f"landmarks must be (N, 478, 3), got {lm.shape}")
    # The weights first (cheap): a bad checkpoint fails before the video is decoded.
    net, state = load_dinet_mini(check_input_file(checkpoint, "DINet_mini checkpoint"))
    net.eval().to(device)
    frames = read_video(video)
    if len(lm) != len(frames):
        raise UserInputError(f"{video} has {len(frames)} frames but the landmarks describe {len(lm)}")
    lm = smooth_sequence(lm, KEYPOINT_SMOOTH_KERNEL, keep_edges=True)
    h, w = frames[0].shape[:2]
    try:
        rects = video_mouth_rects(lm, (w, h))
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc
    std = standard_points(lm, rects, MODEL_SIZE)
    mesh, mats = fit_avatar(std)
    points = std[:, mesh.target_ids, :2]
    activity = mouth_activity(lm)
    ref = activity.reference_frame
    if activity.talking:
        log.info("%s: reference from frame %d (closed mouth) instead of frame 0", activity.describe(), ref)

    teeth = teeth_references(frames, rects, std, seed=teeth_seed)
    reference = build_reference(frames[ref], rects[ref], std[ref], teeth)
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
            # the reference frame's landmarks (the key keeps its first name; frame 0 unless "ref_frame")
            "frame0_landmarks": [round(float(v), 3) for v in std[ref].ravel()],
            "ref_frame": int(ref),
        },
    }
    # what the browser player needs (lazy import: talkingface.web.pack_web imports the renderer, which imports this module)
    from talkingface.web.pack_web import web_extension

    data["talkingface"]["web"] = web_extension(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / "assets"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_assets_", dir=out_dir))
    try:
        shutil.copyfile(video, tmp / PACK_VIDEO)
        with gzip.GzipFile(tmp / PACK_JSON, "wb", mtime=0) as fh:
            fh.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))
        os.chmod(tmp, 0o755)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s (%d frames, uid %s)", final, len(frames), uid)
    return final


def write_avatar_pack(avatar_dir: PathLike, checkpoint: PathLike = DEFAULT_CHECKPOINT,
                      teeth_seed: int = DEFAULT_TEETH_SEED, device: str = "cpu") -> Path:
    """``data_preparation_web.py``: the asset pack ``avatar_dir/assets`` of a ``data_preparation_mini.py``
    folder (its ``data/processed.mp4`` + ``data/processed.pkl``); see :func:`write_asset_pack`."""
    avatar_dir = Path(avatar_dir)
    if avatar_dir.exists() and not avatar_dir.is_dir():
        raise UserInputError(f"avatar folder {avatar_dir} is a file, not a folder")
    video, keypoints = avatar_dir / "data" / "processed.mp4", avatar_dir / "data" / "processed.pkl"
    for p in (video, keypoints):
        if not p.is_file():
            raise UserInputError(f"{p} not found: run data_preparation_mini.py VIDEO {avatar_dir} first")
    return write_asset_pack(avatar_dir, video, load_keypoints(keypoints), checkpoint=checkpoint,
                            teeth_seed=teeth_seed, device=device)
