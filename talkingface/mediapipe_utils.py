"""MediaPipe face detection and the 478-point face mesh, in pixel coordinates.
(Slightly over 450 lines: the avatar-source rules use the detector and the mesh together and stay beside them.)

Landmarks are returned as float64 arrays ``(478, 3)`` = ``(x * W, y * H, z * W)`` in the frame's pixel
coordinates (the original floors x and y; we keep sub-pixel precision). The mesh runs with
``refine_landmarks=True`` (iris points 468..477) and, for videos, in tracking mode: MediaPipe re-uses
the previous frame's landmarks to place the next region of interest and only re-detects when tracking
is lost, so the face is followed every frame.

Avatar-source quality rules (docs/REFERENCE.md §1.1, relaxed; docs/PREPARATION.md) live in
:func:`check_frame_face` (per detection) and :func:`track_avatar_face` (face mesh, head turn, jump cuts:
the longest usable stretch is kept); the landmark files the preparation scripts write
(``keypoint_rotate.pkl``, ``processed.pkl``) are read by :func:`load_keypoints`.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from talkingface.errors import NoFaceError, UserInputError  # noqa: E402
from talkingface.run_utils import head_yaw  # noqa: E402
from talkingface.util.cli import progress  # noqa: E402
from talkingface.util.files import read_pickle  # noqa: E402
from talkingface.utils import MP_LEFT_EYE_OUTER, MP_LIPS_OUTER, MP_RIGHT_EYE_OUTER  # noqa: E402

log = logging.getLogger(__name__)

NUM_LANDMARKS = 478


@contextmanager
def quiet_native_stderr():
    """Silence C++ log lines (TFLite/absl) written straight to file descriptor 2 while MediaPipe
    builds its graphs, so scripts keep their one-line error contract on stderr."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr descriptor: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _mp():
    # mediapipe 0.10.14 calls a protobuf API that newer protobuf deprecates; the warning is noise.
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype")
    # Lazy: mediapipe takes seconds to import; most users of this module never run it.
    import mediapipe as mp

    return mp


@dataclass(frozen=True)
class FaceBox:
    """One detected face: pixel box, score and the detector's 6 keypoints (pixels).

    Keypoints: 0 right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right ear, 5 left ear
    ("right" = the subject's right, on the image's left).
    """

    x: float
    y: float
    w: float
    h: float
    score: float
    keypoints: np.ndarray  # (6, 2)

    @property
    def box(self) -> tuple:
        return self.x, self.y, self.x + self.w, self.y + self.h


class FaceDetector:
    """MediaPipe face detection.

    The original uses the full-range model (``model_selection=1``), which misses faces that fill a
    close-up frame; by default (``model_selection=None``) we run it first and fall back to the
    short-range model on frames where it finds nothing.
    """

    def __init__(self, min_confidence: float = 0.5, model_selection: Optional[int] = None):
        fd = _mp().solutions.face_detection
        order = [1, 0] if model_selection is None else [model_selection]
        with quiet_native_stderr():
            self._dets = [fd.FaceDetection(model_selection=m, min_detection_confidence=min_confidence)
                          for m in order]
            blank = np.zeros((64, 64, 3), np.uint8)
            for det in self._dets:  # the first inference logs TFLite delegate lines; do it here
                det.process(blank)

    def __call__(self, frame_bgr: np.ndarray) -> List[FaceBox]:
        h, w = frame_bgr.shape[:2]
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
        faces: List[FaceBox] = []
        for det in self._dets:
            res = det.process(rgb)
            for d in res.detections or []:
                bb = d.location_data.relative_bounding_box
                kps = np.array([[k.x * w, k.y * h] for k in d.location_data.relative_keypoints], np.float64)
                faces.append(FaceBox(bb.xmin * w, bb.ymin * h, bb.width * w, bb.height * h, float(d.score[0]), kps))
            if faces:
                break
        return faces

    def close(self) -> None:
        for det in self._dets:
            det.close()

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_faces(frame_bgr: np.ndarray, min_confidence: float = 0.5) -> List[FaceBox]:
    """One-shot face detection on a BGR frame (builds a detector; use FaceDetector in loops)."""
    with FaceDetector(min_confidence) as det:
        return det(frame_bgr)


