"""Render an audio model's predicted mouth sequence for a speech file as an mp4 with the audio.

    python train_audio/test.py WAV CHECKPOINT [--out OUT.mp4] [--basis BASIS.npz]

The checkpoint's sidecar ``.json`` says what its 6 outputs mean and names the basis that decodes
them: a pixel basis gives the 15x30 mouth image (enlarged), a blendshape basis a drawing of the
lips and lower face. ``--basis`` overrides the sidecar. For the original's published model, pass
``--original_pca pca.pkl`` (opt-in: unpickles that trusted file; needs scikit-learn).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_file

log = logging.getLogger("test")


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("wav", type=Path, help="speech (any format ffmpeg reads)")
    ap.add_argument("checkpoint", type=Path, help="Audio2Feature checkpoint (.pkl)")
    ap.add_argument("--out", type=Path, help="output mp4 (default: <wav stem>_<checkpoint stem>.mp4 here)")
    ap.add_argument("--basis", type=Path, help="pixel or blendshape basis .npz (default: from the sidecar)")
    ap.add_argument("--original_pca", type=Path, help="the original's pickled mouth PCA (trusted file, opt-in)")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.audio_loader import load_audio_model
    from talkingface.audio_model import load_waveform
    from talkingface.mouth_basis import read_original_pca_pkl
    from talkingface.util.media import VideoWriter, save_wav

    out = check_output_file(args.out or Path(f"{args.wav.stem}_{args.checkpoint.stem}.mp4"), "output video")
    audio = load_waveform(args.wav)
    # The basis that decodes the outputs: --original_pca (opt-in pickle), --basis, or the card's.
    opt_in_pca = args.original_pca is not None
    model, basis = load_audio_model(args.checkpoint, basis=args.basis, device=resolve_device(args.device),
                                    basis_required=not opt_in_pca)
    if opt_in_pca:
        basis = read_original_pca_pkl(args.original_pca, allow_pickle=True)
    coefs = model.interface_wav(audio)
    with tempfile.TemporaryDirectory() as tmp:
        wav16 = save_wav(Path(tmp) / "audio.wav", audio)
        with VideoWriter(out, audio=wav16) as writer:
            for row in coefs:
                writer.write(basis.draw(row))
    log.info("wrote %s (%d frames)", out, len(coefs))
    return 0


if __name__ == "__main__":
    run_cli(main)
