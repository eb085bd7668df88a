"""Drive a mini avatar pack with speech, in memory, and measure whose mouth the output follows.

Used to check an avatar's usability: whether the rendered mouth follows the driving audio (the
audio model's opening coefficient) or leaks the avatar video's own mouth motion (a talking source
video), and how the renderer copes with head turns (``bench/bench_yaw.py``).

Mouth opening everywhere = inner-lip gap / inter-ocular distance from the face mesh
(:func:`talkingface.utils.mouth_opening`), measured on whole output frames with a tracking mesh.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from talkingface.eval.metrics import pearson
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.audio_loader import load_audio_model
from talkingface.mini_pack import DEFAULT_CHECKPOINT, load_asset_pack
from talkingface.render_model_mini import RenderModelMini, loop_index
from talkingface.run_utils import head_yaw
from talkingface.util.media import load_audio
from talkingface.utils import mouth_opening

PathLike = Union[str, Path]


@dataclass
class DriveResult:
    """Per output frame (N,): the output's mouth opening (NaN where the mesh found no face), the
    audio model's opening coefficient that drove it, the source frame's own opening and its head
    yaw (degrees, :func:`talkingface.run_utils.head_yaw`)."""

    output: np.ndarray
    driving: np.ndarray
    source: np.ndarray
    yaw: np.ndarray

    @property
    def r_audio(self) -> float:
        """Pearson r of the output's mouth opening with the driving audio's opening coefficient."""
        ok = ~np.isnan(self.output)
        return pearson(self.output[ok], self.driving[ok])

    @property
    def r_source(self) -> float:
        """Pearson r of the output's mouth opening with the avatar video's own mouth track."""
        ok = ~np.isnan(self.output)
        return pearson(self.output[ok], self.source[ok])

    @property
    def r_leak(self) -> float:
        """Pearson r of the avatar's own mouth track with what the audio does not explain in the output
        (the residual of a linear fit of the output opening on the driving coefficient): the leak of
        a talking source video, free of any chance correlation between the two tracks."""
        ok = ~np.isnan(self.output)
        slope, offset = np.polyfit(self.driving[ok], self.output[ok], 1)
        return pearson(self.output[ok] - (slope * self.driving[ok] + offset), self.source[ok])

    @property
    def leak_gain(self) -> float:
        """Share of the avatar's own mouth motion that reaches the output: the slope of the output's
        audio-unexplained residual on the source's opening (0 = none, 1 = all of it)."""
        ok = ~np.isnan(self.output)
        slope, offset = np.polyfit(self.driving[ok], self.output[ok], 1)
        residual = self.output[ok] - (slope * self.driving[ok] + offset)
        return float(np.polyfit(self.source[ok], residual, 1)[0])

    @property
    def detected(self) -> float:
        """Share of output frames in which the face mesh finds a face."""
        return float((~np.isnan(self.output)).mean())


def drive_pack(pack_dir: PathLike, audio: PathLike, max_frames: Optional[int] = None,
               checkpoint: PathLike = DEFAULT_CHECKPOINT, audio_checkpoint: Optional[PathLike] = None,
               backend: str = "auto", threads: int = 1, ref_frame: Optional[int] = None) -> DriveResult:
    """Render ``audio`` on the pack (as ``demo_mini`` does, without writing a video) and measure it.
    ``ref_frame``: recompute the reference from this frame instead of using the pack's."""
    torch.set_num_threads(threads)
    pack = load_asset_pack(pack_dir)
    if ref_frame is not None:
        pack.ref_frame, pack.frame0_landmarks, pack.reference = int(ref_frame), None, None
    audio_model, basis = load_audio_model(audio_checkpoint, "blendshape", basis_required=False)
    bs = audio_model.interface_wav(load_audio(audio))
    n = len(bs) if max_frames is None else min(len(bs), max_frames)
    model = RenderModelMini(checkpoint, backend=backend)
    try:
        model.reset_charactor(pack, use_pack_ref=None if ref_frame is None else False, basis=basis)
        frames = [model.interface(loop_index(i, len(pack)), bs[i]) for i in range(n)]
    finally:
        model.close()
    out_lm = landmarks_for_video(frames, progress=False, allow_missing=True)
    src_lm = landmarks_for_video(pack.frames, progress=False, allow_missing=True)
    order = [loop_index(i, len(pack)) for i in range(n)]
    return DriveResult(output=mouth_opening(out_lm), driving=np.asarray(bs[:n, 0], np.float64),
                       source=mouth_opening(src_lm)[order], yaw=head_yaw(src_lm)[order])
