"""Prepare DH_live_mini training data: face mesh, mouth canvases and teeth labels of each video.

    python mini_live/prepare_training_data.py OUT_DIR VIDEO [VIDEO ...]
    python mini_live/prepare_training_data.py OUT_DIR DATA/av DATA/av_more --landmarks CACHE --keep 300

Writes one ``OUT_DIR/<folder>_<video name>.npz`` per video (see talkingface.data.DHLive_mini_dataset)
and a label mosaic ``OUT_DIR/<folder>_<video name>_labels.png`` of its six most open frames for a visual check.
A folder argument stands for every video below it. Videos already prepared are skipped unless
--overwrite, so an interrupted run resumes. Clips of the held-out list (talkingface/eval/heldout.py,
``never_train_on()``) are skipped unless --allow_heldout.

``--landmarks CACHE`` reuses face meshes cached by ``train_audio/cache_clips.py`` (``CACHE/<name>.clip.npz``,
``<name>`` = the path below the sample-data folder with '/' replaced by '__', frames at 25 fps): no
face mesh is run for those clips. ``--keep N`` keeps at most N frames per video, evenly spread over
it (long clips would otherwise crowd the memory; sampling picks a video first, then a frame).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from talkingface.errors import MediaError, UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_dir, write_image

log = logging.getLogger("prepare_training_data")


def label_mosaic(video) -> np.ndarray:
    """Six most open frames: canvas | painted labels, stacked (BGR uint8, 2x enlarged)."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.teeth_labels import paint_labels

    rows = [np.concatenate([video.images[i], paint_labels(video.images[i], video.labels[i])], 1)
            for i in np.argsort(video.opening)[-6:]]
    mosaic = np.concatenate(rows, 0)[..., ::-1]
    return cv2.resize(mosaic, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def prepare_one(video: Path, keep: Optional[int], max_frames: Optional[int], lms: Optional[np.ndarray]):
    """Decode (streaming), keep at most ``keep`` evenly spread frames, mesh them if needed, prepare.

    With cached landmarks every 25 fps frame is decoded and the kept ones are picked by index, so they
    match the cache; without, ffmpeg itself drops to 25 / stride fps (much less to decode and mesh).
    """
    from talkingface.data.DHLive_mini_dataset import prepare_frames
    from talkingface.mediapipe_utils import landmarks_for_video
    from talkingface.util.media import DEFAULT_FPS, iter_video_frames, probe_video

    total = len(lms) if lms is not None else int(round(probe_video(video).duration * DEFAULT_FPS))
    if max_frames is not None:
        total = min(total, max_frames)
    stride = max(1, int(np.ceil(total / keep))) if keep and total > 0 else 1
    frames: List[np.ndarray] = []
    index: List[int] = []
    if lms is not None:
        wanted = set(range(0, total, stride))
        for i, frame in enumerate(iter_video_frames(video, max_frames=total)):
            if i in wanted:
                frames.append(frame)
                index.append(i)
    else:
        limit = None if max_frames is None else int(np.ceil(max_frames / stride))
        frames = list(iter_video_frames(video, fps=DEFAULT_FPS / stride, max_frames=limit))
        index = [i * stride for i in range(len(frames))]
    if not frames:
        raise MediaError(f"no frames decoded from {video}")
    points = landmarks_for_video(frames, progress=False, allow_missing=True) if lms is None else lms[index]
    return prepare_frames(frames, points, video.name, frame_index=index)


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("videos", type=Path, nargs="+", help="videos or folders of videos")
    parser.add_argument("--max_frames", type=int, default=None, help="read at most the first N frames of a video")
    parser.add_argument("--keep", type=int, default=None, help="keep at most N frames per video, evenly spread")
    parser.add_argument("--landmarks", type=Path, default=None, help="face-mesh cache of train_audio/cache_clips.py")
    parser.add_argument("--data_root", type=Path, default=None,
                        help="the sample-data folder the cache names are relative to (default: found automatically)")
    parser.add_argument("--cached_only", action="store_true",
                        help="skip videos the --landmarks cache does not hold yet (rerun later to add them)")
    parser.add_argument("--allow_heldout", action="store_true", help="also prepare held-out clips (for validation)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.av_clips import cached_landmarks
    from talkingface.data.DHLive_mini_dataset import save_prepared
    from talkingface.eval.heldout import never_train_on
    from talkingface.util.media import list_videos
    from talkingface.util.sample_data import find_sample_data

    videos: List[Path] = []
    for v in args.videos:
        if v.is_dir():
            videos += list_videos(v)
        elif v.is_file():
            videos.append(v)
        else:
            raise UserInputError(f"video not found: {v}")
    if args.landmarks is not None and not args.landmarks.is_dir():
        raise UserInputError(f"landmark cache not found: {args.landmarks}")
    root = args.data_root or find_sample_data()
    held = never_train_on()
    check_output_dir(args.out_dir)
    done = 0
    failures = []
    for video in videos:
        rel = None
        if root is not None:
            try:
                rel = video.resolve().relative_to(Path(root).resolve()).as_posix()
            except ValueError:
                rel = None
        if rel in held and not args.allow_heldout:
            log.info("%s is held out (talkingface/eval/heldout.py): skipped", rel)
            continue
        stem = f"{video.parent.name}_{video.name}"
        out = args.out_dir / f"{stem}.npz"
        if out.exists() and not args.overwrite:
            log.info("%s exists, skipped", out)
            continue
        lms = cached_landmarks(video, root, args.landmarks)
        if lms is None and args.cached_only:
            log.info("%s: not in the landmark cache yet, skipped", video.name)
            continue
        try:
            prepared = prepare_one(video, args.keep, args.max_frames, lms)
        except (MediaError, ValueError) as exc:
            log.warning("%s: %s (skipped)", video, exc)
            failures.append(f"{video}: {exc}")
            continue
        save_prepared(prepared, out)
        write_image(args.out_dir / f"{stem}_labels.png", label_mosaic(prepared))
        done += 1
        log.info("%s: %d frames (%s landmarks), %d with teeth", video.name, len(prepared),
                 "cached" if lms is not None else "new",
                 int(((prepared.labels == 4) | (prepared.labels == 5)).any(axis=(1, 2)).sum()))
    log.info("prepared %d videos into %s", done, args.out_dir)
    if failures and done == 0:
        # Skipping a bad clip is right in a batch, but a run that prepared nothing is a failed run.
        raise UserInputError(f"no video prepared; {len(failures)} failed, first: {failures[0]}")
    return 0


if __name__ == "__main__":
    run_cli(main)
