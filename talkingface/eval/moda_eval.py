"""MODA-lite on held-out people, landmark level (docs/MODA.md, "Evaluation").

Per clip (its own audio; subject = the clip's mean canonical mesh and mean head pose):

- lips: MODA's lips placed into each real frame with the real head pose (so pose errors do not
  enter), scored with :func:`talkingface.eval.metrics.score_prediction` (mouth-opening r at lag 0
  and best lag, lag, LMD in 256-px crop units, amplitude), beside ``lstm-basis`` (the shipped LSTM's
  6 coefficients through the blendshape basis, the same units and placement: the distillation
  teacher), ``audio-lin`` (in-sample linear read-out of the same LSTM) and ``energy``;
- eyes: blink rate / duration of the predicted (FaCo) face vs the real clip;
- head: per-axis pose std (deg) of each seed vs the real clip, diversity across seeds;
- seeds: lip difference between seeds 0 and 1 (mean over frames of the max |delta| over the 40 lips,
  canonical px) and head difference (deg, RMS);
- FaCo: dense error by region against the mean+paste baseline on the clip's real lips and eyes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from talkingface.audio_model import AudioModel
from talkingface.config.moda import BASIS_PATH, TEACHER_CHECKPOINT
from talkingface.data.moda_clips import ClipRecord, subject_means
from talkingface.data.moda_dataset import head_from_targets
from talkingface.eval.baselines import audio_model_row, energy_baseline
from talkingface.eval.metrics import MetricRow, Reference, lip_points, score_prediction
from talkingface.eval.motion import blink_stats, dense_error_table, pose_diversity, pose_spread
from talkingface.eval.tracking import VideoTrack
from talkingface.moda_geometry import LIPS, from_canonical, mean_face_to_canonical
from talkingface.moda_pipeline import FaCoPredictor, MODAPredictor, Subject, paste_dense
from talkingface.moda_training import faco_rows
from talkingface.mouth_basis import BlendshapeBasis
from talkingface.utils import mouth_opening

log = logging.getLogger(__name__)


def _lip_row(method: str, ref: Reference, rec: ClipRecord, lips_canon: np.ndarray) -> MetricRow:
    """Place canonical lips (N, 40, 3) into the real frames and score them."""
    dense = rec.dense.astype(np.float64).copy()
    n = min(len(dense), len(lips_canon))
    dense = dense[:n]
    dense[:, LIPS] = lips_canon[:n]
    pts = from_canonical(dense, rec.head7[:n])
    return score_prediction(method, ref, mouth_opening(pts), lip_points(pts, ref.boxes[:n]))


def teacher_lips(audio: np.ndarray, n: int, mean_lips: np.ndarray, teacher: AudioModel,
                 basis: BlendshapeBasis) -> np.ndarray:
    """The LSTM teacher's lips (n, 40, 3) canonical: basis shapes' deltas from their mean + the subject's."""
    coefs = teacher.interface_wav(audio)
    if len(coefs) < n:
        coefs = np.pad(coefs, ((0, n - len(coefs)), (0, 0)), mode="edge")
    full = np.zeros((n, 478, 3))
    full[:, basis.landmark_ids] = basis.decode(coefs[:n])
    lips = mean_face_to_canonical(full)[:, LIPS]
    return lips - lips.mean(0) + mean_lips


def sample_motion(rec: ClipRecord, moda: MODAPredictor, faco: Optional[FaCoPredictor], seeds: Sequence[int]) -> dict:
    """MODA's motion for the clip's own audio and mean face, one prior draw per seed: ``means``
    (:func:`subject_means`), ``motions`` (per seed, target units), ``heads`` (per seed, (N, 7) head pose) and
    ``blinks`` (per seed, :func:`blink_stats` of the dense face: FaCo-Net's, or the mean face with lips and
    eyes pasted in when ``faco`` is None)."""
    means = subject_means(rec)
    subject = Subject(means["dense"], means["head7"])
    out: dict = {"means": means, "motions": [], "heads": [], "blinks": []}
    for s in seeds:
        m = moda.predict(rec.audio, subject, seed=s, n_frames=rec.n_frames)
        dense = faco.dense(m["lip"], m["eye"], subject) if faco else paste_dense(m["lip"], m["eye"], subject)
        out["motions"].append(m)
        out["heads"].append(head_from_targets(m["head"], means["head7"]))
        out["blinks"].append(blink_stats(dense))
    return out


