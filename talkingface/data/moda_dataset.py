"""Training windows and targets of MODA from clip records (:mod:`talkingface.data.moda_clips`).

Targets are deltas from the clip's (= subject's) means, per frame:
lip (120) and eye (180) canonical px; head (7) = yaw, pitch, roll deltas (deg), anchor deltas times
the subject's mean scale (canonical px, so clips of any resolution share one unit) and the scale
delta divided by the mean scale (relative); torso (54) canonical px. They are standardised per
dimension by training-set statistics (:class:`TargetStats`). The subject input is the subject's
mean mesh minus the canonical mean face, / 10 (1434).

A window (T frames) carries masks: ``valid`` (T,) frames inside the clip (shorter clips are padded,
never stretched), and per-sample ``lip``/``eye``/``head``/``torso`` masks by source: speech
pseudo-labels train only the lips; silent clips (``has_audio`` False, read with the no-audio token)
train eyes and head; audio-visual clips train all but the torso (no-torso mode).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from talkingface.config.moda import MODAConfig
from talkingface.data.moda_clips import ClipRecord, subject_means
from talkingface.moda_geometry import EYES, LIPS, canonical_mean_face
from talkingface.models.moda import moda_fbank

SUBJECT_SCALE = 10.0
HEADS = ("lip", "eye", "head", "torso")


def subject_vector(mean_dense: np.ndarray) -> np.ndarray:
    """Mean mesh (478, 3) canonical px -> network subject input (1434,) float32."""
    return ((np.asarray(mean_dense) - canonical_mean_face()) / SUBJECT_SCALE).reshape(-1).astype(np.float32)


def head_targets(head7: np.ndarray, mean_head7: np.ndarray) -> np.ndarray:
    """Head pose (N, 7) -> deltas (N, 7) in resolution-free units (see the module docstring)."""
    d = np.asarray(head7, np.float64) - mean_head7
    s = mean_head7[6] if mean_head7[6] > 0 else 1.0
    d[:, 3:6] *= s
    d[:, 6] /= s
    return d


def head_from_targets(delta: np.ndarray, mean_head7: np.ndarray) -> np.ndarray:
    """Inverse of :func:`head_targets`: deltas (N, 7) + the subject's mean -> head pose (N, 7)."""
    d = np.array(delta, np.float64, copy=True)
    s = mean_head7[6] if mean_head7[6] > 0 else 1.0
    d[:, 3:6] /= s
    d[:, 6] *= s
    return d + mean_head7


@dataclass
class PreparedClip:
    """A record turned into network-ready arrays (all float32)."""

    name: str
    fbank: np.ndarray  # (4N, 80), zeros without audio
    targets: Dict[str, np.ndarray]  # lip (N,120), eye (N,180), head (N,7), torso (N,54)
    masks: Dict[str, bool]
    subject: np.ndarray  # (1434,)
    has_audio: bool
    n: int


def prepare(rec: ClipRecord, cfg: MODAConfig = MODAConfig()) -> PreparedClip:
    means = subject_means(rec)
    dense = rec.dense.astype(np.float64) - means["dense"]
    n = rec.n_frames
    tg = {"lip": dense[:, LIPS].reshape(n, -1), "eye": dense[:, EYES].reshape(n, -1),
          "head": head_targets(rec.head7, means["head7"]),
          "torso": (rec.torso.astype(np.float64) - means["torso"]).reshape(n, -1)}
    masks = {"lip": rec.has_audio, "eye": not rec.lip_only, "head": not rec.lip_only,
             "torso": bool(rec.torso_valid and not rec.lip_only)}
    fb = moda_fbank(rec.audio, n, cfg) if rec.has_audio else np.zeros((cfg.fbank_per_frame * n, cfg.n_mels), np.float32)
    return PreparedClip(rec.name, fb, {k: v.astype(np.float32) for k, v in tg.items()}, masks,
                        subject_vector(means["dense"]), rec.has_audio, n)


