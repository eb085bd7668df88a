"""Wav2Lip-teacher route (docs/REFERENCE.md §6.2 step 1): one fixed face + a folder of speech -> 96x96 teacher videos.

    python train_audio/preparation_step0.py FACE_IMAGE WAV_DIR [--wav2lip checkpoint/wav2lip.pth]

Needs the user-supplied ``wav2lip.pth`` of the Wav2Lip project (not shipped with this toolkit).
The face (one frontal face in the image) is found by the face mesh; its landmark box, extended
10 % upward, is resized to 96x96. For every audio file ``<name>.<ext>`` under WAV_DIR, Wav2Lip
renders one frame per 40 ms and ``<name>.mp4`` (25 fps, with the audio) is written next to it;
existing outputs are kept unless ``--overwrite``. Then run ``preparation_step1.py WAV_DIR OUT``
to fit the bases on these videos and write the LSTM targets.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.config.paths import wav2lip_checkpoint
from talkingface.errors import UserInputError
from talkingface.util.cli import progress, resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import check_input_file

log = logging.getLogger("preparation_step0")


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("face", type=Path, help="image of one frontal face (e.g. the original's face.jpg)")
    ap.add_argument("wav_dir", type=Path, help="folder of speech files (searched recursively)")
    ap.add_argument("--wav2lip", type=Path, default=wav2lip_checkpoint(), help="Wav2Lip weights (user-supplied)")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def face_crop96(image):
    """The 96x96 teacher face: landmark box of the one face, 10 % taller upward, resized."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import cv2
    import numpy as np

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.mediapipe_utils import FaceLandmarker

    with FaceLandmarker(static_image_mode=True) as mesh:
        lm = mesh(image)
    if lm is None:
        raise UserInputError("no face found in the face image")
    x0, y0 = np.floor(lm[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(lm[:, :2].max(0)).astype(int)
    y0 = max(0, int(y0 - 0.1 * (y1 - y0)))
    x0, y1, x1 = max(0, x0), min(image.shape[0], y1), min(image.shape[1], x1)
    return cv2.resize(image[y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import cv2

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.util.media import list_audio
    from talkingface.models.wav2lip import load_wav2lip, render_teacher_frames
    from talkingface.util.media import load_audio, write_video

    check_input_file(args.face, "face image")
    if not args.wav_dir.is_dir():
        raise UserInputError(f"not a folder: {args.wav_dir}")
    image = cv2.imread(str(args.face))
    if image is None:
        raise UserInputError(f"cannot read image {args.face}")
    face = face_crop96(image)
    device = resolve_device(args.device)
    net = load_wav2lip(args.wav2lip, device)
    wavs = list_audio(args.wav_dir)
    if not wavs:
        raise UserInputError(f"no audio files in {args.wav_dir}")
    done = 0
    for wav in progress(wavs, desc="teacher videos", unit="file"):
        out = wav.with_suffix(".mp4")
        if out.exists() and not args.overwrite:
            continue
        frames = render_teacher_frames(net, face, load_audio(wav), args.batch_size, device)
        write_video(out, frames, audio=wav)
        done += 1
    log.info("wrote %d teacher videos in %s", done, args.wav_dir)
    return 0


if __name__ == "__main__":
    run_cli(main)
