"""Visual check of the DH_live render training inputs: writes a mosaic PNG (docs/REFERENCE.md §6.1 step 2).

Each row is one sample: masked source | prompt | both | the references with their line maps |
target. Rows cover random videos and frames of the prepared folders (train-mode sampling, with its
augmentation), so what the network sees can be inspected before a long training run.

    python train/train_input_validation_render_model.py DATA_DIR [--out validation.png] [--rows 4]
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from talkingface.data.few_shot_dataset import FewShotConfig, Few_Shot_Dataset, data_preparation, sample_mosaic
from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import check_output_file, write_image

log = logging.getLogger("train_input_validation_render_model")


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("data", nargs="+", help="prepared folder(s) (train/data_preparation_face.py output)")
    parser.add_argument("--out", default="validation.png", help="mosaic PNG to write (default: validation.png)")
    parser.add_argument("--rows", type=int, default=4, help="number of samples (rows)")
    parser.add_argument("--n_ref", type=int, default=5, help="references per sample")
    parser.add_argument("--eval", action="store_true", help="use the evaluation path (no augmentation)")
    parser.add_argument("--seed", type=int, default=456)
    args = parser.parse_args(argv)
    setup_logging()
    if args.rows < 1:
        raise UserInputError("--rows must be at least 1")
    check_output_file(args.out)
    np.random.seed(args.seed)
    videos = data_preparation(args.data)
    dataset = Few_Shot_Dataset(videos, FewShotConfig(n_ref=args.n_ref), is_train=not args.eval,
                               samples_per_video=args.rows, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    rows = []
    for k in range(args.rows):
        if args.eval:
            sample = dataset[int(k * len(dataset) // args.rows)]
        else:
            v = int(rng.integers(len(videos)))
            sample = dataset.make_sample(v, int(rng.integers(len(videos[v]))), rng)
        rows.append(sample_mosaic(sample, args.n_ref))
    mosaic = np.concatenate(rows, axis=0)
    out = Path(args.out)
    write_image(out, mosaic)
    log.info("wrote %s (%dx%d)", out, mosaic.shape[1], mosaic.shape[0])
    return 0


if __name__ == "__main__":
    run_cli(main)
