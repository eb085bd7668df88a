"""Face mesh, pose normalisation and mouth crops of every real talking clip, cached once for all recipes.

    python train_audio/cache_clips.py DATA_DIR CACHE [--subdir av --subdir av_more] [--only GLOB ...]

For each video below ``DATA_DIR/<subdir>`` (all frame rates, resampled to 25 fps), writes
``CACHE/<name>.clip.npz`` and ``CACHE/<name>.wav`` with :func:`talkingface.data.av_clips.prepare_clip`,
``<name>`` being the path below ``DATA_DIR`` with separators replaced by ``__``. A video without
an audio track takes its sound from a same-named audio file beside it (``.m4a``/``.wav``/...)
when there is one. Held-out clips are cached too: the cache is measurement, and the training
recipes filter them out with ``talkingface.eval.heldout.never_train_on()``.

``CACHE/index.tsv`` lists every clip: name, relative path, audio source, frames or the error.
Already cached clips are not redone, so the script resumes after an interruption.
"""
from __future__ import annotations

import fnmatch
import logging
import time
from pathlib import Path
from typing import Optional

from talkingface.data.av_clips import clip_name, prepare_clip
from talkingface.errors import MediaError, UserInputError
from talkingface.eval.heldout import never_train_on
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_dir, write_text
from talkingface.util.media import AUDIO_EXTS, list_videos, probe_video

log = logging.getLogger("cache_clips")


def paired_audio(video: Path) -> Optional[Path]:
    """The same-named audio file beside a video, if any (for videos whose mp4 carries no sound)."""
    for ext in AUDIO_EXTS:
        cand = video.with_suffix(ext)
        if cand.is_file():
            return cand
    return None


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("data", type=Path, help="the sample-data folder (holds av/ and av_more/)")
    ap.add_argument("cache", type=Path, help="output folder for the cached clips")
    ap.add_argument("--subdir", action="append", default=None, help="folder below DATA to scan (repeatable; "
                    "default: av and av_more)")
    ap.add_argument("--only", action="append", default=[], help="glob on the relative path (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    check_output_dir(args.cache)
    subdirs = args.subdir or ["av", "av_more"]
    videos = []
    for sub in subdirs:
        if not (args.data / sub).is_dir():
            raise UserInputError(f"no folder {args.data / sub}")
        videos += list_videos(args.data / sub)
    rels = [v.relative_to(args.data).as_posix() for v in videos]
    if args.only:
        keep = [any(fnmatch.fnmatch(r, g) for g in args.only) for r in rels]
        videos = [v for v, k in zip(videos, keep) if k]
    if not videos:
        raise UserInputError(f"no videos found below {args.data} in {subdirs}")
    held = never_train_on()
    # held-out clips first (the evaluation needs them), then one-off people, then the pieces of long
    # recordings of one person (paired audio files), which add the least variety per clip
    videos.sort(key=lambda v: (v.relative_to(args.data).as_posix() not in held,
                               paired_audio(v) is not None, str(v)))
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = ["name\tpath\taudio\tframes\tstatus"]
    t0 = time.time()
    for i, video in enumerate(videos):
        rel = video.relative_to(args.data).as_posix()
        name = clip_name(video, args.data)
        audio = None if probe_video(video).has_audio else paired_audio(video)
        src = audio.name if audio is not None else "own track"
        try:
            clip = prepare_clip(video, args.cache, name=name, require_audio=False, audio_file=audio)
            frames, status = clip.n_frames, ("ok" if clip.audio.size else "no audio")
        except (MediaError, UserInputError) as exc:
            frames, status = 0, f"error: {exc}"
            log.warning("%s: %s", rel, exc)
        rows.append(f"{name}\t{rel}\t{src}\t{frames}\t{status}")
        log.info("[%d/%d] %s: %s frames, %s (%.0f s elapsed)", i + 1, len(videos), rel, frames, status,
                 time.time() - t0)
        write_text(args.cache / "index.tsv", "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    run_cli(main)
