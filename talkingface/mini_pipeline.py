"""The DH_live_mini audio -> video pipeline (docs/REFERENCE.md §1.7): speech -> 6 blendshape weights
per 40 ms (:func:`talkingface.audio_loader.load_audio_model`, target ``blendshape``) -> GL mouth render
-> DINet_mini (:class:`~talkingface.render_model_mini.RenderModelMini`) on an asset pack
(:mod:`talkingface.mini_pack`). :func:`synthesize` is ``demo_mini.py``: one mp4 with the speech muxed
in, one frame per 40 ms of audio, and per-stage timings; :class:`StreamRenderer` is the live
renderer. With :func:`prepare_avatar` and :func:`default_avatar` this is the product interface of
:mod:`talkingface.products`; the DH_live counterpart is :mod:`talkingface.dhlive_pipeline`.
"""
from __future__ import annotations

import resource
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence

import cv2
import numpy as np
import torch

from talkingface.audio_loader import load_audio_model
from talkingface.errors import UserInputError
from talkingface.fast.yuv import I420Frames, join_parts
from talkingface.mini_pack import DEFAULT_CHECKPOINT, PathLike, load_asset_pack, write_avatar_pack
from talkingface.preparation import PrepConfig, prepare_mini_avatar
from talkingface.render_model_mini import RenderModelMini, loop_index
from talkingface.sample_avatar import ensure_sample_mini_avatar
from talkingface.util.cli import progress as progress_bar
from talkingface.util.files import check_input_file, check_output_file, write_image
from talkingface.util.media import AUDIO_RATE, DEMO_PRESET, SAMPLES_PER_FRAME, VideoWriter, check_audio, iter_audio
from talkingface.utils import safe_crop


@dataclass
class SynthesisStats:
    """Per-stage wall time (seconds, whole run) and sizes of one :func:`synthesize` call."""

    frames: int = 0  # output frames
    audio_seconds: float = 0.0  # length of the speech
    load: float = 0.0  # pack, models, reference feature
    audio: float = 0.0  # decode + audio model
    gl: float = 0.0  # label render and, for the interior blend, the label-free render
    network: float = 0.0  # crop + warp + DINet_mini + blend
    paste: float = 0.0  # the change pasted into the full frame
    encode: float = 0.0  # writing frames to the ffmpeg encoder
    total: float = 0.0  # wall time of the whole call
    cpu: float = 0.0  # CPU seconds of this process and its children (ffmpeg), all threads
    stage_cpu: Dict[str, float] = field(default_factory=dict)  # thread CPU seconds of gl/network/paste
    engine: str = "torch"  # the renderer's inference engine (onnx = the fast path)
    network_frames: int = 0  # frames that ran DINet_mini (the fast path skips closed-mouth frames exactly)

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


def synthesize(pack_dir: PathLike, audio_path: PathLike, out_path: PathLike,
               render_checkpoint: Optional[PathLike] = None, audio_checkpoint: Optional[PathLike] = None,
               device: str = "cpu", backend: str = "auto",
               use_pack_ref: Optional[bool] = None, bs_scale: float = 1.0, use_network: bool = True,
               progress: bool = True, mosaic: Optional[PathLike] = None, mosaic_frames: int = 8,
               threads: Optional[int] = 1, blend: str = "interior", engine: str = "auto",
               preset: str = DEMO_PRESET) -> SynthesisStats:
    """Lip-sync an avatar pack to speech and write an mp4 with the audio muxed in (docs/REFERENCE.md §1.7).

    One output frame per 40 ms of audio (N = ceil(samples / 640)); the avatar video plays as a
    ping-pong loop while the mouth follows the **audio** frame index (the original indexed the
    blendshapes by the loop index, replaying the first 2N frames' motion on long audio).
    ``mosaic``: also write a PNG of the mouth crops of ``mosaic_frames`` evenly spaced output
    frames (with their mouth-opening weight), to check the motion by eye. ``render_checkpoint``:
    DINet_mini weights (default: the shipped ones). ``threads``: CPU threads of torch and
    OpenCV (process-wide settings), ONNX Runtime and the x264 encoder (the per-frame work is tiny: one
    thread avoids thread-synchronisation overhead that dominates at batch 1, especially on a busy
    machine); None keeps torch's and OpenCV's settings and ffmpeg's default. ``engine``:
    ``auto`` (ONNX Runtime when installed), ``onnx`` or ``torch`` (see :class:`RenderModelMini`).
    ``preset``: the x264 preset of the output (default :data:`talkingface.util.media.DEMO_PRESET`).
    """
    def cpu_now() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t_start = time.perf_counter()
    cpu_start = cpu_now()
    if threads is not None and device == "cpu":
        torch.set_num_threads(int(threads))
        # OpenCV's pool too: its per-frame images are 128-300 px, where worker hand-offs cost more CPU than
        # they save (the fast path's CPU time was 1.5x its wall time with the default pool on 2 cores).
        cv2.setNumThreads(int(threads))
    stats = SynthesisStats()
    # Every cheap check before the heavy set-up, in this order: outputs, the audio (one streamed
    # decoding pass: a bad file fails here, and the frame count is known up front), the audio model,
    # the DINet_mini weights, then the pack.
    check_output_file(out_path, "output video")
    if mosaic:
        check_output_file(mosaic, "mosaic image")
    samples = check_audio(check_input_file(audio_path, "audio file"))
    n = int(np.ceil(samples / SAMPLES_PER_FRAME))
    stats.audio_seconds = samples / AUDIO_RATE
    audio_model, basis = load_audio_model(audio_checkpoint, "blendshape", device=device, basis_required=False)
    model = RenderModelMini(render_checkpoint or DEFAULT_CHECKPOINT, device=device, backend=backend,
                            warp_only=not use_network, blend=blend, engine=engine, threads=threads)
    try:
        # I420 in a temporary file: memory independent of the avatar's length; ffmpeg gets I420 directly
        pack = load_asset_pack(pack_dir, frame_store="i420-spill")
        yuv = isinstance(pack.frames, I420Frames)
        model.reset_charactor(pack, use_pack_ref=use_pack_ref, basis=basis)
        stats.load = time.perf_counter() - t_start
        picks = set(np.linspace(0, n - 1, min(mosaic_frames, n)).round().astype(int).tolist()) if mosaic else set()
        tiles = []
        # Streamed: audio blocks -> fbank -> LSTM rows -> frames, so memory does not grow with the length.
        weights = _timed(_rows(audio_model.interface_stream(iter_audio(audio_path)), float(bs_scale)), stats)
        with closing(weights), VideoWriter(out_path, audio=audio_path, preset=preset, threads=threads) as writer:
            for i, bs in enumerate(progress_bar(weights, total=n, desc="demo_mini", unit="frame", show=progress)):
                k = loop_index(i, len(pack))
                if yuv:
                    planes = model.render_i420(k, bs)
                    t1 = time.perf_counter()
                    writer.write_i420(planes, pack.frames.width, pack.frames.height)
                else:
                    frame = model.interface(k, bs)
                    t1 = time.perf_counter()
                    writer.write(frame)
                stats.encode += time.perf_counter() - t1
                stats.frames = i + 1
                if i in picks:
                    if yuv:
                        i420 = np.frombuffer(join_parts(planes), np.uint8).reshape(-1, pack.frames.width)
                        frame = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
                    tiles.append(_mosaic_tile(frame, pack.rects[k], i, float(bs[0])))
            t1 = time.perf_counter()
        stats.encode += time.perf_counter() - t1
        if stats.frames != n:
            raise UserInputError(f"{audio_path} changed while it was read ({stats.frames} frames, expected {n})")
        stats.gl, stats.network, stats.paste = (model.timings[k] for k in ("gl", "network", "paste"))
        stats.stage_cpu = dict(model.cpu_timings)
        stats.engine = model.engine
        stats.network_frames = model.fast.network_frames if model.fast is not None else n
        if mosaic and tiles:
            write_image(Path(mosaic), np.concatenate(tiles, 1))
    finally:
        model.close()
    stats.total = time.perf_counter() - t_start
    stats.cpu = cpu_now() - cpu_start
    return stats


def _rows(blocks: Iterator[np.ndarray], scale: float) -> Iterator[np.ndarray]:
    """One (6,) weight row per frame out of the audio model's (M, 6) blocks, times ``scale``."""
    for block in blocks:
        for row in block:
            yield row * scale


def _timed(rows: Iterator[np.ndarray], stats: SynthesisStats) -> Iterator[np.ndarray]:
    """``rows``, with the time spent producing them (decode + fbank + audio model) added to ``stats.audio``."""
    while True:
        t0 = time.perf_counter()
        try:
            row = next(rows)
        except StopIteration:
            return
        finally:
            stats.audio += time.perf_counter() - t0
        yield row


def _mosaic_tile(frame: np.ndarray, rect: Sequence[int], index: int, weight: float, size: int = 192) -> np.ndarray:
    """The mouth rect of an output frame, enlarged, captioned with its frame index and bs[0]."""
    tile = cv2.resize(safe_crop(frame, rect, border="replicate"), (size, size), interpolation=cv2.INTER_LINEAR)
    cv2.putText(tile, f"#{index} bs0={weight:.0f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


def prepare_avatar(video: PathLike, avatar_dir: PathLike, render_checkpoint: Optional[PathLike] = None,
                   device: str = "cpu", progress: bool = True) -> Path:
    """``data_preparation_mini.py`` then ``data_preparation_web.py``: the mini avatar folder (``data/``
    and the asset pack ``assets/``, whose ``ref_data`` is computed with ``render_checkpoint``)."""
    checkpoint = render_checkpoint or DEFAULT_CHECKPOINT
    if not Path(checkpoint).is_file():
        raise UserInputError(f"DINet_mini checkpoint not found: {checkpoint} (give --ckpt)")
    avatar = prepare_mini_avatar(Path(video), Path(avatar_dir), PrepConfig(progress=progress))
    write_avatar_pack(avatar, checkpoint=checkpoint, device=device)
    return avatar


def default_avatar() -> Path:
    """The sample avatar ``video_data/mini``, built from the built-in sample video on first use."""
    return ensure_sample_mini_avatar()


class StreamRenderer:
    """DH_live_mini live: streaming blendshape audio model -> GL mouth render -> DINet_mini frame, on an
    asset pack (the pack folder itself or the avatar folder holding ``assets/``); the avatar video plays
    as a ping-pong loop (the :class:`talkingface.realtime.StreamRenderer` protocol)."""

    name = "mini"

    def __init__(self, avatar_dir: PathLike, render_checkpoint: Optional[PathLike] = None,
                 audio_checkpoint: Optional[PathLike] = None, device: str = "cpu", engine: str = "auto",
                 threads: Optional[int] = None):
        self.pack = load_asset_pack(avatar_dir)
        # The mesh's blendshape table must decode the coefficients this audio model predicts.
        self.audio, basis = load_audio_model(audio_checkpoint, "blendshape", device="cpu", basis_required=False)
        self.model = RenderModelMini(render_checkpoint or DEFAULT_CHECKPOINT, device=device, engine=engine,
                                     threads=threads)
        self.engine = self.model.engine
        self.model.reset_charactor(self.pack, basis=basis)
        self.lookahead_frames = self.audio.lookahead_frames
        self._count = 0

    def reset(self) -> None:
        self.audio.reset()
        self._count = 0

    def render_block(self, block: np.ndarray) -> np.ndarray:
        bs = self.audio.interface_frame(block)
        # Output frame k shows audio frame k - lookahead; the avatar loop follows the shown frame.
        index = loop_index(max(self._count - self.lookahead_frames, 0), len(self.pack))
        self._count += 1
        return self.model.interface(index, bs)

    def close(self) -> None:
        self.model.close()
