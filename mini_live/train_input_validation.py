"""Write a mosaic PNG of DINet_mini training inputs, to check the data by eye (no windows).

    python mini_live/train_input_validation.py DATA_DIR OUT.png [--samples 8] [--seed 1009]

DATA_DIR holds prepared videos (mini_live/prepare_training_data.py). One row per sample:
source (label-painted target) | ref 0 RGB | ref 0 lip map | ref 1 RGB | ref 1 lip map | ref 2 RGB |
ref 2 lip map | target, each 72x72, enlarged 2x.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from talkingface.errors import UserInputError
from talkingface.util.cli import run_cli, script_parser, setup_logging
from talkingface.util.files import write_image

log = logging.getLogger("train_input_validation")


def sample_row(sample) -> np.ndarray:
    """One dataset item -> a 72 x (8*72) RGB uint8 strip."""
    def rgb(t):
        return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    tiles = [rgb(sample["source"])]
    ref = sample["ref"]
    for k in range(ref.shape[0] // 4):
        tiles.append(rgb(ref[4 * k:4 * k + 3]))
        tiles.append(np.repeat(rgb(ref[4 * k + 3:4 * k + 4]), 3, axis=2))
    tiles.append(rgb(sample["target"]))
    return np.concatenate(tiles, 1)


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out", type=Path, help="output PNG")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1009)
    args = parser.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.DHLive_mini_dataset import DHLiveMiniDataset, MiniDatasetConfig, load_prepared

    files = sorted(args.data_dir.glob("*.npz")) if args.data_dir.is_dir() else []
    if not files:
        raise UserInputError(f"no prepared videos (*.npz) in {args.data_dir}")
    ds = DHLiveMiniDataset([load_prepared(f) for f in files], MiniDatasetConfig(samples_per_epoch=args.samples),
                           seed=args.seed)
    mosaic = np.concatenate([sample_row(ds[i]) for i in range(args.samples)], 0)
    mosaic = cv2.resize(mosaic, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    write_image(args.out, cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR))
    log.info("wrote %s (%d samples from %d videos)", args.out, args.samples, len(files))
    return 0


if __name__ == "__main__":
    run_cli(main)
