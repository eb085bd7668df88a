"""Cross-half protocol: a clip's first half is the avatar, its second half's speech drives it.

For a real talking clip of at least :data:`MIN_SECONDS` (25 fps, N frames, h = N // 2; a clip
longer than 2 x :data:`MAX_HALF_SECONDS` is cut to that first):

- the first half (frames ``[0, h)``), with its sound removed, is the avatar video, prepared by the
  pipeline as a new user's video would be (for ``mini``: data_preparation_mini + data_preparation_web,
  then demo_mini);
- the second half's speech (samples ``[640 h, 640 N)``) drives the pipeline;
- the output (``N - h`` frames; the real second half is written without sound) is compared with the real second half: mouth opening (inner-lip
  gap / eye distance from the face mesh) Pearson r at lag 0, the best r over lags -5..+5 and that
  lag (> 0: the generated mouth moves later than the real one), amplitude (std ratio).

No frame of the test half reaches the avatar, so the real mouth cannot leak into the output (the
self-reconstruction protocol of :mod:`talkingface.eval.selfrecon` needs a neutralised avatar for
that). Reference rows on the same frames, without rendering:

- ``audio-ours``: the pipeline's audio model alone: its coefficient 0 decoded through the
  blendshape basis to a mouth opening (so the amplitude is in the same units as the real one);
- ``audio-original``: the original DH_live audio model's coefficient 0 (its mouth-image PCA; read
  only at evaluation time), r and lag only;
- ``energy``: the in-sample linear fit of per-frame log energy (a floor).

The real halves, their tracks and the audio cut are cached in the clip's work folder
(``<workdir>/<clip>/``), keyed by the source file's size and modification time. The per-frame opening
series each row was scored on are kept there too (``series.<pipeline>.npz``: ``real`` and one array per
row), so a later reading (e.g. :func:`shifted_row`, the real half moved by a clip's known audio/video
offset) needs no rendering or tracking.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Optional

import numpy as np

from talkingface.audio_model import AudioModel
from talkingface.errors import UserInputError
from talkingface.eval import mouth_quality
from talkingface.eval.baselines import energy_baseline
from talkingface.eval.metrics import (MetricRow, Reference, amplitude_ratio, best_offset, compare_videos, pearson)
from talkingface.eval.report import ClipResult
from talkingface.eval.selfrecon import PipelineOptions, get_pipeline
from talkingface.eval.tracking import VideoTrack, track_video
from talkingface.mouth_basis import BlendshapeBasis
from talkingface.run_utils import load_mean_face
from talkingface.util.files import atomic_write, write_text
from talkingface.util.media import PathLike, VideoWriter, iter_video_frames, load_audio, probe_video, save_wav
from talkingface.utils import mouth_opening

log = logging.getLogger(__name__)

MIN_SECONDS = 8.0
MAX_HALF_SECONDS = 10.0  # longer clips use their first 2 x 10 s (keeps a run over many clips short)
FPS = 25
SAMPLES_PER_FRAME = 640
SILENCE_PEAK = 1e-3  # full scale 1.0: a track whose loudest sample stays below this holds no speech
ORIGINAL_LOOKAHEAD = 4  # the original audio model: LSTM step p predicts frame p - 4


class HalfSplit:
    """The files of one clip's split: ``avatar`` (first half, no sound), ``real`` (second half, with its
    sound), ``wav`` (second half's speech, 16 kHz mono), frame counts ``n_first``/``n_second``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.avatar = folder / "avatar_first_half.mp4"
        self.real = folder / "real_second_half.mp4"
        self.wav = folder / "second_half.wav"
        self.track = folder / "real_second_half.track.npz"
        self.meta = folder / "split.json"
        self.n_first = self.n_second = 0


def split_clip(clip: PathLike, folder: PathLike, max_half_seconds: float = MAX_HALF_SECONDS) -> HalfSplit:
    """Write (or reuse) the two halves of ``clip`` in ``folder``; raises for clips under 8 s or silent."""
    clip, folder = Path(clip), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    split = HalfSplit(folder)
    st = clip.stat()
    key = {"source": str(clip.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
           "max_half_seconds": max_half_seconds}
    if split.meta.is_file():
        meta = json.loads(split.meta.read_text())
        if meta.get("key") == key and split.avatar.is_file() and split.real.is_file() and split.wav.is_file():
            split.n_first, split.n_second = meta["n_first"], meta["n_second"]
            return split
    split.track.unlink(missing_ok=True)  # a new split: its real half must be tracked again
    if not probe_video(clip).has_audio:
        raise UserInputError(f"{clip}: no audio track; the cross-half protocol needs the clip's own speech")
    audio = load_audio(clip)
    if float(np.abs(audio).max()) < SILENCE_PEAK:
        raise UserInputError(f"{clip}: the audio track is silent (peak {float(np.abs(audio).max()):.1e}); "
                             "nothing to lip-sync to")
    n_audio = int(math.ceil(audio.size / SAMPLES_PER_FRAME))
    if n_audio < MIN_SECONDS * FPS:
        raise UserInputError(f"{clip}: {audio.size / 16000:.1f} s of audio; the cross-half protocol needs "
                             f">= {MIN_SECONDS:g} s")
    n_audio = min(n_audio, int(round(2 * max_half_seconds * FPS)))
    h = n_audio // 2  # the cut is decided by the audio length (the video may run a little longer)
    n = 0
    with VideoWriter(split.avatar) as first, VideoWriter(split.real) as second:
        for i, frame in enumerate(iter_video_frames(clip)):
            if i >= n_audio:
                break
            (first if i < h else second).write(frame)
            n = i + 1
    if n < MIN_SECONDS * FPS:
        raise UserInputError(f"{clip}: {n / FPS:.1f} s of video; the cross-half protocol needs >= {MIN_SECONDS:g} s")
    split.n_first, split.n_second = h, n - h
    save_wav(split.wav, audio[h * SAMPLES_PER_FRAME: n * SAMPLES_PER_FRAME])
    write_text(split.meta, json.dumps({"key": key, "n_first": split.n_first, "n_second": split.n_second}))
    return split


def real_track(split: HalfSplit, progress: bool = False) -> VideoTrack:
    """The face-mesh track of the real second half (cached as npz beside it)."""
    if split.track.is_file():
        with np.load(split.track) as d:
            return VideoTrack(points=d["points"], size=(int(d["size"][0]), int(d["size"][1])))
    track = track_video(split.real, progress=progress)
    with atomic_write(split.track) as tmp:
        np.savez_compressed(tmp, points=track.points, size=np.array(track.size))
    return track


def coefficient_opening(coefs: np.ndarray, basis: BlendshapeBasis) -> np.ndarray:
    """Mouth opening (inner-lip gap / eye distance) of the mean face moved by blendshape ``coefs`` (N, 6)."""
    face = np.repeat(load_mean_face()[None, :478].astype(np.float64), len(coefs), axis=0)
    face[:, basis.landmark_ids] = basis.decode(coefs)
    return mouth_opening(face)


def series_row(method: str, pred: np.ndarray, ref: Reference, with_amplitude: bool,
               series: Optional[dict] = None) -> MetricRow:
    """Score a per-frame predicted opening series (no landmarks, no images) against the real one."""
    n = min(len(pred), ref.track.n_frames)
    pred, gt = np.asarray(pred[:n], np.float64), ref.opening[:n]
    if series is not None:
        series[method] = pred
    lag, r_best = best_offset(pred, gt)
    return MetricRow(method=method, n_frames=n, r=pearson(pred, gt), offset=lag, r_offset=r_best, lmd=math.nan,
                     amp=amplitude_ratio(pred, gt) if with_amplitude else math.nan,
                     fail_gt=int((~ref.track.valid[:n]).sum()))


def audio_rows(wav: np.ndarray, ref: Reference, ours: Optional[Path], basis: Optional[BlendshapeBasis],
               original: Optional[Path], series: Optional[dict] = None) -> list:
    """``audio-ours`` (our audio model alone) and ``audio-original`` rows on the second half's speech;
    each predicted series is also put in ``series`` (by row name) when given."""
    rows = []
    if ours is not None and basis is not None:
        coefs = AudioModel(ours).interface_wav(wav)
        rows.append(series_row("audio-ours", coefficient_opening(coefs, basis), ref, with_amplitude=True,
                               series=series))
    if original is not None:
        c0 = AudioModel(original, lookahead_steps=ORIGINAL_LOOKAHEAD).interface_wav(wav)[:, 0]
        rows.append(series_row("audio-original", c0, ref, with_amplitude=False, series=series))
    return rows


def shift_real(gt: np.ndarray, picture_late: int) -> np.ndarray:
    """The real opening series with its picture moved ``picture_late`` frames earlier (NaN fills the end;
    a negative value moves it later): ``out[t] = gt[t + picture_late]``. For a clip whose picture is
    ``picture_late`` frames behind its own sound (``best_lag`` of ``av_more/SYNC_CHECK.tsv``)."""
    gt = np.asarray(gt, np.float64)
    out = np.full_like(gt, np.nan)
    k = int(picture_late)
    if k >= 0:
        out[:len(gt) - k] = gt[k:]
    else:
        out[-k:] = gt[:len(gt) + k]
    return out


def shifted_row(method: str, pred: np.ndarray, gt: np.ndarray, picture_late: int, with_amplitude: bool) -> MetricRow:
    """A row scored against the real series moved by the clip's own audio/video offset
    (:func:`shift_real`): an extra reading beside the raw row, never the protocol's row."""
    n = min(len(pred), len(gt))
    pred, real = np.asarray(pred[:n], np.float64), shift_real(gt[:n], picture_late)
    lag, r_best = best_offset(pred, real)
    return MetricRow(method=f"{method} (real shifted {int(picture_late):+d})", n_frames=int(np.isfinite(real).sum()),
                     r=pearson(pred, real), offset=lag, r_offset=r_best, lmd=math.nan,
                     amp=amplitude_ratio(pred, real) if with_amplitude else math.nan,
                     fail_gt=int((~np.isfinite(real)).sum()))


def mouth_looks(generated: Path, real: Path, ref: Reference) -> dict:
    """Mouth sharpness (generated / real) and teeth visibility (share of open-mouth frames showing
    teeth, generated and real) of :mod:`talkingface.eval.mouth_quality`, on the same frames."""
    gen_track = track_video(generated, size=ref.track.size, progress=False)  # cached by compare_videos
    n = min(gen_track.n_frames, ref.track.n_frames)
    gen = mouth_quality.summarize(mouth_quality.measure_frames(iter_video_frames(generated, max_frames=n),
                                                               gen_track.points[:n]))
    real_ = mouth_quality.summarize(mouth_quality.measure_frames(iter_video_frames(real, max_frames=n),
                                                                 ref.track.points[:n]))
    c = mouth_quality.compare(gen, real_)
    out = {"sharpness": c["sharpness_ratio"], "teeth_rate": c["teeth_rate"], "teeth_rate_real": c["teeth_rate_real"]}
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in out.items()}


def crosshalf(clip: PathLike, pipeline: str, workdir: PathLike, options: PipelineOptions = PipelineOptions(),
              audio_ours: Optional[Path] = None, basis: Optional[BlendshapeBasis] = None,
              original: Optional[Path] = None) -> ClipResult:
    """Run the cross-half protocol on one clip; rows ``[pipeline, audio-ours, audio-original, energy]``.

    workdir: the clip's own folder (split, track, avatar and output are kept there).
    audio_ours: the audio checkpoint the pipeline runs (scored alone as ``audio-ours``, decoded with
    ``basis``); original: the original's audio model (``audio-original``); either may be None.
    """
    clip, work = Path(clip), Path(workdir)
    pipe = get_pipeline(pipeline)
    split = split_clip(clip, work)
    ref = Reference.from_track(real_track(split, options.progress))
    if ref.track.failures == ref.track.n_frames:
        raise UserInputError(f"{clip}: no face found in the second half")
    wav = load_audio(split.wav)
    rows, generated = [], None
    series = {"real": ref.opening}
    if pipe.name != "static":
        out_dir = work / pipe.name
        out_dir.mkdir(exist_ok=True)
        log.info("%s: %s avatar from the first half (%d frames), driven by the second half (%d frames)",
                 clip.name, pipe.name, split.n_first, split.n_second)
        generated = pipe.fn(split.avatar, split.wav, out_dir, options)
        row = compare_videos(generated, split.real, method=pipe.name, ref=ref, progress=options.progress)
        row.extra.update(mouth_looks(generated, split.real, ref))
        rows.append(row)
        series[pipe.name] = mouth_opening(track_video(generated, size=ref.track.size, progress=False).points)
    rows += audio_rows(wav, ref, audio_ours, basis, original, series)
    rows.append(energy_baseline(ref, wav))
    with atomic_write(work / f"series.{pipe.name}.npz") as tmp:
        np.savez_compressed(tmp, **series)
    return ClipResult(clip=clip.name, kind="crosshalf", pipeline=pipe.name, gt=str(clip),
                      pred=str(generated) if generated is not None else None, rows=rows)


def acceptance_markdown(results) -> str:
    """Per method over the clips: mean r at lag 0, mean best-lag r, share of clips with |best lag| <= 1,
    the lags, and the mean amplitude (the figures issue-style acceptance reads)."""
    by_method: dict = {}
    for res in results:
        for row in res.rows:
            by_method.setdefault(row.method, []).append(row)
    lines = ["| method | clips | mean r at lag 0 | mean best-lag r | abs(lag) <= 1 | lags (> 0: late) | mean amplitude "
             "| sharpness gen/real | teeth rate gen / real |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for method, rows in by_method.items():
        ok = [r for r in rows if not math.isnan(r.r_offset)]
        amps = [r.amp for r in rows if not math.isnan(r.amp)]
        lags = ", ".join(f"{r.offset:+d}" for r in ok)
        share = np.mean([abs(r.offset) <= 1 for r in ok]) if ok else math.nan
        looks = [_mean_extra(rows, k) for k in ("sharpness", "teeth_rate", "teeth_rate_real")]
        lines.append(f"| {method} | {len(rows)} | {np.nanmean([r.r for r in rows]):.3f} | "
                     f"{np.mean([r.r_offset for r in ok]) if ok else math.nan:.3f} | {share:.0%} | {lags} | "
                     + (f"{np.mean(amps):.2f} | " if amps else "– | ")
                     + (f"{looks[0]:.2f} | {looks[1]:.2f} / {looks[2]:.2f} |" if np.isfinite(looks[0]) else "– | – |"))
    return "\n".join(lines)


def _mean_extra(rows, key: str) -> float:
    vals = [r.extra[key] for r in rows if r.extra.get(key) is not None and np.isfinite(r.extra[key])]
    return float(np.mean(vals)) if vals else math.nan