def evaluate_clip(rec: ClipRecord, moda: MODAPredictor, faco: Optional[FaCoPredictor], seeds: Sequence[int],
                  teacher: AudioModel, basis: BlendshapeBasis, teacher_path: Path) -> dict:
    sampled = sample_motion(rec, moda, faco, seeds)
    means, motions, heads = sampled["means"], sampled["motions"], sampled["heads"]
    n = rec.n_frames
    real_pts = from_canonical(rec.dense.astype(np.float64), rec.head7)
    ref = Reference.from_track(VideoTrack(real_pts, (0, 0)))
    rows: List[MetricRow] = [_lip_row(f"moda-lite/seed{s}", ref, rec, means["dense"][LIPS] + m["lip"].reshape(n, 40, 3))
                             for s, m in zip(seeds, motions)]
    rows.append(_lip_row("lstm-basis", ref, rec, teacher_lips(rec.audio, n, means["dense"][LIPS], teacher, basis)))
    rows.append(audio_model_row(ref, rec.audio, teacher_path))
    rows.append(energy_baseline(ref, rec.audio))
    out = {"clip": rec.source, "frames": n, "rows": [r.to_dict() for r in rows],
           "blinks_real": blink_stats(rec.dense), "blinks_pred": sampled["blinks"],
           "pose_std_real": pose_spread(rec.head7), "pose_std_pred": [pose_spread(h) for h in heads],
           "pose_diversity_deg": pose_diversity(heads)}
    if len(motions) > 1:
        d = np.abs(motions[0]["lip"] - motions[1]["lip"]).reshape(n, 40, 3).max(axis=(1, 2))
        out["lip_seed_diff_px"] = float(d.mean())
    if faco is not None:
        rows_f = faco_rows([rec])
        out["faco_dense_px"] = dense_error_table(faco.net, rows_f, rows_f)
    return out


def evaluate(records: Sequence[ClipRecord], moda_path: Path, faco_path: Optional[Path], seeds: Sequence[int],
             teacher_path: Path = TEACHER_CHECKPOINT) -> Dict:
    moda = MODAPredictor(moda_path)
    faco = FaCoPredictor(faco_path) if faco_path else None
    teacher, basis = AudioModel(teacher_path), BlendshapeBasis.load(BASIS_PATH)
    clips = []
    for rec in records:
        if not rec.has_audio or rec.lip_only:
            log.warning("%s: needs a face and audio; skipped", rec.name)
            continue
        clips.append(evaluate_clip(rec, moda, faco, seeds, teacher, basis, teacher_path))
        log.info("%s done", rec.name)
    return {"clips": clips, "summary": summarize(clips), "moda": str(moda_path), "faco": str(faco_path)}


def _mean(vals) -> float:
    v = [x for x in vals if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def summarize(clips: Sequence[dict]) -> Dict[str, Dict[str, float]]:
    """Means over clips: per method r, best-lag r, |lag|, LMD, amplitude; eyes, head and seed numbers."""
    methods: Dict[str, list] = {}
    for c in clips:
        for r in c["rows"]:
            key = "moda-lite" if r["method"].startswith("moda-lite") else r["method"]
            methods.setdefault(key, []).append(r)
    out: Dict[str, Dict[str, float]] = {}
    for k, rows in methods.items():
        out[k] = {"r": _mean(r["r"] for r in rows), "r_best": _mean(r["r_offset"] for r in rows),
                  "abs_lag": _mean(abs(r["offset"]) for r in rows), "lag": _mean(r["offset"] for r in rows),
                  "lmd": _mean(r["lmd"] for r in rows), "amp": _mean(r["amp"] for r in rows)}
    real_rate = _mean(c["blinks_real"]["blinks_per_min"] for c in clips)
    pred_rate = _mean(b["blinks_per_min"] for c in clips for b in c["blinks_pred"])
    out["eyes"] = {"blinks_per_min_real": real_rate, "blinks_per_min_pred": pred_rate,
                   "blink_frames_real": _mean(c["blinks_real"]["blink_frames"] for c in clips),
                   "blink_frames_pred": _mean(b["blink_frames"] for c in clips for b in c["blinks_pred"])}
    head = {}
    for axis in ("yaw", "pitch", "roll"):
        real = _mean(c["pose_std_real"][axis] for c in clips)
        pred = _mean(p[axis] for c in clips for p in c["pose_std_pred"])
        head.update({f"{axis}_std_real": real, f"{axis}_std_pred": pred, f"{axis}_ratio": pred / real})
    head["diversity_deg"] = _mean(c["pose_diversity_deg"] for c in clips)
    head["lip_seed_diff_px"] = _mean(c.get("lip_seed_diff_px") for c in clips)
    out["head_and_seeds"] = head
    if clips and "faco_dense_px" in clips[0]:
        out["faco_dense_px"] = {m: {reg: _mean(c["faco_dense_px"][m][reg] for c in clips)
                                    for reg in ("jaw", "cheeks", "all376")}
                                for m in ("faco", "mean+paste")}
    return out


def markdown(result: Dict) -> str:
    s = result["summary"]
    lines = [f"MODA-lite evaluation: {len(result['clips'])} held-out clips; model `{result['moda']}`", "",
             "| method | r@0 | r@best | mean lag | mean abs lag | LMD px | amplitude |", "|---|---|---|---|---|---|---|"]
    for k, v in s.items():
        if "r" in v:
            lines.append(f"| {k} | {v['r']:.3f} | {v['r_best']:.3f} | {v['lag']:+.2f} | {v['abs_lag']:.2f} | "
                         f"{v['lmd']:.2f} | {v['amp']:.2f} |")
    for sect in ("eyes", "head_and_seeds", "faco_dense_px"):
        if sect in s:
            lines += ["", f"{sect}: " + ", ".join(f"{k} {v if isinstance(v, dict) else round(v, 3)}"
                                                  for k, v in s[sect].items())]
    return "\n".join(lines)
