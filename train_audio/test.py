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

from talkingface.errors import UserInputError
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


def load_basis(args, card: dict):
    """The basis that decodes the checkpoint's outputs: --original_pca, --basis, or the sidecar's."""
    from talkingface.mouth_basis import BlendshapeBasis, PixelBasis, read_original_pca_pkl

    if args.original_pca is not None:
        return read_original_pca_pkl(args.original_pca, allow_pickle=True)
    path = args.basis
    if path is None:
        if not card.get("basis"):
            raise UserInputError(f"{args.checkpoint} has no sidecar naming its basis: pass --basis")
        path = args.checkpoint.parent / card["basis"]
    import numpy as np

    if not Path(path).is_file():
        raise UserInputError(f"basis file not found: {path}")
    with np.load(path, allow_pickle=False) as d:
        is_blendshape = "landmark_ids" in d.files
    return BlendshapeBasis.load(path) if is_blendshape else PixelBasis.load(path)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from talkingface.audio_model import AudioModel, load_waveform
    from talkingface.util.media import VideoWriter, save_wav

    out = check_output_file(args.out or Path(f"{args.wav.stem}_{args.checkpoint.stem}.mp4"), "output video")
    audio = load_waveform(args.wav)
    model = AudioModel(args.checkpoint, device=resolve_device(args.device))
    basis = load_basis(args, model.card)
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