@dataclass
class TargetStats:
    """Per-dimension std of each head's targets over the training clips that train that head."""

    std: Dict[str, np.ndarray]

    @classmethod
    def fit(cls, clips: Sequence[PreparedClip]) -> "TargetStats":
        out = {}
        for k in HEADS:
            rows = [c.targets[k] for c in clips if c.masks[k]]
            dim = clips[0].targets[k].shape[1]
            s = np.concatenate(rows).std(0) if rows else np.ones(dim)
            out[k] = np.maximum(s, 1e-3).astype(np.float32)
        return cls(out)

    def to_dict(self) -> dict:
        return {k: v.tolist() for k, v in self.std.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "TargetStats":
        return cls({k: np.asarray(v, np.float32) for k, v in d.items()})


class WindowSampler:
    """Draws batches of windows. Groups: ``speech`` (pseudo-labels), ``av`` (clips with audio and
    face), ``silent`` (face without audio). Each window's group is drawn with ``weights``, its clip
    in proportion to length, its start uniformly."""

    def __init__(self, clips: Sequence[PreparedClip], window: int, weights: Dict[str, float],
                 stats: TargetStats, cfg: MODAConfig, audio_dropout: float = 0.0):
        self.window, self.stats, self.cfg, self.audio_dropout = window, stats, cfg, audio_dropout
        groups: Dict[str, List[PreparedClip]] = {"speech": [], "av": [], "silent": []}
        for c in clips:
            key = "speech" if not c.masks["eye"] else ("av" if c.has_audio else "silent")
            groups[key].append(c)
        self.groups = {k: v for k, v in groups.items() if v and weights.get(k, 0) > 0}
        if not self.groups:
            raise ValueError("no training clips for the requested sources")
        w = np.array([weights[k] for k in self.groups], np.float64)
        self.group_p = w / w.sum()

    def sample(self, rng: np.random.Generator, batch: int,
               subject_jitter: float = 0.0) -> Dict[str, np.ndarray]:
        t, cfg = self.window, self.cfg
        keys = list(self.groups)
        out = {k: np.zeros((batch, t, self.stats.std[k].size), np.float32) for k in HEADS}
        out.update(fbank=np.zeros((batch, cfg.fbank_per_frame * t, cfg.n_mels), np.float32),
                   valid=np.zeros((batch, t), bool), has_audio=np.zeros(batch, bool),
                   subject=np.zeros((batch, cfg.n_vertices * 3), np.float32))
        for k in HEADS:
            out[f"mask_{k}"] = np.zeros(batch, np.float32)
        for b in range(batch):
            clips = self.groups[keys[rng.choice(len(keys), p=self.group_p)]]
            lens = np.array([c.n for c in clips], np.float64)
            c = clips[rng.choice(len(clips), p=lens / lens.sum())]
            s = int(rng.integers(0, max(c.n - t, 0) + 1))
            m = min(t, c.n - s)
            out["valid"][b, :m] = True
            for k in HEADS:
                out[k][b, :m] = c.targets[k][s:s + m] / self.stats.std[k]
                out[f"mask_{k}"][b] = float(c.masks[k])
            audio = c.has_audio and not (c.masks["eye"] and rng.random() < self.audio_dropout)
            if audio:
                f = cfg.fbank_per_frame
                out["fbank"][b, : f * m] = c.fbank[f * s: f * (s + m)]
            else:
                out["mask_lip"][b] = 0.0
            out["has_audio"][b] = audio
            subj = c.subject
            if subject_jitter > 0:
                subj = subj + rng.normal(0, subject_jitter / SUBJECT_SCALE, subj.shape).astype(np.float32)
            out["subject"][b] = subj
        return out


def full_clip_batch(c: PreparedClip, cfg: MODAConfig, subject: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """One whole clip as a batch of 1 (for validation and inference)."""
    return {"fbank": c.fbank[None], "subject": (c.subject if subject is None else subject)[None],
            "valid": np.ones((1, c.n), bool), "has_audio": np.array([c.has_audio])}
