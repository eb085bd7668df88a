"""Train the audio LSTM directly on clips with per-frame targets (docs/REFERENCE.md §6.2 step 3).

    python train_audio/train_lstm.py DATA_DIR OUT [--target bs|pixel] [--max_steps N] [--resume]

DATA_DIR holds ``<name>.wav`` (16 kHz speech) with ``<name>.<target>.txt`` (one row of 6
coefficients per 40 ms), as written by ``preparation_step1.py`` (``OUT/clips``); ``--target ''``
reads the original's ``<name>.txt``. Recipe: windows of 26 frames, 4-frame lookahead
(L1 between pred[:, 4:] and target[:, :-4], targets standardised per coefficient),
Adam 4e-4 (0.9, 0.99), batch 32, noise/polarity/
pitch augmentation. Validation clips are chosen by speaker (``--speaker_regex`` on the clip
name; default: every clip is its own speaker), 20 % with random state 777, or named with
``--val``. Writes ``OUT/last.pth`` (resume), TensorBoard logs in ``OUT/log`` and the final
``OUT/audio.pkl`` + ``OUT/audio.json``.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from talkingface.config.flags import add_config_flags, config_dict, config_from_args
from talkingface.config.training import LSTMTrainConfig
from talkingface.errors import UserInputError
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging

log = logging.getLogger("train_lstm")


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("data_dir", type=Path, help="folder of <name>.wav + <name>.<target>.txt")
    ap.add_argument("out", type=Path, help="output folder (checkpoints, logs, audio.pkl)")
    ap.add_argument("--target", default="bs", help="coefficient file suffix: bs, pixel, or '' for <name>.txt")
    ap.add_argument("--basis", type=Path, help="basis .npz the targets belong to (recorded in the sidecar)")
    # the recipe's hyper-parameters; validation runs with every save (val_every = save_every)
    add_config_flags(ap, LSTMTrainConfig, exclude=("val_every",))
    ap.add_argument("--val", action="append", default=[], help="clip name (stem) for validation (repeatable)")
    ap.add_argument("--speaker_regex", default=r"(.*)", help="regex whose group 1 of a clip name is its speaker")
    ap.add_argument("--val_fraction", type=float, default=0.2)
    ap.add_argument("--no_augment", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pth")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def split_by_speaker(names, val_names, regex: str, fraction: float, seed: int):
    """Indices (train, val): named clips, else whole speakers drawn at random (fraction of speakers)."""
    if val_names:
        val = {i for i, n in enumerate(names) if n in set(val_names)}
    else:
        pat = re.compile(regex)
        speakers = []
        for n in names:
            m = pat.match(n)
            speakers.append(m.group(1) if m and m.groups() else n)
        uniq = sorted(set(speakers))
        rng = np.random.default_rng(seed)
        n_val = int(round(fraction * len(uniq))) if len(uniq) > 1 else 0
        chosen = set(rng.choice(uniq, n_val, replace=False)) if n_val else set()
        val = {i for i, s in enumerate(speakers) if s in chosen}
    train = [i for i in range(len(names)) if i not in val]
    if not train:
        raise UserInputError("no training clips left after the validation split")
    return train, sorted(val)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.audio_training import LSTMTrainer
    from talkingface.data.dataset_wav import AudioVisualDataset, AugmentConfig, find_clips, load_clips

    torch.set_num_threads(max(1, args.threads))
    pairs = find_clips(args.data_dir, args.target)
    if not pairs:
        raise UserInputError(f"no <name>.wav with <name>.{args.target}.txt in {args.data_dir}")
    audio, coefs = load_clips(pairs)
    names = [a.stem for a, _ in pairs]
    tr, va = split_by_speaker(names, args.val, args.speaker_regex, args.val_fraction, args.seed)
    log.info("%d clips: %d train, %d validation", len(names), len(tr), len(va))
    cfg = config_from_args(LSTMTrainConfig, args, val_every=args.save_every, device=resolve_device(args.device))
    train_set = AudioVisualDataset([audio[i] for i in tr], [coefs[i] for i in tr], cfg.seq_len, train=True,
                                   augment=None if args.no_augment else AugmentConfig())
    val_set = (AudioVisualDataset([audio[i] for i in va], [coefs[i] for i in va], cfg.seq_len, train=False)
               if va else None)
    stacked = np.concatenate([coefs[i][:, :6] for i in tr])
    trainer = LSTMTrainer(cfg, train_set, args.out, val_set=val_set, resume=args.resume,
                          target_norm=(stacked.mean(0), stacked.std(0) + 1e-6))
    stats = trainer.run()
    card = {"recipe": "direct", "target": {"bs": "blendshape"}.get(args.target, args.target or "pca"),
            "basis": str(args.basis) if args.basis else None, "lookahead_steps": cfg.lookahead,
            "sample_rate": 16000, "train_clips": [names[i] for i in tr], "val_clips": [names[i] for i in va],
            "training": stats, "config": config_dict(cfg),
            "script_options": {k: str(v) for k, v in vars(args).items() if not hasattr(cfg, k)}}
    path = trainer.export(card, name="audio")
    log.info("wrote %s (%s)", path, stats)
    return 0


if __name__ == "__main__":
    run_cli(main)
