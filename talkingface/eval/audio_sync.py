"""Audio-model lip-sync check on real clips, without rendering: predicted vs measured mouth opening.

Truth per frame is the first blendshape coefficient (jaw/lips open-closed) measured by the face
mesh on the real video, against the clip's own neutral shape (:mod:`talkingface.mouth_basis`).
Each predictor maps the clip's audio to one value per frame (an audio model's coefficient 0, or
the log energy of the frame's audio). Scores: Pearson r at lag 0 and the best r over lags
-5..+5 (``pred[t + k]`` vs ``truth[t]``, :func:`talkingface.eval.metrics.best_offset`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np

from talkingface.audio_model import AudioModel
from talkingface.data.av_clips import blendshape_coefficients
from talkingface.eval.baselines import frame_log_energy
from talkingface.eval.metrics import MAX_LAG, best_offset, lagged_r, pearson

Predictor = Callable[[np.ndarray], np.ndarray]  # 16 kHz audio -> (N,) per-frame value


@dataclass
class SyncScore:
    clip: str
    method: str
    frames: int
    r: float
    best_lag: int
    r_best: float


def clip_name(video: Path) -> str:
    """A clip's name in these scores (and its face-mesh cache): ``<folder>__<stem>`` of its video path."""
    return f"{video.parent.name}__{video.stem}"


def score_series(clip: str, method: str, pred: np.ndarray, truth: np.ndarray, max_lag: int = MAX_LAG) -> SyncScore:
    """Score one predicted series against the truth (both cut to the shorter length)."""
    n = min(len(pred), len(truth))
    lag, rb = best_offset(pred[:n], truth[:n], max_lag)
    return SyncScore(clip, method, n, pearson(pred[:n], truth[:n]), lag, rb)


def energy_predictor(audio: np.ndarray) -> np.ndarray:
    """Log energy of each 40 ms frame (the trivial baseline)."""
    return frame_log_energy(audio, int(np.ceil(len(audio) / 640)))


def model_predictor(checkpoint, coef: int = 0, sign: float = 1.0, device: str = "cpu") -> Predictor:
    """Coefficient ``coef`` (times ``sign``) of an audio model's offline output."""
    model = AudioModel(checkpoint, device=device)
    return lambda audio: sign * model.interface_wav(audio)[:, coef]


def evaluate_clips(clips: Sequence, basis, predictors: Dict[str, Predictor]) -> List[SyncScore]:
    """Score every predictor on every clip (:class:`talkingface.data.av_clips.ClipData` with audio)."""
    rows = []
    for clip in clips:
        truth = blendshape_coefficients(clip, basis)[:, 0]
        for name, fn in predictors.items():
            rows.append(score_series(clip.name, name, np.asarray(fn(clip.audio)), truth))
    return rows


def summarize(rows: Sequence[SyncScore]) -> Dict[str, Dict[str, float]]:
    """Per method: mean r, mean best-lag r, the single lag best on average and the mean r there."""
    out = {}
    for method in dict.fromkeys(r.method for r in rows):
        sel = [r for r in rows if r.method == method]
        out[method] = {"clips": len(sel), "frames": int(sum(r.frames for r in sel)),
                       "r": float(np.nanmean([r.r for r in sel])),
                       "r_best": float(np.nanmean([r.r_best for r in sel])),
                       "mean_abs_lag": float(np.mean([abs(r.best_lag) for r in sel]))}
    return out


def common_lag_scores(clips: Sequence, basis, predictors: Dict[str, Predictor], max_lag: int = MAX_LAG
                      ) -> Dict[str, Dict[str, float]]:
    """Per method: the one lag (shared by all clips) maximising the mean r, and that mean r."""
    truths = [blendshape_coefficients(c, basis)[:, 0] for c in clips]
    out = {}
    for name, fn in predictors.items():
        preds = [np.asarray(fn(c.audio)) for c in clips]
        best = max(range(-max_lag, max_lag + 1),
                   key=lambda k: np.nanmean([lagged_r(p[:len(t)], t, k) for p, t in zip(preds, truths)]))
        out[name] = {"lag": best, "r": float(np.nanmean([lagged_r(p[:len(t)], t, best) for p, t in zip(preds, truths)]))}
    return out


def rows_as_dicts(rows: Sequence[SyncScore]) -> List[dict]:
    return [asdict(r) for r in rows]
