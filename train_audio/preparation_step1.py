"""Fit both mouth-motion bases on a folder of real talking videos and write per-clip training targets.

    python train_audio/preparation_step1.py VIDEO_FOLDER OUT [--exclude NAME ...]

For every video (25 fps): face mesh, pose normalisation and mouth crops are cached in
``OUT/clips/<name>.clip.npz``, with the cut audio (16 kHz) in ``OUT/clips/<name>.wav``. Videos
without an audio track help fit the bases (and relate them) but cannot train the LSTM. Then:

- ``OUT/blendshape_basis.npz`` (+ ``.png``: each component at mean -2, 0, +2 std) for the mini
  renderer;
- ``OUT/pixel_basis.npz`` (+ ``.png``: decoded mouths across each component) for DH_live;
- ``OUT/clips/<name>.bs.txt`` and ``<name>.pixel.txt``: one row of 6 coefficients per 40 ms,
  the targets of ``train_audio/train_lstm.py`` (clips without audio get them too: ``distill.py``
  uses them to relate the two bases).

``--exclude`` (file name, stem or glob; repeatable) keeps validation speakers out of everything.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from talkingface.errors import MediaError, UserInputError
from talkingface.util.cli import parse_verbose, progress, run_cli, script_parser
from talkingface.util.files import write_image, write_text

log = logging.getLogger("preparation_step1")


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("videos", type=Path, help="folder of real talking videos with audio (searched recursively)")
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--exclude", action="append", default=[], help="video name/stem/glob to leave out (repeatable)")
    ap.add_argument("--components", type=int, default=6, help="basis size (the LSTM predicts 6)")
    return parse_verbose(ap, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.av_clips import clip_name, prepare_clip, write_targets
    from talkingface.mouth_basis import (blendshape_sweep_image, fit_blendshape_basis, fit_pixel_basis,
                                         pixel_sweep_image, process_crops)
    from talkingface.util.media import list_videos
    from talkingface.utils import mouth_opening

    videos = list_videos(args.videos, exclude=args.exclude)
    if not videos:
        raise UserInputError(f"no videos found in {args.videos}")
    args.out.mkdir(parents=True, exist_ok=True)
    clip_dir = args.out / "clips"
    clips, silent = [], []
    for video in progress(videos, desc="clips", unit="clip"):
        try:
            clip = prepare_clip(video, clip_dir, name=clip_name(video, args.videos), require_audio=False)
        except (MediaError, UserInputError) as exc:
            log.warning("skipping %s: %s", video.name, exc)
            continue
        (clips if clip.audio.size else silent).append(clip)
    if not clips:
        raise UserInputError(f"no usable clip (video with a face and speech) in {args.videos}")
    if silent:
        log.info("%d videos without audio are used for the bases only", len(silent))
    fit = clips + silent
    log.info("fitting bases on %d clips, %d frames", len(fit), sum(c.n_frames for c in fit))
    bs = fit_blendshape_basis([c.normalized for c in fit], n_components=args.components)
    px = fit_pixel_basis([process_crops(c.raw_crops) for c in fit],
                         openings=[mouth_opening(c.normalized) for c in fit], n_components=args.components)
    sources = [c.name for c in fit]
    bs.info["clips_used"] = px.info["clips_used"] = sources
    bs.save(args.out / "blendshape_basis.npz")
    px.save(args.out / "pixel_basis.npz")
    for name, img in (("blendshape_basis.png", blendshape_sweep_image(bs)), ("pixel_basis.png", pixel_sweep_image(px))):
        write_image(args.out / name, img)
    for clip in fit:
        write_targets(clip, clip_dir, bs, px)
    summary = {"clips": sources, "frames": sum(c.n_frames for c in clips), "excluded": args.exclude,
               "blendshape": {k: v for k, v in bs.info.items() if k != "clips_used"},
               "pixel": {k: v for k, v in px.info.items() if k != "clips_used"}}
    write_text(args.out / "bases.json", json.dumps(summary, indent=1))
    log.info("wrote %s (blendshape energy %s)", args.out,
             [round(x, 3) for x in bs.info["explained_energy"]])
    return 0


if __name__ == "__main__":
    run_cli(main)
