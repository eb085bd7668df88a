"""The DH_live product (docs/REFERENCE.md §1.5, docs/REFERENCE.md §1.6): speech -> 6 pixel-PCA coefficients per 40 ms
(:func:`talkingface.audio_loader.load_audio_model`, target ``pixel``) -> 15x30x3 mouth image
(:class:`~talkingface.mouth_basis.PixelBasis`) -> :class:`~talkingface.render_model.RenderModel`.

:class:`PixelMouthDecoder` runs the audio half offline (whole file) or streaming (640-sample blocks);
:func:`synthesize` writes an mp4 with the speech muxed in, one frame per 40 ms of audio;
:class:`StreamRenderer` is the live renderer. Together with :func:`prepare_avatar` and
:func:`default_avatar` this is the product interface of :mod:`talkingface.products`.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Union

import numpy as np

from talkingface.audio_loader import load_audio_model
from talkingface.errors import UserInputError
from talkingface.preparation import PrepConfig, prepare_dhlive_avatar
from talkingface.config.paths import dinet_avatar_dir
from talkingface.render_model import RenderModel
from talkingface.util.cli import progress as progress_bar
from talkingface.util.cli import resolve_device
from talkingface.util.media import VideoWriter, load_audio, save_block_aligned_wav

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
#: The DH_live avatar used when none is given (the original's path).


class PixelMouthDecoder:
    """Speech -> 15x30x3 BGR mouth images, through a pixel-target audio model and its basis."""

    def __init__(self, audio_checkpoint: Optional[PathLike] = None, basis: Optional[PathLike] = None,
                 device: str = "cpu"):
        self.audio, self.basis = load_audio_model(audio_checkpoint, "pixel", basis=basis, device=device)

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


def synthesize(avatar_dir: PathLike, audio_path: PathLike, out_path: PathLike,
               render_checkpoint: Optional[PathLike] = None, audio_checkpoint: Optional[PathLike] = None,
               basis: Optional[PathLike] = None, device: str = "auto", progress: bool = True) -> int:
    """Render ``audio_path`` spoken by the avatar into ``out_path`` (mp4 with the audio). Returns
    the number of frames (25 per second of audio, rounded up)."""
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
            for mouth in progress_bar(mouths, desc="render", unit="frame", show=progress):
                writer.write(renderer.interface(mouth))
    log.info("wrote %s (%d frames)", out_path, len(mouths))
    return len(mouths)


def prepare_avatar(video: PathLike, avatar_dir: PathLike, render_checkpoint: Optional[PathLike] = None,
                   device: str = "cpu", progress: bool = True) -> Path:
    """``data_preparation.py``: the DH_live avatar (``circle.mp4`` + ``keypoint_rotate.pkl``) of a
    talking-head video. The render checkpoint plays no part (the references are encoded at load)."""
    return prepare_dhlive_avatar(Path(video), Path(avatar_dir), PrepConfig(progress=progress))


def default_avatar() -> Path:
    """``video_data/test`` (the original's path), made with ``data_preparation.py``; a clear error if absent."""
    path = dinet_avatar_dir()
    if not path.exists():
        raise UserInputError(f"default avatar {path} not found: give --avatar DIR or make it with "
                             f"data_preparation.py VIDEO {path}")
    return path


class StreamRenderer:
    """DH_live live: streaming pixel-target audio model -> 15x30 mouth -> DINet_five_Ref frame
    (the :class:`talkingface.realtime.StreamRenderer` protocol)."""

    name = "dinet"

    def __init__(self, avatar_dir: PathLike, render_checkpoint: Optional[PathLike] = None,
                 audio_checkpoint: Optional[PathLike] = None, basis: Optional[PathLike] = None,
                 device: str = "auto", engine: str = "auto", threads: Optional[int] = None):
        dev = resolve_device(device)
        self.render = RenderModel(device=dev, engine=engine, threads=threads)
        self.engine = self.render.engine
        self.render.loadModel(render_checkpoint)
        self.mouths = PixelMouthDecoder(audio_checkpoint, basis, device="cpu")
        self.render.reset_charactor(avatar_dir)
        self.lookahead_frames = self.mouths.lookahead_frames

    def reset(self) -> None:
        self.mouths.reset()
        self.render.frame_index = 0

    def render_block(self, block: np.ndarray) -> np.ndarray:
        return self.render.interface(self.mouths.mouth_for_block(block))

    def close(self) -> None:
        """Nothing to release."""
