"""The real clips no shipped model was trained on: the evaluation set of docs/EVALUATION.md.

One list, in one place. Paths are relative to the sample-data folder (``../shared/data`` or
``$TALKINGFACE_DATA``). Keep it in step with the held-out lists in the model cards
``checkpoint/*.md``: a clip used to train or fit any shipped model must not be listed here.

Agreed with the model recipes: the audio model's bases and distillation leave out the GRID clips
and ``d20_zh`` (``train_audio/preparation_step1.py --exclude``), and DINet_mini trains on the other
real faces, validating on MEAD ``W011_*`` (silent, so unusable here) and ``d20_zh``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from talkingface.util.sample_data import sample_data_dir

HELDOUT_CLIPS = (
    "av/grid/bbaf2n.mpg",
    "av/grid/brbk7n.mpg",
    "av/grid/id2_vcd_swwp2s.mpg",
    "av/grid/lbax4n.mpg",
    "av/grid/lbbc2a.mpg",
    "av/grid/lrwp9a.mpg",
    "av/grid/lwbsza.mpg",
    "av/grid/pwij3p.mpg",
    "av/grid/sbia1a.mpg",
    "av/grid/sbwe5n.mpg",
    "av/grid/swiz3n.mpg",
    "av/misc/d20_zh.mp4",
)


def heldout_paths(data_dir: Optional[Path] = None) -> List[Path]:
    """Absolute paths of the held-out clips present in the sample-data folder."""
    root = Path(data_dir) if data_dir is not None else sample_data_dir()
    return [root / rel for rel in HELDOUT_CLIPS if (root / rel).is_file()]
