"""Prepare MODA data: canonical face meshes, 7-value head pose and per-subject means of real clips,
lip pseudo-labels of speech, or one person's avatar for demo_moda.py.

Usage:
  python data_preparation_moda.py VIDEO_OR_DIR... OUT            # clip records (training / evaluation)
  python data_preparation_moda.py --speech AUDIO_OR_DIR... OUT   # lip pseudo-labels from the shipped LSTM
  python data_preparation_moda.py --avatar VIDEO_OR_DIR... OUT_DIR # one person for demo_moda.py

Clip records: OUT/<name>.moda.npz (+ <name>.wav): dense (N,478,3) canonical 512-px mesh, head7 (N,7)
= yaw, pitch, roll (deg), anchor x, y, z (px), scale, no-torso mode (torso zeros, torso_valid False).
Face meshes are cached in --cache (default OUT/cache). Clips listed by
talkingface/eval/heldout.py never_train_on() are skipped unless --include_heldout (for evaluation
sets and avatars of held-out people; training scripts refuse them again).
Avatar (all videos of one person, same frame size): OUT_DIR/subject.npz (the clips' arrays
concatenated, clip_lengths, per-subject means), OUT_DIR/reference.png (the frame with the most closed
mouth, BGR) and OUT_DIR/video.mp4 (the 25 fps frames the renderer trains on).
Bad input exits with status 2 and one line.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from talkingface.audio_model import AudioModel
from talkingface.config.moda import BASIS_PATH, TEACHER_CHECKPOINT
from talkingface.data.moda_clips import record_from_speech, record_from_video, relative_source
from talkingface.errors import UserInputError
from talkingface.eval.heldout import never_train_on
from talkingface.moda_geometry import from_canonical
from talkingface.mouth_basis import BlendshapeBasis
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import atomic_write, check_output_dir, write_image
from talkingface.util.media import expand_inputs, list_audio, list_videos, read_video, write_video
from talkingface.util.sample_data import find_sample_data
from talkingface.utils import mouth_opening

log = logging.getLogger("data_preparation_moda")


def _name(rel: str) -> str:
    return "__".join(Path(rel).with_suffix("").parts).lstrip("_").replace("/", "__")


def _write_avatar(videos, out: Path, cache: Path, progress: bool) -> None:
    root = find_sample_data()
    recs, frames = [], []
    for i, video in enumerate(videos):
        rec = record_from_video(video, cache, _name(relative_source(video, root)), relative_source(video, root),
                                progress)
        clip_frames = read_video(video)[: rec.n_frames]
        if frames and clip_frames[0].shape != frames[0].shape:
            raise UserInputError(f"{video}: frame size {clip_frames[0].shape[:2]} differs from the first video's")
        recs.append(rec)
        frames += clip_frames
    dense = np.concatenate([r.dense for r in recs])
    head7 = np.concatenate([r.head7 for r in recs])
    torso = np.concatenate([r.torso for r in recs])
    lm = from_canonical(dense.astype(np.float64), head7)
    ref_idx = int(np.argmin(mouth_opening(lm)))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "subject.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, dense=dense, head7=head7, torso=torso, mean_dense=dense.mean(0).astype(np.float64),
                                mean_head7=head7.mean(0), mean_torso=torso.mean(0).astype(np.float64),
                                reference_index=ref_idx, frame_size=np.array(frames[0].shape[:2]),
                                clip_lengths=np.array([r.n_frames for r in recs]),
                                sources=np.array([r.source for r in recs]))
    write_image(out / "reference.png", frames[ref_idx])
    write_video(out / "video.mp4", frames)
    log.info("avatar %s: %d frames from %d clips, reference frame %d", out, len(frames), len(recs), ref_idx)


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("inputs", nargs="+", type=Path, help="videos or folders (audio with --speech)")
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--speech", action="store_true", help="inputs are speech audio: write lip pseudo-labels")
    ap.add_argument("--avatar", action="store_true", help="one video -> a person folder for demo_moda.py")
    ap.add_argument("--exclude", action="append", default=[], help="skip files matching this (repeatable)")
    ap.add_argument("--cache", type=Path, default=None, help="face-mesh cache folder (default OUT/cache)")
    ap.add_argument("--cached_only", action="store_true",
                    help="only clips whose face mesh is already in --cache (the cache is then only read)")
    ap.add_argument("--include_heldout", action="store_true", help="also prepare the held-out clips")
    ap.add_argument("--teacher", type=Path, default=TEACHER_CHECKPOINT, help="audio model for --speech")
    ap.add_argument("--basis", type=Path, default=BASIS_PATH, help="blendshape basis for --speech")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    setup_logging()
    progress = not args.quiet and sys.stderr.isatty()
    cache = args.cache or args.out / "cache"
    check_output_dir(args.out)
    if args.cache is not None:
        check_output_dir(cache, "--cache folder")
    if args.avatar:
        _write_avatar(expand_inputs(args.inputs, list_videos, exclude=args.exclude), args.out, cache, progress)
        return 0
    root = find_sample_data()
    blocked = never_train_on()
    files = expand_inputs(args.inputs, list_audio if args.speech else list_videos, exclude=args.exclude)
    teacher = basis = None
    if args.speech:
        teacher, basis = AudioModel(args.teacher), BlendshapeBasis.load(args.basis)
    done = skipped = 0
    for f in files:
        rel = relative_source(f, root)
        if rel in blocked and not args.include_heldout:
            skipped += 1
            continue
        name = _name(rel)
        if (args.out / f"{name}.moda.npz").is_file():
            done += 1
            continue
        if args.cached_only and not args.speech and not (cache / f"{name}.clip.npz").is_file():
            skipped += 1
            continue
        try:
            rec = (record_from_speech(f, teacher, basis, name, rel) if args.speech
                   else record_from_video(f, cache, name, rel, progress))
        except UserInputError as exc:  # one bad clip of many: log it and go on
            if len(files) == 1:
                raise
            log.warning("skipped %s: %s", f, exc)
            continue
        rec.save(args.out)
        done += 1
        log.info("%s: %d frames%s", name, rec.n_frames, "" if rec.has_audio else " (silent)")
    log.info("%d records in %s; %d clips skipped (held out, or not cached with --cached_only)", done, args.out,
             skipped)
    return 0


if __name__ == "__main__":
    run_cli(main)
