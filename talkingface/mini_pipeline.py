"""The DH_live_mini audio -> video pipeline (reference_system.md §1.7): speech -> 6 blendshape weights
per 40 ms (:func:`talkingface.audio_loader.load_audio_model`, target ``blendshape``) -> GL mouth render
-> DINet_mini (:class:`~talkingface.render_model_mini.RenderModelMini`) on an asset pack
(:mod:`talkingface.mini_pack`). :func:`synthesize` is ``demo_mini.py``: one mp4 with the speech muxed
in, one frame per 40 ms of audio, and per-stage timings. The DH_live counterpart is
:mod:`talkingface.dhlive_pipeline`.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from talkingface.audio_loader import load_audio_model
from talkingface.errors import UserInputError
from talkingface.mini_pack import DEFAULT_CHECKPOINT, PathLike, load_asset_pack
from talkingface.render_model_mini import RenderModelMini, loop_index
from talkingface.util.files import write_image
from talkingface.util.media import SAMPLES_PER_FRAME, VideoWriter, load_audio


@dataclass
class SynthesisStats:
    """Per-stage wall time (seconds, whole run) and sizes of one :func:`synthesize` call.

    Stages: load (pack, models, reference), audio (decode + audio model), gl (label render and, for
    the interior blend, the label-free render), network (crop + warp + DINet_mini + blend), paste,
    encode (writing frames to the ffmpeg encoder).
    """

    frames: int = 0
    audio_seconds: float = 0.0
    load: float = 0.0
    audio: float = 0.0
    gl: float = 0.0
    network: float = 0.0
    paste: float = 0.0
    encode: float = 0.0
    total: float = 0.0
    cpu: float = 0.0  # CPU seconds of this process and its children (ffmpeg), all threads

    def per_frame_ms(self) -> Dict[str, float]:
        n = max(self.frames, 1)
        return {k: 1000.0 * getattr(self, k) / n for k in ("audio", "gl", "network", "paste", "encode")}

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration (< 1 is faster than real time)."""
        return self.total / max(self.audio_seconds, 1e-9)

    @property
    def cpu_rtf(self) -> float:
        """CPU seconds per second of audio: the real-time factor on an otherwise idle core."""
        return self.cpu / max(self.audio_seconds, 1e-9)


def synthesize(pack_dir: PathLike, audio_path: PathLike, out_path: PathLike, checkpoint: PathLike = DEFAULT_CHECKPOINT,
               audio_checkpoint: Optional[PathLike] = None, device: str = "cpu", backend: str = "auto",
               use_pack_ref: Optional[bool] = None, bs_scale: float = 1.0, use_network: bool = True,
               progress: bool = True, mosaic: Optional[PathLike] = None, mosaic_frames: int = 8,
               threads: Optional[int] = 1, blend: str = "interior") -> SynthesisStats:
    """Lip-sync an avatar pack to speech and write an mp4 with the audio muxed in (reference §1.7).

    One output frame per 40 ms of audio (N = ceil(samples / 640)); the avatar video plays as a
    ping-pong loop while the mouth follows the **audio** frame index (the original indexed the
    blendshapes by the loop index, replaying the first 2N frames' motion on long audio).
    ``mosaic``: also write a PNG of the mouth crops of ``mosaic_frames`` evenly spaced output
    frames (with their mouth-opening weight), to check the motion by eye. ``threads``: torch CPU
    threads (the per-frame network is tiny: one thread avoids thread-synchronisation overhead that
    dominates at batch 1, especially on a busy machine); None keeps torch's setting.
    """
    def cpu_now() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t_start = time.perf_counter()
    cpu_start = cpu_now()
    if threads is not None and device == "cpu":
        torch.set_num_threads(int(threads))
    stats = SynthesisStats()
    if not Path(audio_path).is_file():
        raise UserInputError(f"audio file not found: {audio_path}")
    pack = load_asset_pack(pack_dir)
    audio_model, basis = load_audio_model(audio_checkpoint, "blendshape", device=device, basis_required=False)
    model = RenderModelMini(checkpoint, device=device, backend=backend, warp_only=not use_network, blend=blend)
    try:
        model.reset_charactor(pack, use_pack_ref=use_pack_ref, basis=basis)
        stats.load = time.perf_counter() - t_start
        t0 = time.perf_counter()
        wav = load_audio(audio_path)
        bs = audio_model.interface_wav(wav) * float(bs_scale)
        stats.audio = time.perf_counter() - t0
        stats.audio_seconds = wav.size / 16000.0
        n = int(np.ceil(wav.size / SAMPLES_PER_FRAME))
        bs = bs[:n]
        picks = set(np.linspace(0, n - 1, min(mosaic_frames, n)).round().astype(int).tolist()) if mosaic else set()
        tiles = []
        frames_iter = range(n)
        if progress:
            frames_iter = tqdm(frames_iter, desc="demo_mini", unit="frame")
        with VideoWriter(out_path, audio=audio_path) as writer:
            for i in frames_iter:
                frame = model.interface(loop_index(i, len(pack)), bs[i])
                if i in picks:
                    tiles.append(_mosaic_tile(frame, pack.rects[loop_index(i, len(pack))], i, float(bs[i][0])))
                t1 = time.perf_counter()
                writer.write(frame)
                stats.encode += time.perf_counter() - t1
            t1 = time.perf_counter()
        stats.encode += time.perf_counter() - t1
        stats.frames = n
        stats.gl, stats.network, stats.paste = (model.timings[k] for k in ("gl", "network", "paste"))
        if mosaic and tiles:
            write_image(Path(mosaic), np.concatenate(tiles, 1))
    finally:
        model.close()
    stats.total = time.perf_counter() - t_start
    stats.cpu = cpu_now() - cpu_start
    return stats


def _mosaic_tile(frame: np.ndarray, rect: Sequence[int], index: int, weight: float, size: int = 192) -> np.ndarray:
    """The mouth rect of an output frame, enlarged, captioned with its frame index and bs[0]."""
    x0, y0, x1, y1 = (int(v) for v in rect)
    tile = cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_LINEAR)
    cv2.putText(tile, f"#{index} bs0={weight:.0f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile
