"""Self-reconstruction: re-create a real talking clip from its own frames and audio, then score it.

For a clip with speech: build the avatar from the clip's frames, drive it with the clip's audio
through a registered pipeline, and compare the generated frames with the real ones
(:func:`talkingface.eval.metrics.compare_videos`). The static-mouth and audio-energy baselines
(:mod:`talkingface.eval.baselines`) are scored beside it.

The avatar source is, by default, the clip with its mouth neutralised on every frame (the
static-mouth video: same frames and head motion, the most-closed mouth pasted in). Built from the
raw clip, the avatar frames would carry the real mouth and a renderer that keeps part of its source
pixels (the mini route's warp, for one) would copy the answer: a warp-only mini render of the raw
clip scores r ~0.8 without following the audio at all. ``avatar_source="clip"`` keeps that variant
for diagnosis.

Pipelines are thin adapters in a registry, ``name -> fn(avatar_video, wav, workdir, options) -> mp4``:
every product of :mod:`talkingface.products` (run as its scripts would), its network-free
``mini-warp`` variant and the model-free ``static``. Here ``avatar_video`` is the avatar source (25 fps, the clip's frame size), ``wav`` the clip's audio
as 16 kHz mono wav, ``workdir`` an empty folder the adapter may fill (avatar, intermediates),
``options`` a :class:`PipelineOptions`, and the returned mp4 has one frame per 40 ms of audio at the
clip's frame size. Add one with :func:`register_pipeline`.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from talkingface.errors import UserInputError
from talkingface.eval.baselines import audio_model_row, energy_baseline, write_static_mouth_video
from talkingface.eval.metrics import Reference, compare_videos
from talkingface.eval.report import ClipResult
from talkingface.eval.tracking import track_video
from talkingface.products import PRODUCTS, Product
from talkingface.util.media import PathLike, expand_inputs, extract_audio, list_videos, load_audio, probe_video

log = logging.getLogger(__name__)

AVATAR_SOURCES = ("neutral", "clip")


@dataclass(frozen=True)
class PipelineOptions:
    """What a pipeline adapter may be told; None means the pipeline's own default."""

    device: str = "cpu"
    checkpoint: Optional[Path] = None  # the renderer's checkpoint
    audio_checkpoint: Optional[Path] = None  # the audio model's checkpoint
    progress: bool = True


PipelineFn = Callable[[Path, Path, Path, PipelineOptions], Path]


def product_audio_default(product: Product) -> Callable[[], Optional[Path]]:
    """The shipped audio checkpoint a product runs by default (None when absent)."""
    def find() -> Optional[Path]:
        # Lazy: audio_loader loads torch, and `python -m talkingface.eval --help` lists this registry.
        from talkingface.audio_loader import find_audio_checkpoint

        try:
            return find_audio_checkpoint(product.audio_target)
        except UserInputError:
            return None
    return find


@dataclass(frozen=True)
class Pipeline:
    name: str
    fn: PipelineFn
    description: str
    audio_default: Callable[[], Optional[Path]]  # the audio model it runs by default


PIPELINES: Dict[str, Pipeline] = {}


def register_pipeline(name: str, description: str, audio_default: Callable[[], Optional[Path]],
                      ) -> Callable[[PipelineFn], PipelineFn]:
    """Decorator adding ``fn(clip, wav, workdir, options) -> generated mp4`` under ``name``.

    audio_default: returns the audio checkpoint the pipeline uses when none is given (scored as
    the ``audio-lin`` reference row).
    """
    def deco(fn: PipelineFn) -> PipelineFn:
        PIPELINES[name] = Pipeline(name, fn, description, audio_default)
        return fn
    return deco


def get_pipeline(name: str) -> Pipeline:
    if name not in PIPELINES:
        raise UserInputError(f"unknown pipeline {name!r}; choose from {', '.join(sorted(PIPELINES))}")
    return PIPELINES[name]


# ------------------------------------------------------------------------------------- adapters
def product_adapter(product: Product, out_name: str, **synth_options) -> PipelineFn:
    """A product of :mod:`talkingface.products` run as its scripts would: ``prepare_avatar`` on the
    avatar video, then ``synthesize`` with the clip's audio (``synth_options`` passed through)."""
    def run(avatar_video: Path, wav: Path, workdir: Path, options: PipelineOptions) -> Path:
        pipeline = product.pipeline()
        avatar = pipeline.prepare_avatar(avatar_video, workdir / "avatar", render_checkpoint=options.checkpoint,
                                         device=options.device, progress=options.progress)
        out = workdir / out_name
        pipeline.synthesize(avatar, wav, out, render_checkpoint=options.checkpoint,
                            audio_checkpoint=options.audio_checkpoint, device=options.device,
                            progress=options.progress, **synth_options)
        return out
    return run


@register_pipeline("static", "no model: only the baselines (static mouth, energy, audio read-out)",
                   audio_default=product_audio_default(PRODUCTS["mini"]))
def _static_pipeline(avatar_video: Path, wav: Path, workdir: Path, options: PipelineOptions) -> Path:
    return avatar_video  # the avatar unchanged: with the neutral avatar, the static-mouth baseline itself


for _product in PRODUCTS.values():  # every product: data preparation + offline synthesis of its scripts
    register_pipeline(_product.name, _product.description, product_audio_default(_product))(
        product_adapter(_product, f"{_product.name}.mp4"))
register_pipeline("mini-warp", "DH_live_mini without the network (GL warp only, demo_mini --warp_only)",
                  product_audio_default(PRODUCTS["mini"]))(
    product_adapter(PRODUCTS["mini"], "mini_warp.mp4", use_network=False))


# ----------------------------------------------------------------------------------------- runner


def list_clips(paths: List[PathLike]) -> List[Path]:
    """Expand folders into their video files (sorted, not recursive); files are kept as given."""
    return expand_inputs(paths, list_videos, recursive=False, what="video clip")


def selfrecon(clip: PathLike, pipeline: str, workdir: Optional[PathLike] = None,
              options: PipelineOptions = PipelineOptions(), audio_readout: Optional[PathLike] = None,
              avatar_source: str = "neutral") -> ClipResult:
    """Run ``pipeline`` on ``clip`` driven by its own audio; score it and both baselines.

    workdir: where the avatar and generated videos go (kept); a temporary folder when None.
    avatar_source: ``neutral`` (the static-mouth video of the clip, default) or ``clip`` (raw).
    audio_readout: also score the linear read-out of this audio checkpoint (row ``audio-lin``).
    Returns rows ``[pipeline, "static", "energy"(, "audio-lin")]`` (``static`` once when it is the
    pipeline).
    """
    clip = Path(clip)
    pipe = get_pipeline(pipeline)
    if avatar_source not in AVATAR_SOURCES:
        raise UserInputError(f"unknown avatar source {avatar_source!r}; choose from {', '.join(AVATAR_SOURCES)}")
    if not probe_video(clip).has_audio:
        raise UserInputError(f"{clip}: no audio track; self-reconstruction needs a clip with its own speech")
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="selfrecon_") as tmp:
            return selfrecon(clip, pipeline, tmp, options, audio_readout, avatar_source)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    wav = extract_audio(clip, work / "audio.wav")
    progress = options.progress
    ref = Reference.from_track(track_video(clip, progress=progress))
    if ref.track.failures == ref.track.n_frames:
        raise UserInputError(f"{clip}: no face found in any frame")

    static = write_static_mouth_video(clip, ref, work / "static.mp4")
    rows = []
    generated = None
    if pipe.name != "static":
        pipe_dir = work / pipe.name
        pipe_dir.mkdir(exist_ok=True)
        log.info("%s: running pipeline %s on the %s avatar", clip.name, pipe.name, avatar_source)
        generated = pipe.fn(static if avatar_source == "neutral" else clip, wav, pipe_dir, options)
        method = pipe.name if avatar_source == "neutral" else f"{pipe.name}@raw-avatar"
        rows.append(compare_videos(generated, clip, method=method, ref=ref, progress=progress))
    rows.append(compare_videos(static, clip, method="static", ref=ref, progress=progress))
    audio = load_audio(wav)
    rows.append(energy_baseline(ref, audio))
    if audio_readout is not None:
        rows.append(audio_model_row(ref, audio, audio_readout, options.device))
    return ClipResult(clip=clip.name, kind="selfrecon", pipeline=pipe.name, gt=str(clip),
                      pred=str(generated) if generated is not None else None, rows=rows)
