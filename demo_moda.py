"""MODA demo: speech -> lips, eyes and head motion of a person (MODA-lite + FaCo-Net) -> video.

Usage: python demo_moda.py SUBJECT_DIR AUDIO OUT.mp4 [--seed N] [--n_samples K] [--debug]
       python demo_moda.py --renderer warp PHOTO_OR_VIDEO AUDIO OUT.mp4 [--lip_gain G]

SUBJECT_DIR is a person folder of `python data_preparation_moda.py --avatar VIDEO SUBJECT_DIR`. The
video has 25 frames per second of audio (ceil(samples / 640) frames) and the audio muxed in. With a
per-person renderer (--renderer, default SUBJECT_DIR/renderer.pth when present; train one with
train_moda/train_renderer.py) the frames are rendered faces; without one they are the drawn
landmark condition images. --debug writes [render | condition | reference] side by side.
--n_samples K writes K motion samples (seeds N..N+K-1): OUT.mp4, OUT_s1.mp4, ...

--renderer warp: no person folder and no per-person training. The first argument is a photo (jpg, png,
...) or a short video (its first 10 s give the means; its most closed mouth is the source frame); the
whole face of that frame is warped to MODA's landmarks with an OpenGL triangle mesh and the opened mouth
is painted as a dark cavity (talkingface/moda_warp.py). Output at the photo's size; --debug adds the
source frame beside it. --lip_gain scales MODA's lip deltas (its lips move about 0.36x real).
--mouth dinet (experimental) lets DINet_mini paint the opened mouth over the dark cavity: the shipped
checkpoint draws a pale, lilac-grey band of blurred teeth that reads less as an opening than the cavity,
so the cavity is the default.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from talkingface.config.moda import FACO_CHECKPOINT, MODA_CHECKPOINT
from talkingface.errors import UserInputError
from talkingface.moda_pipeline import (FaCoPredictor, MODAPredictor, RendererPredictor, Subject, draw_condition,
                                       frame_landmarks, paste_dense)
from talkingface.util.cli import demo_parser, run_cli, setup_logging
from talkingface.util.files import check_input_file, check_output_file
from talkingface.util.media import VideoWriter, check_audio, load_audio, save_wav

log = logging.getLogger("demo_moda")


def main(argv=None) -> int:
    ap = demo_parser(__doc__, "subject", "person folder (data_preparation_moda.py --avatar)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n_samples", type=int, default=1)
    ap.add_argument("--debug", action="store_true", help="side by side: render | condition | reference")
    ap.add_argument("--moda", type=Path, default=MODA_CHECKPOINT)
    ap.add_argument("--faco", type=Path, default=FACO_CHECKPOINT, help="'none': paste lips and eyes into the mean")
    ap.add_argument("--renderer", type=Path, default=None,
                    help="a per-person renderer checkpoint, or 'warp': SUBJECT is a photo or short video")
    ap.add_argument("--lip_gain", type=float, default=1.0, help="scale of the predicted lip deltas")
    ap.add_argument("--mouth", choices=("cavity", "dinet"), default="cavity",
                    help="--renderer warp: the opened mouth as a dark cavity, or painted by DINet_mini (experimental)")
    ap.add_argument("--size", type=int, default=256, help="condition image size without a renderer")
    args = ap.parse_args(argv)
    setup_logging()
    if args.n_samples < 1:
        raise UserInputError("--n_samples must be >= 1")
    check_output_file(args.out, "output video")
    if args.out.suffix.lower() != ".mp4":
        raise UserInputError(f"output must be an .mp4 file: {args.out}")
    if args.lip_gain <= 0:
        raise UserInputError("--lip_gain must be > 0")
    check_audio(check_input_file(args.audio, "audio file"))  # bad audio fails before the models load
    if str(args.renderer) == "warp":
        return _warp_main(args)
    subject = Subject.load(args.subject)
    audio = load_audio(args.audio)
    if audio.size == 0:
        raise UserInputError(f"no audio in {args.audio}")
    moda = MODAPredictor(args.moda)
    faco = None if str(args.faco) == "none" else FaCoPredictor(args.faco)
    renderer_path = args.renderer or (args.subject / "renderer.pth")
    renderer = None
    if args.renderer is not None or renderer_path.is_file():
        if subject.reference is None:
            raise UserInputError(f"{args.subject} has no reference.png for the renderer")
        renderer = RendererPredictor(renderer_path, subject.reference)
    size = renderer.cfg.resolution if renderer else args.size
    n = int(np.ceil(audio.size / 640))
    # the muxed sound is padded with silence to exactly n frames, so the video keeps all n frames
    tmp = tempfile.TemporaryDirectory(prefix="demo_moda_")
    wav = save_wav(Path(tmp.name) / "audio.wav", np.pad(audio, (0, n * 640 - audio.size)))
    for k in range(args.n_samples):
        t0 = time.time()
        points = sample_landmarks(moda, faco, audio, subject, args.seed + k, n, args.lip_gain)
        out = args.out if k == 0 else args.out.with_name(f"{args.out.stem}_s{k}.mp4")
        ref = cv2.resize(subject.reference, (size, size)) if subject.reference is not None else None
        with VideoWriter(out, audio=wav) as writer:
            for i in range(n):
                cond = draw_condition(points[i], subject.frame_size, size)
                frame = renderer.render(cond, i) if renderer else cond
                if args.debug:
                    frame = np.hstack([frame, cond] + ([ref] if ref is not None else []))
                writer.write(frame)
        log.info("wrote %s: %d frames (%.1f s of audio) in %.1f s", out, n, audio.size / 16000, time.time() - t0)
    tmp.cleanup()
    return 0


def sample_landmarks(moda: MODAPredictor, faco: Optional[FaCoPredictor], audio: np.ndarray, subject: Subject,
                     seed: int, n: int, lip_gain: float) -> np.ndarray:
    """One motion sample -> (n, 478, 3) landmarks per frame in the person's video px: MODA's lips (times ``lip_gain``),
    eyes and head, composed into the dense mesh by FaCo (or pasted into the subject's mean)."""
    motion = moda.predict(audio, subject, seed=seed, n_frames=n)
    lip = motion["lip"] * lip_gain
    dense = faco.dense(lip, motion["eye"], subject) if faco else paste_dense(lip, motion["eye"], subject)
    return frame_landmarks(dense, motion["head"], subject)


def _warp_main(args) -> int:
    """--renderer warp: a photo or short video -> the whole face warped to MODA's landmarks."""
    from talkingface.moda_warp import FaceWarper, MouthPainter, fill_mouth, inner_gap, subject_from_media

    check_input_file(args.subject, "photo or video")
    subject, frame, source_lm = subject_from_media(args.subject)  # no face: one error line, nothing written
    audio = load_audio(args.audio)
    if audio.size == 0:
        raise UserInputError(f"no audio in {args.audio}")
    moda = MODAPredictor(args.moda)
    faco = None if str(args.faco) == "none" else FaCoPredictor(args.faco)
    n = int(np.ceil(audio.size / 640))
    source_gap = inner_gap(source_lm)
    with tempfile.TemporaryDirectory(prefix="demo_moda_") as tmp, FaceWarper(frame, source_lm) as warper:
        wav = save_wav(Path(tmp) / "audio.wav", np.pad(audio, (0, n * 640 - audio.size)))
        for k in range(args.n_samples):
            t0 = time.time()
            points = sample_landmarks(moda, faco, audio, subject, args.seed + k, n, args.lip_gain)
            painter = MouthPainter(frame, source_lm, points) if args.mouth == "dinet" else None
            t1 = time.time()
            out = args.out if k == 0 else args.out.with_name(f"{args.out.stem}_s{k}.mp4")
            with VideoWriter(out, audio=wav) as writer:
                for i in range(n):
                    img = fill_mouth(warper.warp(points[i]), points[i], source_gap)
                    if painter is not None:  # over the cavity: no stretched lip texture at the blend's edge
                        img = painter.paint(img, i)
                    writer.write(np.hstack([img, frame]) if args.debug else img)
            t2 = time.time()
            log.info("wrote %s: %d frames (%.1f s of audio): motion %.1f s, warp + mouth %.1f ms/frame", out, n,
                     audio.size / 16000, t1 - t0, 1000 * (t2 - t1) / n)
    return 0


if __name__ == "__main__":
    run_cli(main)
