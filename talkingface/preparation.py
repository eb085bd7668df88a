"""Turn a user's video into prepared avatars and training folders.

- :func:`prepare_dhlive_avatar` — DH_live avatar (``data_preparation.py``): ``circle.mp4`` (25 fps
  palindrome of 2N frames) + ``keypoint_rotate.pkl`` (2N, 478, 3) float64 pixels.
- :func:`prepare_mini_avatar` — mini avatar (``data_preparation_mini.py``): ``data/processed.mp4`` +
  ``data/processed.pkl`` (N, 478, 3) float64 pixels, the face tracked every frame.
- :func:`prepare_training_face` — DH_live render-model training folder
  (``train/data_preparation_face.py``, docs/REFERENCE.md §6.1): ``image/%06d.png`` 512² crops (from 000001),
  ``keypoint_rotate.pkl`` (N, 478, 3) in crop pixels, ``face_mat_mask.pkl`` = ``[mats (N,4,4),
  mask_face (141,3)]`` where ``mask_face`` is the personal mean face whose 21 oval rows are replaced by
  the jaw-mask contour (:func:`talkingface.run_utils.jaw_mask_contour`).

Every output folder is assembled in a temporary folder beside it and moved into place only when
complete, so a failure never leaves a partial output.
"""
from __future__ import annotations

import logging
import pickle
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.mediapipe_utils import FaceRules, track_avatar_face
from talkingface.run_utils import calc_face_mat, jaw_mask_contour, load_mean_face_main, smooth_sequence
from talkingface.util.files import check_output_dir, publish
from talkingface.utils import INDEX_FACE_OVAL, ROTATE_REF_INDEX, main_keypoints, mouth_opening, safe_crop
from talkingface.util.media import DEFAULT_FPS, probe_video, read_video, write_video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepConfig:
    """Options shared by the preparation steps."""

    fps: float = DEFAULT_FPS
    min_seconds: float = 1.0  # an avatar loop shorter than this is rejected
    max_seconds: float = 120.0  # longer sources are cut (the original's app limit)
    rules: FaceRules = FaceRules()
    progress: bool = True

    @property
    def min_frames(self) -> int:
        return max(1, int(round(self.min_seconds * self.fps)))


#: Training targets take any head turn (the renderer's yaw limit is for avatars only).
TRAINING_RULES = FaceRules(max_yaw=None)


def usable_stretch(frames: List[np.ndarray], cfg: PrepConfig, rules: Optional[FaceRules] = None):
    """(frames, landmarks (M, 478, 3)) of the longest usable stretch of ``frames`` (see
    :func:`talkingface.mediapipe_utils.track_avatar_face`); a clear error when it is too short."""
    track = track_avatar_face(frames, rules or cfg.rules, min_frames=cfg.min_frames, progress=cfg.progress)
    return frames[track.start:track.stop], track.landmarks


