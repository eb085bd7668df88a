"""Distil a teacher audio model over a speech corpus, then map it onto our own mouth bases.

    python train_audio/distill.py --teacher TEACHER.pkl --speech SPEECH_DIR [--speech ...] \
        --bases STEP1_OUT --out OUT [--max_steps N]

1. Every audio file under ``--speech`` (minus ``--exclude``) is turned into fbank once, plus
   ``--variants - 1`` augmented copies (noise, polarity, pitch +-4 semitones), and the frozen
   teacher labels each copy with its whole-file outputs (cached in ``OUT/fbank_cache.npz``).
2. A fresh Audio2Feature (the student) learns to reproduce those labels on random windows
   (L1 on standardised outputs, Adam, optional cosine decay). ``OUT/student.pkl`` is in the
   teacher's output space.
3. With ``--bases`` (the output folder of ``preparation_step1.py``): the student runs over the
   real clips with audio there, and a linear map from its outputs to the clips' measured
   blendshape coefficients is fitted (frame shift and ridge chosen by leave-one-clip-out
   cross-validation; coefficient 0 then rescaled to the measured within-clip amplitude) and
   folded into the last layer: ``OUT/audio_blendshape.pkl`` (for demo_mini.py). The pixel coefficients of every clip (silent ones too) are regressed on its
   blendshape coefficients, and that map composed with the first gives ``OUT/audio_pixel.pkl``
   (for demo.py). Each has a sidecar ``.json``.

The teacher may be any Audio2Feature checkpoint, e.g. the original's published ``audio.pkl``
(6 coefficients of its mouth-image PCA); it is only read here, never needed at runtime.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from talkingface.config.flags import add_config_flags, config_dict, config_from_args
from talkingface.config.training import DistillConfig
from talkingface.errors import UserInputError
from talkingface.util.cli import progress, resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import atomic_write, check_output_dir, write_model_card, write_text

log = logging.getLogger("distill")


def parse_args(argv=None):
    ap = script_parser(__doc__)
    add_config_flags(ap, DistillConfig)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pth")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def speech_files(dirs, exclude):
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.util.media import list_audio

    files = [p for d in dirs for p in list_audio(d, exclude=exclude)]
    if not files:
        raise UserInputError("no speech files found")
    return files


def _is_val(path: Path, fraction: float) -> bool:
    h = int(hashlib.md5(path.name.encode()).hexdigest()[:8], 16)
    return (h % 10000) < fraction * 10000


def labelled_fbank(files, n_variants, teacher, cache: Path, seed: int, speeds=(1.0,)):
    """Per file and speed factor (file-major order): (list of fbank variants, list of teacher outputs per
    variant), cached. ``speeds``: each file is also labelled played at these speeds
    (:func:`~talkingface.data.dataset_wav.speed_perturb`; 1.0 = as recorded), each an entry of its own."""
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.audio_features import FBANK_PER_FRAME
    from talkingface.data.dataset_wav import augmented_fbanks, speed_perturb
    from talkingface.util.media import load_audio

    speeds = [float(x) for x in speeds]
    names = [f"{f}@{x:g}" if x != 1.0 else str(f) for f in files for x in speeds]
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as d:
            if list(d["names"]) == names and int(d["variants"]) == n_variants:
                fb, lab, out = d["fbank"], d["labels"], []
                fs, ls = 0, 0
                for n in d["lengths"]:
                    m = n // FBANK_PER_FRAME
                    out.append(([fb[fs + k * n: fs + (k + 1) * n] for k in range(n_variants)],
                                [lab[ls + k * m: ls + (k + 1) * m] for k in range(n_variants)]))
                    fs += n * n_variants
                    ls += m * n_variants
                log.info("fbank cache %s: %d files", cache, len(out))
                return out
    out = []
    for i, f in enumerate(progress(files, desc="fbank + teacher", unit="file")):
        audio = load_audio(f)
        for k, speed in enumerate(speeds):
            variants = augmented_fbanks(speed_perturb(audio, speed), n_variants, seed=seed + i + 100003 * k)
            with torch.no_grad():
                x = torch.from_numpy(np.stack(variants))
                h0, c0 = teacher.init_state(len(variants))
                labels = teacher(x, h0, c0)[0].numpy()
            out.append((variants, list(labels)))
    with atomic_write(cache) as tmp:
        np.savez(tmp, names=np.array(names), variants=n_variants, lengths=np.array([len(v[0]) for v, _ in out]),
                 fbank=np.concatenate([np.concatenate(v) for v, _ in out]),
                 labels=np.concatenate([np.concatenate(lab) for _, lab in out]))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.audio_model import AudioModel
    from talkingface.audio_training import LSTMTrainer, fit_linear, fit_output_map, fold_output_map, match_amplitude
    from talkingface.data.dataset_wav import FbankWindowDataset, find_clips, load_clips
    from talkingface.models.audio2bs_lstm import load_audio2feature

    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    check_output_dir(args.out)
    teacher = load_audio2feature(args.teacher, "cpu")
    files = speech_files(args.speech, set(args.exclude))
    args.out.mkdir(parents=True, exist_ok=True)
    val_files = [f for f in files if _is_val(f, args.val_fraction)]
    train_files = [f for f in files if not _is_val(f, args.val_fraction)]
    log.info("%d speech files (%d for validation)", len(files), len(val_files))
    data_ = labelled_fbank(train_files + val_files, args.variants, teacher, args.out / "fbank_cache.npz", args.seed)
    train_d, val_d = data_[: len(train_files)], data_[len(train_files):]
    labels = np.concatenate([np.concatenate(lab) for _, lab in train_d])
    recipe = config_from_args(DistillConfig, args)
    cfg = recipe.student_config(device)
    train_set = FbankWindowDataset([v for v, _ in train_d], args.seq_len, coef_list=[lab for _, lab in train_d],
                                   samples_per_epoch=args.batch_size * 50)
    val_set = None
    if val_d:
        val_set = FbankWindowDataset([v[:1] for v, _ in val_d], args.seq_len, coef_list=[lab[0] for _, lab in val_d],
                                     samples_per_epoch=args.batch_size * 4)
        val_set._rng = np.random.default_rng(args.seed)
    trainer = LSTMTrainer(cfg, train_set, args.out, val_set=val_set, resume=args.resume,
                          target_norm=(labels.mean(0), labels.std(0) + 1e-6))
    stats = trainer.run()
    data = {"speech_dirs": [str(d) for d in args.speech], "excluded": args.exclude,
            "train_files": len(train_files), "val_files": len(val_files),
            "train_seconds": round(sum(len(v[0]) for v, _ in train_d) / 50.0, 1)}
    base_card = {"recipe": "distillation", "teacher": args.teacher.name,
                 "config": config_dict(recipe), "student_config": config_dict(cfg),
                 "script_options": {"threads": args.threads, "resume": args.resume, "device": device},
                 "data": data, "training": stats, "lookahead_steps": 4, "sample_rate": 16000}
    student = trainer.export(base_card | {"target": "teacher"}, name="student")
    log.info("student: %s (%s)", student, stats)
    if args.bases is None:
        return 0
    # ---- map the student's outputs onto our bases, using real clips with measured targets
    model = AudioModel(student, device="cpu", lookahead_steps=4)
    state = trainer.exported_state()
    clip_dir = args.bases / "clips"
    pairs = find_clips(clip_dir, "bs")
    if not pairs:
        raise UserInputError(f"no clips with audio and .bs.txt targets in {clip_dir}")
    audios, bs_true = load_clips(pairs)
    preds = [model.interface_wav(a) for a in audios]
    bs_map = match_amplitude(fit_output_map(preds, bs_true), preds, bs_true, dims=(0,))
    # pixel coefficients follow the mouth shape: relate the two bases on every clip (silent ones too)
    both = sorted(p.name[: -len(".bs.txt")] for p in clip_dir.glob("*.bs.txt")
                  if (clip_dir / p.name.replace(".bs.txt", ".pixel.txt")).is_file())
    shape_to_pixel = fit_linear([np.atleast_2d(np.loadtxt(clip_dir / f"{n}.bs.txt")) for n in both],
                                [np.atleast_2d(np.loadtxt(clip_dir / f"{n}.pixel.txt")) for n in both], ridge=1e-3)
    maps = {"audio_blendshape": ("blendshape", "blendshape_basis.npz", bs_map),
            "audio_pixel": ("pixel", "pixel_basis.npz", bs_map.then(shape_to_pixel))}
    for name, (target, basis_file, m) in maps.items():
        path = args.out / f"{name}.pkl"
        with atomic_write(path) as tmp:
            torch.save(fold_output_map(state, m), tmp)
        shutil.copy2(args.bases / basis_file, args.out / basis_file)
        card = base_card | {"target": target, "basis": basis_file, "lookahead_steps": 4 + m.shift,
                            "output_map": {"audio_clips": [a.stem for a, _ in pairs], "shift": m.shift,
                                           "ridge": m.ridge, "cv_best_lag_r_coef0": round(m.score, 4),
                                           "amplitude_matched": [0],
                                           "shape_to_pixel_clips": both if target == "pixel" else None}}
        write_model_card(path, card)
    log.info("mapped: shift %+d, ridge %g, leave-one-clip-out best-lag r(coef0) %.3f on %d clips",
             bs_map.shift, bs_map.ridge, bs_map.score, len(pairs))
    write_text(args.out / "distill.json", json.dumps({"stats": stats, "data": data}, indent=1))
    return 0


if __name__ == "__main__":
    run_cli(main)
