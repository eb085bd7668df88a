"""The DH_live audio -> video pipeline (reference §1.5, §1.6): speech -> 6 pixel-PCA coefficients per
40 ms (:class:`~talkingface.audio_model.AudioModel`) -> 15x30x3 mouth image
(:class:`~talkingface.mouth_basis.PixelBasis`) -> :class:`~talkingface.render_model.RenderModel`.

:class:`PixelMouthDecoder` runs the audio half offline (whole file) or streaming (640-sample blocks);
:func:`synthesize` writes an mp4 with the speech muxed in, one frame per 40 ms of audio.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

from talkingface.config.paths import resolve_named_file
from talkingface.errors import UserInputError

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
#: Sidecar-card keys that may name the basis file decoding a pixel-target audio checkpoint.
_BASIS_KEYS = ("basis", "basis_file", "pixel_basis")
_DEFAULT_BASIS_NAME = "pixel_basis.npz"


def resolve_pixel_basis(audio_checkpoint: Path, card: dict) -> Path:
    """The pixel-basis ``.npz`` of a pixel-target audio checkpoint: named in its card (relative to
    the checkpoint's folder or the shipped checkpoint tree, see :func:`~talkingface.config.paths.resolve_named_file`), else ``pixel_basis.npz`` beside the checkpoint."""
    target = card.get("target")
    if target is not None and target != "pixel":
        raise UserInputError(f"{audio_checkpoint} predicts {target!r} coefficients; the DH_live renderer "
                             "needs a pixel-target audio model")
    names = [card[k] for k in _BASIS_KEYS if isinstance(card.get(k), str)] + [_DEFAULT_BASIS_NAME]
    for name in names:
        path = resolve_named_file(name, audio_checkpoint.parent)
        if path is not None:
            return path
    raise UserInputError(f"no pixel basis for {audio_checkpoint} (looked for {', '.join(names)}); "
                         "run train_audio/preparation_step1.py or give --basis")


class PixelMouthDecoder:
    """Speech -> 15x30x3 BGR mouth images, through a pixel-target audio model and its basis."""

    def __init__(self, audio_checkpoint: Optional[PathLike] = None, basis: Optional[PathLike] = None,
                 device: str = "cpu"):
        from talkingface.audio_model import DEFAULT_CHECKPOINT, AudioModel
        from talkingface.mouth_basis import PixelBasis

        ckpt = Path(audio_checkpoint) if audio_checkpoint is not None else DEFAULT_CHECKPOINT
        if not ckpt.is_file():
            raise UserInputError(f"audio checkpoint not found: {ckpt}")
        self.audio = AudioModel(ckpt, device=device)
        basis_path = Path(basis) if basis is not None else resolve_pixel_basis(ckpt, self.audio.card)
        self.basis = PixelBasis.load(basis_path)
        log.info("audio model %s, pixel basis %s", ckpt, basis_path)

    @property
    def lookahead_frames(self) -> int:
        """Streaming delay in frames: the mouth returned for block k belongs to frame k - this."""
        return self.audio.lookahead_frames

    def mouths_for_wav(self, audio: Union[PathLike, np.ndarray]) -> np.ndarray:
        """Whole file -> (N, 15, 30, 3) uint8, N = ceil(samples / 640); row t = video frame t."""
        return self.basis.decode(self.audio.interface_wav(audio))

    def reset(self) -> None:
        self.audio.reset()

    def mouth_for_block(self, block: np.ndarray) -> np.ndarray:
        """Streaming: 640 samples (16 kHz float32) -> (15, 30, 3) uint8 for frame k - lookahead."""
        return self.basis.decode(self.audio.interface_frame(block))


def save_block_aligned_wav(audio: np.ndarray, path: PathLike) -> Path:
    """Save 16 kHz float32 ``audio`` zero-padded to a whole number of 640-sample frames, so a video
    with one frame per block and this track have the same length (muxing then keeps every frame)."""
    from talkingface.util.media import SAMPLES_PER_FRAME, save_wav

    n = int(np.ceil(audio.size / SAMPLES_PER_FRAME)) * SAMPLES_PER_FRAME
    padded = np.zeros(n, np.float32)
    padded[: audio.size] = audio
    return save_wav(path, padded, 16000)


def synthesize(avatar_dir: PathLike, audio_path: PathLike, out_path: PathLike,
               render_checkpoint: Optional[PathLike] = None, audio_checkpoint: Optional[PathLike] = None,
               basis: Optional[PathLike] = None, device: str = "auto") -> int:
    """Render ``audio_path`` spoken by the avatar into ``out_path`` (mp4 with the audio). Returns
    the number of frames (25 per second of audio, rounded up)."""
    import tempfile

    from talkingface.render_model import RenderModel
    from talkingface.util.cli import progress, resolve_device
    from talkingface.util.media import VideoWriter, load_audio

    dev = resolve_device(device)
    decoder = PixelMouthDecoder(audio_checkpoint, basis, device=dev)
    renderer = RenderModel(device=dev)
    renderer.loadModel(render_checkpoint)
    renderer.reset_charactor(avatar_dir)
    audio = load_audio(audio_path)
    mouths = decoder.mouths_for_wav(audio)
    with tempfile.TemporaryDirectory(prefix=".tmp_demo_", dir=Path(out_path).parent) as tmp:
        track = save_block_aligned_wav(audio, Path(tmp) / "audio.wav")
        with VideoWriter(out_path, audio=track) as writer:
            for mouth in progress(mouths, desc="render", unit="frame"):
                writer.write(renderer.interface(mouth))
    log.info("wrote %s (%d frames)", out_path, len(mouths))
    return len(mouths)
