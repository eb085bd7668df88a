"""MediaPipe face detection and the 478-point face mesh, in pixel coordinates.

Landmarks are returned as float64 arrays ``(478, 3)`` = ``(x * W, y * H, z * W)`` in the frame's pixel
coordinates (the original floors x and y; we keep sub-pixel precision). The mesh runs with
``refine_landmarks=True`` (iris points 468..477) and, for videos, in tracking mode: MediaPipe re-uses
the previous frame's landmarks to place the next region of interest and only re-detects when tracking
is lost, so the face is followed every frame.

Frame-level quality rules for avatar sources (docs/REFERENCE.md §1.1) live in :func:`check_frame_face`;
the landmark files the preparation scripts write (``keypoint_rotate.pkl``, ``processed.pkl``) are read
by :func:`load_keypoints`.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from talkingface.errors import NoFaceError, UserInputError  # noqa: E402
from talkingface.util.cli import progress
from talkingface.util.files import read_pickle

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
@dataclass(frozen=True)
class FaceRules:
    """Quality rules for avatar-source frames (docs/REFERENCE.md §1.1, with the original's thresholds)."""

    min_confidence: float = 0.5
    min_box_px: float = 100.0
    min_overlap: float = 0.6  # IoU of the face box with the previous frame's


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def check_frame_face(faces: List[FaceBox], frame_shape: tuple, index: int, previous: Optional[FaceBox],
                     rules: FaceRules = FaceRules()) -> FaceBox:
    """Apply the avatar-source rules to one frame's detections; return the face or raise.

    Rules: exactly one face; frontal enough (the nose tip lies between the eyes); box inside the
    frame; box at least ``min_box_px``; no sudden jump (IoU with the previous frame's box >= min_overlap).
    The error names the frame.
    """
    h, w = frame_shape[:2]
    if not faces:
        raise NoFaceError(f"frame {index}: no face detected")
    if len(faces) > 1:
        raise UserInputError(f"frame {index}: {len(faces)} faces detected; the avatar video must show one person")
    face = faces[0]
    eye_r, eye_l, nose = face.keypoints[0, 0], face.keypoints[1, 0], face.keypoints[2, 0]
    if not (min(eye_r, eye_l) < nose < max(eye_r, eye_l)):
        raise UserInputError(f"frame {index}: face in profile (nose not between the eyes); use a frontal video")
    x0, y0, x1, y1 = face.box
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise UserInputError(f"frame {index}: face partly outside the frame")
    if max(face.w, face.h) < rules.min_box_px:
        raise UserInputError(f"frame {index}: face too small ({max(face.w, face.h):.0f} px < {rules.min_box_px:.0f} px)")
    if previous is not None and _iou(face.box, previous.box) < rules.min_overlap:
        raise UserInputError(f"frame {index}: sudden jump of the face box (overlap with frame {index - 1} "
                             f"below {rules.min_overlap})")
    return face


def checked_landmarks_for_video(frames: Sequence[np.ndarray], rules: FaceRules = FaceRules(),
                                progress: bool = True) -> np.ndarray:
    """Avatar-source landmarks: every frame must pass :func:`check_frame_face`; (N, 478, 3) pixels."""
    out = np.empty((len(frames), NUM_LANDMARKS, 3), dtype=np.float64)
    previous: Optional[FaceBox] = None
    with FaceDetector(rules.min_confidence) as det, FaceLandmarker(static_image_mode=False) as mesh:
        for i, frame in enumerate(_progress(frames, len(frames), "face mesh", progress)):
            previous = check_frame_face(det(frame), frame.shape, i, previous, rules)
            lm = mesh(frame)
            if lm is None:
                raise NoFaceError(f"frame {i}: the face mesh found no face")
            out[i] = lm
    return out


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