class FaceLandmarker:
    """The 478-point face mesh. Call on a BGR frame; returns (478, 3) pixels or None when no face.

    ``static_image_mode=False`` tracks between consecutive frames of one video; use one instance
    per video (or call :meth:`reset`).
    """

    def __init__(self, static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        self._kwargs = dict(static_image_mode=static_image_mode, max_num_faces=1, refine_landmarks=True,
                            min_detection_confidence=min_detection_confidence,
                            min_tracking_confidence=min_tracking_confidence)
        self._mesh = self._build()

    def _build(self):
        with quiet_native_stderr():
            mesh = _mp().solutions.face_mesh.FaceMesh(**self._kwargs)
            # The first inference logs TFLite lines; run it on a blank frame here. A blank frame has no
            # face, so it leaves no tracking state behind.
            mesh.process(np.zeros((64, 64, 3), np.uint8))
        return mesh

    def __call__(self, frame_bgr: np.ndarray) -> Optional[np.ndarray]:
        h, w = frame_bgr.shape[:2]
        res = self._mesh.process(np.ascontiguousarray(frame_bgr[:, :, ::-1]))
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        arr = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float64)
        arr[:, 0] *= w
        arr[:, 1] *= h
        arr[:, 2] *= w
        return arr

    def reset(self) -> None:
        """Forget tracking state (start of a new video)."""
        self._mesh.close()
        self._mesh = self._build()

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _progress(iterable, total: Optional[int], desc: str, enabled: bool):
    if not enabled:
        return iterable
    return progress(iterable, total=total, desc=desc, unit="frame", leave=False)


def landmarks_for_video(frames: Sequence[np.ndarray], progress: bool = True,
                        allow_missing: bool = False) -> np.ndarray:
    """Face mesh of every frame of one video, with tracking: (N, 478, 3) float64 pixels.

    A frame without a face raises :class:`NoFaceError` naming it, unless ``allow_missing``, in which
    case its row is NaN (the evaluation counts such frames as detection failures).
    """
    out = np.full((len(frames), NUM_LANDMARKS, 3), np.nan, dtype=np.float64)
    with FaceLandmarker(static_image_mode=False) as mesh:
        for i, frame in enumerate(_progress(frames, len(frames), "face mesh", progress)):
            lm = mesh(frame)
            if lm is None:
                if not allow_missing:
                    raise NoFaceError(f"frame {i}: no face found by the face mesh")
                continue
            out[i] = lm
    return out


# ----------------------------------------------------------------------------- avatar quality rules
#: Largest head turn (|yaw| in degrees, measured from the face mesh) accepted in a mini/DH_live avatar
#: video; chosen by measurement (bench/bench_yaw.py, docs/PREPARATION.md). Training targets take any turn.
MAX_AVATAR_YAW = 45.0


@dataclass(frozen=True)
class FaceRules:
    """Quality rules for avatar-source frames (docs/REFERENCE.md §1.1: the original's thresholds, with
    3/4 views and tight crops allowed; docs/PREPARATION.md).

    ``max_yaw``: frames turned further than this (degrees, :func:`talkingface.run_utils.head_yaw`) are
    not used; None accepts any turn (training targets). ``min_inside``: share of the detected face box
    that must lie inside the frame (a tight crop cuts the box's edge; the mouth and eyes must be in
    the picture in any case).
    """

    min_confidence: float = 0.5
    min_box_px: float = 100.0
    min_overlap: float = 0.6  # IoU of the face box with the previous frame's; lower = a jump cut
    min_inside: float = 0.6
    max_yaw: Optional[float] = MAX_AVATAR_YAW


def add_avatar_source_args(ap) -> None:
    """The options of the avatar-preparation scripts (data_preparation.py, data_preparation_mini.py):
    the source video, the output folder, --quiet and --max_yaw (read back by :func:`avatar_rules`)."""
    ap.add_argument("video", type=Path, help="avatar source video (any format, any fps)")
    ap.add_argument("out_dir", type=Path, help="output folder (created)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--max_yaw", type=float, default=MAX_AVATAR_YAW,
                    help="largest head turn in degrees accepted (default %(default)s: measured for the renderer)")


def avatar_rules(args) -> FaceRules:
    """The :class:`FaceRules` of parsed :func:`add_avatar_source_args` options (bad --max_yaw: UserInputError)."""
    if not 0 < args.max_yaw <= 90:
        raise UserInputError(f"--max_yaw must be in (0, 90] degrees, not {args.max_yaw}")
    return FaceRules(max_yaw=args.max_yaw)


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _inside_share(box: tuple, w: int, h: int) -> float:
    x0, y0, x1, y1 = box
    area = max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6)
    return max(0.0, min(x1, w) - max(x0, 0)) * max(0.0, min(y1, h) - max(y0, 0)) / area