@contextmanager
def staged_output(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success its files are moved into ``out_dir``.

    On failure the temporary folder is removed and ``out_dir`` is left as it was (not created).
    """
    out_dir = Path(out_dir).resolve()
    anchor = check_output_dir(out_dir)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp_", dir=anchor))
    except OSError as exc:
        raise UserInputError(f"cannot write output directory {out_dir}: {exc.strerror or exc}") from exc
    created = not out_dir.exists()
    try:
        yield stage
        if out_dir.exists() and not out_dir.is_dir():
            raise UserInputError(f"output path exists and is not a directory: {out_dir}")
        if created:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            publish(stage, out_dir)
        else:
            for item in stage.iterdir():
                target = out_dir / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                publish(item, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def load_source_frames(video: Path, cfg: PrepConfig) -> List[np.ndarray]:
    """Decode an avatar source at ``cfg.fps``; reject unreadable, too-short videos with a clear error."""
    video = Path(video)
    info = probe_video(video)
    max_frames = int(cfg.max_seconds * cfg.fps)
    frames = read_video(video, fps=cfg.fps, max_frames=max_frames)
    seconds = len(frames) / cfg.fps
    if seconds < cfg.min_seconds:
        raise UserInputError(f"video too short: {seconds:.2f} s < {cfg.min_seconds:.1f} s ({video.name})")
    log.info("%s: %dx%d, %.2f s source at %.3g fps -> %d frames at %g fps", video.name, info.width,
             info.height, info.duration, info.source_fps, len(frames), cfg.fps)
    return frames


def _dump_pickle(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)


def prepare_dhlive_avatar(video: Path, out_dir: Path, cfg: PrepConfig = PrepConfig()) -> Path:
    """DH_live avatar: ``circle.mp4`` (forward + reversed frames) and ``keypoint_rotate.pkl`` (2N,478,3)."""
    check_output_dir(out_dir)
    frames, lm = usable_stretch(load_source_frames(video, cfg), cfg)
    with staged_output(out_dir) as stage:
        write_video(stage / "circle.mp4", frames + frames[::-1], fps=cfg.fps)
        _dump_pickle(stage / "keypoint_rotate.pkl", np.concatenate([lm, lm[::-1]], axis=0))
    log.info("wrote %s (circle.mp4: %d frames)", out_dir, 2 * len(frames))
    return Path(out_dir)


def fit_within(frames: List[np.ndarray], max_w: int = 720, max_h: int = 1280) -> List[np.ndarray]:
    """Scale frames down (never up) to fit ``max_w`` x ``max_h``, keeping even sizes."""
    h, w = frames[0].shape[:2]
    scale = min(1.0, max_w / w, max_h / h)
    nw, nh = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
    if (nw, nh) == (w, h):
        return frames
    return [cv2.resize(f, (nw, nh), interpolation=cv2.INTER_AREA) for f in frames]


def prepare_mini_avatar(video: Path, out_dir: Path, cfg: PrepConfig = PrepConfig(), resize: bool = False) -> Path:
    """Mini avatar: ``data/processed.mp4`` (25 fps, no audio) and ``data/processed.pkl`` (N,478,3)."""
    check_output_dir(out_dir)
    frames = load_source_frames(video, cfg)
    if resize:
        frames = fit_within(frames)
    frames, lm = usable_stretch(frames, cfg)
    activity = mouth_activity(lm)
    log.info("%s%s", activity.describe(), "; the asset pack takes its reference from that frame, the output "
             "mouth follows the audio" if activity.talking else "")
    with staged_output(out_dir) as stage:
        (stage / "data").mkdir()
        write_video(stage / "data" / "processed.mp4", frames, fps=cfg.fps)
        _dump_pickle(stage / "data" / "processed.pkl", lm)
    log.info("wrote %s (%d frames)", out_dir, len(frames))
    return Path(out_dir)


# ----------------------------------------------------------------------------- talking source videos
#: A frame "articulates" when its mouth opening (inner-lip gap / eye distance) differs by more than this
#: between its two neighbours (80 ms apart): speech moves the lips that fast, a resting face does not.
ARTICULATION_STEP = 0.02
#: A source video whose mouth articulates in more than this share of frames is a talking video.
TALKING_SHARE = 0.15


@dataclass
class MouthActivity:
    """Mouth-opening statistics of an avatar video.

    opening: (N,) inner-lip gap / inter-ocular distance per frame; moving_share: share of frames that
    articulate (see ``ARTICULATION_STEP``); closed_frame: the frame with the most closed mouth.
    """

    opening: np.ndarray
    moving_share: float
    closed_frame: int

    @property
    def talking(self) -> bool:
        return self.moving_share > TALKING_SHARE

    @property
    def reference_frame(self) -> int:
        """The frame a mini pack takes its appearance reference from: 0, or for a talking video
        the most closed-mouth frame (so the reference shows a resting mouth)."""
        return self.closed_frame if self.talking else 0

    def describe(self) -> str:
        kind = "talking source video" if self.talking else "resting mouth"
        return (f"{kind}: the mouth moves in {100 * self.moving_share:.0f} % of frames (talking above "
                f"{100 * TALKING_SHARE:.0f} %); most closed frame {self.closed_frame}")


def mouth_activity(landmarks: np.ndarray) -> MouthActivity:
    """Mouth-opening statistics of a video's landmarks (N, 478, >=2) in any consistent units."""
    opening = mouth_opening(landmarks)
    step = np.abs(opening[2:] - opening[:-2]) if len(opening) > 2 else np.zeros(0)
    share = float((step > ARTICULATION_STEP).mean()) if len(step) else 0.0
    return MouthActivity(opening=opening, moving_share=share, closed_frame=int(np.argmin(opening)))


# ----------------------------------------------------------------------------- DH_live training data
TRAIN_CROP = 512


def training_crop_box(lm: np.ndarray) -> tuple:
    """Square crop (x0, y0, x1, y1) covering a whole video's landmarks (docs/REFERENCE.md §6.1):
    side = max(1.1 w, 1.2 h) of the global landmark range, centred horizontally, at 60 % of its height."""
    xy = lm[..., :2].reshape(-1, 2)
    x_min, y_min = xy.min(axis=0)
    x_max, y_max = xy.max(axis=0)
    w, h = x_max - x_min, y_max - y_min
    side = int(round(max(1.1 * w, 1.2 * h)))
    cx, cy = (x_min + x_max) / 2.0, y_min + 0.6 * h
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    return x0, y0, x0 + side, y0 + side


def prepare_training_face(video: Path, out_dir: Path, cfg: PrepConfig = PrepConfig()) -> Path:
    """One DH_live training folder from one video (see the module docstring for the layout).

    Fixes the original's border bug: the crop is padded (not clipped) at frame borders, so the
    keypoints, mapped with the same box and scale, stay aligned with the crops.
    """
    check_output_dir(out_dir)
    frames, lm = usable_stretch(load_source_frames(video, cfg), cfg, TRAINING_RULES)
    x0, y0, x1, y1 = training_crop_box(lm)
    scale = TRAIN_CROP / (x1 - x0)
    lm_crop = lm.copy()
    lm_crop[..., 0] = (lm[..., 0] - x0) * scale
    lm_crop[..., 1] = (lm[..., 1] - y0) * scale
    lm_crop[..., 2] = lm[..., 2] * scale
    kps = main_keypoints(lm_crop)
    kps_smooth = smooth_sequence(kps, (0.1, 0.8, 0.1))
    mats, normalized, personal_mean = calc_face_mat(kps_smooth, load_mean_face_main(), ref_index=ROTATE_REF_INDEX)
    mask_face = personal_mean.copy()
    mask_face[INDEX_FACE_OVAL] = jaw_mask_contour(normalized, personal_mean)
    with staged_output(out_dir) as stage:
        (stage / "image").mkdir()
        for i, frame in enumerate(frames):
            crop = cv2.resize(safe_crop(frame, (x0, y0, x1, y1), border="replicate"), (TRAIN_CROP, TRAIN_CROP),
                              interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(stage / "image" / f"{i + 1:06d}.png"), crop)
        _dump_pickle(stage / "keypoint_rotate.pkl", lm_crop)
        _dump_pickle(stage / "face_mat_mask.pkl", [mats, mask_face])
    log.info("wrote %s (%d frames, crop %d px -> %d)", out_dir, len(frames), x1 - x0, TRAIN_CROP)
    return Path(out_dir)
