"""Train the mini route's audio model on true mouth targets of real videos plus a teacher's speech.

    python train_audio/train_mixed.py --cache CACHE --sync SYNC.tsv --teacher TEACHER.pkl \
        --speech SPEECH_DIR [--speech ...] --basis BASIS.npz --out OUT [--init LSTM.pkl] [--lookahead 4]

Two sources of frame-aligned targets in the blendshape basis (6 coefficients per 40 ms), mixed
in every batch (``--real_share`` of the windows from the first):

1. **Real videos** (``train_audio/cache_clips.py`` cache): the blendshape coefficients measured by
   the face mesh on every frame, against the clip's own neutral shape. Only clips that
   ``train_audio/sync_check.py`` kept or shifted are read, each moved by its measured offset
   (audio frame t pairs with video frame t + shift); held-out people are refused.
2. **Distillation** over a speech corpus (with ``--distill_real`` also over the real training clips' own
   audio): the frozen teacher's outputs on each file (clean + augmented copies), taken at the teacher's
   own lookahead and mapped onto the blendshape basis by a ridge fit from teacher outputs to the
   measured coefficients of the real training clips. ``--speeds`` adds every distillation file played
   faster or slower (relabelled by the teacher; the real-target windows are never resampled).

The student (Audio2Feature, the shipped network shape) learns ``pred[t + L] ~ target[t]`` with
lookahead L = ``--lookahead`` LSTM steps (L1 on standardised targets, Adam, cosine decay), optionally
starting from ``--init``. Afterwards: the per-clip best lag of coefficient 0 against the real mouth
opening on the validation people (a few training-side speakers, never the held-out ones) is
reported, coefficient 0 is rescaled to the measured within-clip amplitude of the training clips, and
``OUT/lstm_blendshape.pkl`` + ``.json`` are written. ``OUT/last.pth`` resumes (``--resume``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from talkingface.audio_model import AudioModel
from talkingface.audio_training import (LSTMTrainConfig, LSTMTrainer, OutputMap, fit_linear, fold_output_map,
                                        match_amplitude)
from talkingface.data.av_clips import ClipData, blendshape_coefficients
from talkingface.data.dataset_wav import FbankWindowDataset, augmented_fbanks
from talkingface.errors import UserInputError
from talkingface.eval.heldout import never_train_on
from talkingface.eval.metrics import best_offset, lagged_r
from talkingface.models.audio2bs_lstm import load_audio2feature
from talkingface.mouth_basis import BlendshapeBasis
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import atomic_write, check_output_dir, write_model_card, write_text
from talkingface.util.media import load_audio
from talkingface.utils import mouth_opening
from train_audio.distill import labelled_fbank, speech_files
from train_audio.sync_check import read_decisions

log = logging.getLogger("train_mixed")

TEACHER_LOOKAHEAD = 4  # the original's audio model: LSTM step p predicts frame p - 4
SAMPLES_PER_FRAME = 640


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("--cache", type=Path, required=True, help="cache_clips.py output folder")
    ap.add_argument("--sync", type=Path, required=True, help="sync_check.py table (per-clip decisions)")
    ap.add_argument("--teacher", type=Path, required=True, help="teacher Audio2Feature state dict")
    ap.add_argument("--speech", type=Path, action="append", required=True, help="folder of speech audio (repeatable)")
    ap.add_argument("--exclude", action="append", default=[], help="speech sub-folder name or glob to skip")
    ap.add_argument("--basis", type=Path, required=True, help="blendshape basis .npz the targets are measured in")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", type=Path, help="start from this Audio2Feature state dict (blendshape outputs)")
    ap.add_argument("--lookahead", type=int, default=4, help="LSTM steps between hearing a frame and predicting it")
    ap.add_argument("--real_share", type=float, default=0.5, help="share of training windows from real videos")
    ap.add_argument("--distill_real", action="store_true",
                    help="also distil the teacher over the real training clips' own audio (added to the speech pool)")
    ap.add_argument("--person_cap_s", type=float, default=60.0,
                    help="a person with more real footage than this is down-weighted to this many seconds")
    ap.add_argument("--val_fraction", type=float, default=0.12, help="share of real people kept for validation")
    ap.add_argument("--variants", type=int, default=3, help="fbank copies per file: clean + augmented")
    ap.add_argument("--speeds", type=float, nargs="+", default=[1.0],
                    help="the teacher also labels every distillation file played at these speeds (tempo and pitch; "
                         "e.g. 0.9 1.0 1.1); the real-target windows are never resampled")
    ap.add_argument("--seq_len", type=int, default=40)
    ap.add_argument("--skip", type=int, default=4, help="window steps left out of the loss (warm-up)")
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max_steps", type=int, default=6000)
    ap.add_argument("--save_every", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pth")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not all(0.5 <= x <= 2.0 for x in args.speeds):
        ap.error(f"--speeds must lie in 0.5..2.0, got {args.speeds}")
    return args


def person_of(rel: str) -> str:
    """Clips of one person share this key (the pieces of one long interview are one person)."""
    stem = Path(rel).stem
    return stem.split("_")[0] if stem.startswith("0000_") else rel


def is_val_person(person: str, fraction: float) -> bool:
    return int(hashlib.md5(person.encode()).hexdigest()[:8], 16) % 10000 < fraction * 10000


def aligned(audio: np.ndarray, coefs: np.ndarray, shift: int):
    """Cut audio (16 kHz) and per-frame rows so that audio frame t pairs with row t + shift."""
    if shift > 0:
        coefs = coefs[shift:]
    elif shift < 0:
        audio = audio[-shift * SAMPLES_PER_FRAME:]
    n = min(len(coefs), int(np.ceil(len(audio) / SAMPLES_PER_FRAME)))
    return audio[: n * SAMPLES_PER_FRAME], coefs[:n]


def load_real(cache: Path, sync: Path, basis: BlendshapeBasis):
    """Real clips allowed by the sync table: list of dicts (name, path, person, shift, audio, bs, opening)."""
    held = never_train_on()
    out = []
    for name, row in sorted(read_decisions(sync).items()):
        if row.decision not in ("keep", "shift"):
            continue
        if row.path in held:
            raise UserInputError(f"{row.path} is held out (talkingface/eval/heldout.py): never train on it")
        with np.load(cache / f"{name}.clip.npz") as d:
            clip = ClipData(name, np.zeros(0, np.float32), d["landmarks"], d["mats"], d["normalized"], d["raw_crops"])
        bs = blendshape_coefficients(clip, basis)
        both = np.concatenate([bs, mouth_opening(clip.normalized)[:, None]], axis=1)
        audio, both = aligned(load_audio(cache / f"{name}.wav"), both, row.shift)
        out.append({"name": name, "path": row.path, "person": person_of(row.path), "shift": row.shift,
                    "audio": audio, "bs": both[:, :6].astype(np.float32), "opening": both[:, 6]})
    if not out:
        raise UserInputError(f"no usable real clip in {sync}")
    return out


def lag_report(model: AudioModel, clips) -> dict:
    """Per clip: r at lag 0 and best lag of coefficient 0 vs the real mouth opening."""
    rows = {}
    for c in clips:
        pred = model.interface_wav(c["audio"])[: len(c["opening"]), 0]
        lag, rb = best_offset(pred, c["opening"])
        rows[c["name"]] = {"r0": round(float(lagged_r(pred, c["opening"], 0)), 3), "best_lag": lag,
                           "r_best": round(float(rb), 3)}
    lags = [v["best_lag"] for v in rows.values()]
    summary = {"clips": len(rows), "mean_r0": round(float(np.mean([v["r0"] for v in rows.values()])), 3),
               "mean_r_best": round(float(np.mean([v["r_best"] for v in rows.values()])), 3),
               "median_lag": float(np.median(lags)), "share_lag_within_1": round(float(np.mean(np.abs(lags) <= 1)), 3)}
    return {"summary": summary, "clips": rows}


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    t_start = time.time()
    check_output_dir(args.out)
    basis = BlendshapeBasis.load(args.basis)
    teacher = load_audio2feature(args.teacher, "cpu")  # a bad teacher fails before the clips load
    real = load_real(args.cache, args.sync, basis)
    train_real = [c for c in real if not is_val_person(c["person"], args.val_fraction)]
    val_real = [c for c in real if is_val_person(c["person"], args.val_fraction)]
    log.info("real clips: %d train (%.0f s), %d validation", len(train_real),
             sum(len(c["bs"]) for c in train_real) / 25, len(val_real))
    # ---- teacher -> blendshape map, fitted on the real training clips (frame-aligned teacher rows)
    teacher_model = AudioModel(args.teacher, lookahead_steps=TEACHER_LOOKAHEAD)
    t_rows = [teacher_model.interface_wav(c["audio"])[: len(c["bs"])] for c in train_real]
    teacher_map = fit_linear(t_rows, [c["bs"] for c in train_real], ridge=1e-2)
    fit_r = [lagged_r(teacher_map(x)[:, 0], c["bs"][:, 0], 0) for x, c in zip(t_rows, train_real)]
    log.info("teacher -> blendshape map: mean r(coef 0) on the training clips %.3f", float(np.nanmean(fit_r)))
    # ---- speech corpus, labelled by the teacher, mapped and frame-aligned
    files = speech_files(args.speech, set(args.exclude))
    if args.distill_real:  # more voices, languages and rooms for the teacher's labels (never a validation clip)
        files += [args.cache / f"{c['name']}.wav" for c in train_real]
    args.out.mkdir(parents=True, exist_ok=True)
    speech = labelled_fbank(files, args.variants, teacher, args.out / "fbank_cache.npz", args.seed, args.speeds)
    speech_fb = [v for v, _ in speech]
    speech_y = [[teacher_map(lab[TEACHER_LOOKAHEAD:]).astype(np.float32) for lab in labs] for _, labs in speech]
    real_fb = [augmented_fbanks(c["audio"], args.variants, seed=args.seed + i) for i, c in enumerate(train_real)]
    n_real = sum(len(c["bs"]) for c in train_real)
    n_speech = sum(len(y[0]) for y in speech_y)
    # one long recording must not dominate the real share: cap each person's total weight
    person_s = {}
    for c in train_real:
        person_s[c["person"]] = person_s.get(c["person"], 0.0) + len(c["bs"]) / 25.0
    cap = [min(1.0, args.person_cap_s / person_s[c["person"]]) for c in train_real]
    n_real_eff = sum(k * len(c["bs"]) for k, c in zip(cap, train_real))
    weights = ([args.real_share * k / n_real_eff for k in cap] + [(1 - args.real_share) / n_speech] * len(speech_y))
    train_set = FbankWindowDataset(real_fb + speech_fb, args.seq_len, coef_list=[c["bs"] for c in train_real] + speech_y,
                                   samples_per_epoch=args.batch_size * 50, weights=weights)
    val_set = None
    if val_real:
        val_fb = [augmented_fbanks(c["audio"], 1) for c in val_real]
        val_set = FbankWindowDataset(val_fb, args.seq_len, coef_list=[c["bs"] for c in val_real],
                                     samples_per_epoch=args.batch_size * 4)
        val_set._rng = np.random.default_rng(args.seed)
    stacked = np.concatenate([c["bs"] for c in train_real])
    mean, std = stacked.mean(0), stacked.std(0) + 1e-6
    init = None
    if args.init is not None and not args.resume:
        # the initial weights give blendshape units; the trainer learns standardised targets
        init = fold_output_map(torch.load(args.init, map_location="cpu", weights_only=True),
                               OutputMap(np.diag(1.0 / std), -mean / std, 0, float("nan")))
    cfg = LSTMTrainConfig(seq_len=args.seq_len, lookahead=args.lookahead, skip=args.skip, batch_size=args.batch_size,
                          lr=args.lr, max_steps=args.max_steps, save_every=args.save_every, val_every=args.save_every,
                          cosine=True, seed=args.seed, device=device, epochs=10 ** 9)
    trainer = LSTMTrainer(cfg, train_set, args.out, val_set=val_set, resume=args.resume, init_state=init,
                          target_norm=(mean, std))
    stats = trainer.run()
    # ---- amplitude of coefficient 0 matched on the training clips; lags measured on validation people
    state = trainer.exported_state()
    raw = args.out / "raw.pkl"
    with atomic_write(raw) as tmp:
        torch.save(state, tmp)
    write_model_card(raw, {"lookahead_steps": args.lookahead, "target": "blendshape"})
    model = AudioModel(raw, lookahead_steps=args.lookahead)
    preds = [model.interface_wav(c["audio"])[: len(c["bs"])] for c in train_real]
    identity = OutputMap(np.eye(6), np.zeros(6), 0, float("nan"))
    amp_map = match_amplitude(identity, preds, [c["bs"] for c in train_real], dims=(0,))
    path = args.out / "lstm_blendshape.pkl"
    with atomic_write(path) as tmp:
        torch.save(fold_output_map(state, amp_map), tmp)
    write_model_card(path, {"lookahead_steps": args.lookahead, "target": "blendshape"})
    val_report = lag_report(AudioModel(path), val_real) if val_real else None
    train_report = lag_report(AudioModel(path), train_real)
    card = {
        "recipe": "true targets + distillation" + (" over the speech corpus and the real training clips' audio"
                                                   if args.distill_real else "") + " (train_audio/train_mixed.py)",
        "teacher": args.teacher.name,
        "target": "blendshape", "basis": "../mouth_basis/blendshape_basis.npz", "lookahead_steps": args.lookahead,
        "sample_rate": 16000,
        "config": {k: str(v) for k, v in vars(args).items()},
        "data": {"real_train": [{"path": c["path"], "shift": c["shift"], "frames": len(c["bs"])} for c in train_real],
                 "real_val": [{"path": c["path"], "shift": c["shift"], "frames": len(c["bs"])} for c in val_real],
                 "sync_decisions": [{"path": r.path, "probe_r_best": r.r_best, "late": r.pool_late if r.pool else r.late,
                                     "decision": r.decision, "reason": r.reason}
                                    for r in sorted(read_decisions(args.sync).values(), key=lambda r: r.path)],
                 "held_out_never_read": sorted(never_train_on()),
                 "speech_dirs": [str(d) for d in args.speech], "speech_excluded": args.exclude,
                 "speech_files": len(files), "speech_seconds": round(n_speech / 25.0, 1),
                 "real_train_seconds": round(n_real / 25.0, 1)},
        "teacher_map_r_coef0": round(float(np.nanmean(fit_r)), 3),
        "amplitude_gain_coef0": round(float(amp_map.A[0, 0]), 3),
        "training": stats, "wall_s_total_this_run": round(time.time() - t_start, 1),
        "lags_validation_people": val_report, "lags_training_clips": train_report["summary"],
    }
    write_model_card(path, card)
    write_text(args.out / "train_mixed.json", json.dumps(card, indent=1))
    log.info("wrote %s; validation lags %s", path, val_report["summary"] if val_report else None)
    return 0


if __name__ == "__main__":
    run_cli(main)