def check_frame_face(faces: List[FaceBox], frame_shape: tuple, index: int, rules: FaceRules = FaceRules()) -> FaceBox:
    """Apply the per-frame detection rules; return the face or raise naming the frame.

    Rules: exactly one face; at least ``rules.min_inside`` of its box inside the frame; box at least
    ``min_box_px``. Head turn, the mouth being in the picture and jump cuts are judged on the face
    mesh and across frames by :func:`track_avatar_face`.
    """
    h, w = frame_shape[:2]
    if not faces:
        raise NoFaceError(f"frame {index}: no face detected")
    if len(faces) > 1:
        raise UserInputError(f"frame {index}: {len(faces)} faces detected; the avatar video must show one person")
    face = faces[0]
    if _inside_share(face.box, w, h) < rules.min_inside:
        raise UserInputError(f"frame {index}: face mostly outside the frame")
    if max(face.w, face.h) < rules.min_box_px:
        raise UserInputError(f"frame {index}: face too small "
                             f"({max(face.w, face.h):.0f} px < {rules.min_box_px:.0f} px)")
    return face


def _features_outside(lm: np.ndarray, w: int, h: int) -> Optional[str]:
    """Which of the mouth / eyes lies outside the frame (None when both are in the picture)."""
    for name, ids in (("mouth", list(MP_LIPS_OUTER)), ("eyes", [MP_RIGHT_EYE_OUTER, MP_LEFT_EYE_OUTER])):
        xy = lm[ids, :2]
        if (xy < 0).any() or (xy[:, 0] >= w).any() or (xy[:, 1] >= h).any():
            return name
    return None


@dataclass
class FaceTrack:
    """The usable stretch of an avatar video: ``landmarks`` (stop - start, 478, 3) pixels of
    ``frames[start:stop]``, their yaw (degrees), the jump cuts found (first frame of each new shot)
    and the frames left out with their reasons."""

    landmarks: np.ndarray
    start: int
    stop: int
    yaw: np.ndarray
    cuts: List[int]
    dropped: Dict[int, str]


#: Per-frame yaw is noisy (+-3 deg); the limit is applied to its running median over this many frames.
YAW_SMOOTH_FRAMES = 13


def _running_median(x: np.ndarray, width: int) -> np.ndarray:
    """Running median of a 1-D series over ``width`` frames (NaN entries ignored; all-NaN stays NaN)."""
    r = width // 2
    padded = np.concatenate([np.full(r, np.nan), x, np.full(r, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    out = np.full(len(x), np.nan)
    valid = ~np.isnan(windows).all(axis=1)
    out[valid] = np.nanmedian(windows[valid], axis=1)
    return out


def _mesh_box(lm: np.ndarray) -> tuple:
    """(x0, y0, x1, y1) pixel bounds of one frame's face-mesh landmarks."""
    return (*lm[:, :2].min(axis=0), *lm[:, :2].max(axis=0))


def _reason_kind(reason: str) -> str:
    """A frame's reason without its numbers in brackets, to group frames by cause."""
    return reason.split(" (")[0]


def _longest_run(ok: np.ndarray, cuts: Sequence[int]) -> tuple:
    """(start, stop) of the longest run of True in ``ok`` that no cut index splits (first on ties)."""
    best = (0, 0)
    start = None
    cut_set = set(cuts)
    for i in range(len(ok) + 1):
        boundary = i == len(ok) or not ok[i] or i in cut_set
        if boundary and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
        if i < len(ok) and ok[i] and start is None:
            start = i
    return best


def _refusal(dropped: Dict[int, str], cuts: List[int], longest: int, yaw: np.ndarray, rules: FaceRules, n: int,
             min_frames: int) -> str:
    """The one-line reason an avatar video has no usable stretch of ``min_frames`` frames."""
    reasons = [_reason_kind(r) for r in dropped.values()]
    if not reasons:
        return (f"frame {cuts[0]}: sudden jump of the face box (a jump cut; {len(cuts)} in {n} frames); the "
                f"longest stretch without one has {longest} frames, {min_frames} needed")
    common = max(set(reasons), key=reasons.count)
    frames_common = [i for i, r in dropped.items() if _reason_kind(r) == common]
    first = min(frames_common)
    if common.startswith("turned more"):
        turned = np.abs(yaw[frames_common])
        return (f"face turned too far: measured yaw {np.nanmedian(turned):.0f} deg (median of {len(turned)} "
                f"frames, from frame {first}); avatars are accepted up to {rules.max_yaw:.0f} deg")
    return f"frame {first}: {dropped[first]} ({reasons.count(common)} of {n} frames)"


def track_avatar_face(frames: Sequence[np.ndarray], rules: FaceRules = FaceRules(), min_frames: int = 1,
                      progress: bool = True) -> FaceTrack:
    """Face mesh of an avatar video and the longest stretch of frames fit to use.

    Every frame is checked (:func:`check_frame_face`, the mouth and eyes inside the picture, yaw
    within ``rules.max_yaw``); a jump of the face box between two frames (IoU below
    ``rules.min_overlap``: an edited interview's cut) starts a new stretch, and the face mesh's
    tracking restarts there. The longest stretch of good frames that no cut splits is kept; a video
    whose longest stretch is shorter than ``min_frames`` raises one clear error. What was left out
    is logged.
    """
    n = len(frames)
    out = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float64)
    yaw = np.full(n, np.nan)
    dropped: Dict[int, str] = {}
    cuts: List[int] = []
    previous: Optional[FaceBox] = None
    with FaceDetector(rules.min_confidence) as det, FaceLandmarker(static_image_mode=False) as mesh:
        for i, frame in enumerate(_progress(frames, n, "face mesh", progress)):
            h, w = frame.shape[:2]
            try:
                face = check_frame_face(det(frame), frame.shape, i, rules)
            except UserInputError as exc:
                dropped[i] = str(exc).split(": ", 1)[-1]
                previous = None
                continue
            # A cut needs both boxes to jump: the detector's (whose two models' boxes differ in size,
            # so it alone jitters on close-ups) and then the re-started face mesh's.
            maybe_cut = previous is not None and _iou(face.box, previous.box) < rules.min_overlap
            if maybe_cut:
                mesh.reset()
            previous = face
            lm = mesh(frame)
            if lm is None:
                dropped[i] = "the face mesh found no face"
                continue
            if maybe_cut and i > 0 and not np.isnan(out[i - 1, 0, 0]) \
                    and _iou(_mesh_box(lm), _mesh_box(out[i - 1])) < rules.min_overlap:
                cuts.append(i)
            out[i] = lm
            yaw[i] = float(head_yaw(lm))
            outside = _features_outside(lm, w, h)
            if outside is not None:
                dropped[i] = f"the {outside} outside the frame"
    if rules.max_yaw is not None:
        turned = np.abs(_running_median(yaw, YAW_SMOOTH_FRAMES)) > rules.max_yaw
        for i in np.flatnonzero(turned):
            dropped.setdefault(int(i), f"turned more than {rules.max_yaw:.0f} deg")
    ok = np.ones(n, bool)
    ok[list(dropped)] = False
    start, stop = _longest_run(ok, cuts)
    if stop - start < max(min_frames, 1):
        raise UserInputError(_refusal(dropped, cuts, stop - start, yaw, rules, n, min_frames))
    if start > 0 or stop < n:
        why = []
        if cuts:
            why.append(f"jump cuts at frames {', '.join(map(str, cuts[:8]))}{' ...' if len(cuts) > 8 else ''}")
        if dropped:
            all_kinds = [_reason_kind(r) for r in dropped.values()]
            kinds = sorted(set(all_kinds), key=all_kinds.count, reverse=True)
            why.append(f"{len(dropped)} frames unusable ({'; '.join(kinds[:3])})")
        log.info("using frames %d-%d of %d (the longest usable stretch): %s", start, stop - 1, n, ", ".join(why))
    kept = yaw[start:stop]
    log.info("face yaw over the kept frames: median %.0f deg, max %.0f deg (avatar limit %s)",
             np.median(np.abs(kept)), np.abs(kept).max(),
             "none" if rules.max_yaw is None else f"{rules.max_yaw:.0f} deg")
    return FaceTrack(out[start:stop], start, stop, yaw[start:stop], cuts, dropped)


def checked_landmarks_for_video(frames: Sequence[np.ndarray], rules: FaceRules = FaceRules(),
                                progress: bool = True) -> np.ndarray:
    """Landmarks (N, 478, 3) pixels of a video every frame of which must pass the avatar rules (no cut,
    no unusable frame); raises naming the first problem otherwise. See :func:`track_avatar_face`."""
    track = track_avatar_face(frames, rules, min_frames=len(frames), progress=progress)
    return track.landmarks


# ------------------------------------------------------------------------------ keypoint files
def load_keypoints(path: Path, point_counts: Sequence[int] = (478,)) -> np.ndarray:
    """Read a keypoint pickle (``keypoint_rotate.pkl``, ``processed.pkl``; ours or the original's) as
    float64 (N, K, C) pixels, K in ``point_counts`` (478 face-mesh points; the DH_live code also takes
    141 main keypoints), C = 2 or 3. Unreadable or misshaped files raise a clear error."""
    obj = read_pickle(path, "keypoint file")
    try:
        arr = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{path} holds no keypoint array ({exc.__class__.__name__}: {exc})") from exc
    if arr.ndim != 3 or arr.shape[1] not in point_counts or arr.shape[2] not in (2, 3):
        want = "|".join(map(str, point_counts))
        raise UserInputError(f"{path}: expected keypoints (N, {want}, 2|3), got {arr.shape}")
    return arr
