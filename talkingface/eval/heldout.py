"""The real clips no shipped model was trained on: the evaluation set of docs/EVALUATION.md.

One list, in one place. Paths are relative to the sample-data folder (``../shared/data`` or
``$TALKINGFACE_DATA``). Keep it in step with the held-out lists in the model cards
``checkpoint/*.md``: a clip used to train or fit any shipped model must not be listed here.

Agreed with the model recipes: the audio model's bases and distillation leave out the GRID clips
and ``d20_zh`` (``train_audio/preparation_step1.py --exclude``), and DINet_mini trains on the other
real faces, validating on MEAD ``W011_*`` (silent, so unusable here) and ``d20_zh``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional

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

# Whole people of ``av_more/`` kept out of every training and fitting step: every clip of ``av_more`` that is
# >= 8 s long (so the first-half / second-half protocol has >= 4 s on each side), shows one real person and
# whose own audio/video offset is within the probe's jitter (|best lag| <= 1 in ``av_more/SYNC_CHECK.tsv``,
# measured with the original's audio model, not with ours). A clip whose picture trails its sound by 2-4
# frames cannot score a model that is on time at lag 0, so such clips train (shifted by their offset) instead
# of judging. One clip per person; languages: English (9, one of them "likely"), Russian.
HELDOUT_AV_MORE = (
    "av_more/SkyworkAI__SkyReels-A1/2.mp4",                                        # dm006 English (likely), vlog
    "av_more/DmitryRyumin__OpenAV/before_vad.mp4",                                 # dm023 Russian, webcam
    "av_more/CyberSculptor96__talkingface-codebase/0013baca4499bf23f9fec80634f85478.mp4",  # dm062
    "av_more/CyberSculptor96__talkingface-codebase/0018febe2f24e476989cf99ade97c4a4.mp4",  # dm065
    "av_more/CyberSculptor96__talkingface-codebase/0022538ba30eb06390f5af3b248e7974.mp4",  # dm067
    "av_more/CyberSculptor96__talkingface-codebase/0024fc47f647d5dcafa71dd1f5801f29.mp4",  # dm068
    "av_more/CyberSculptor96__talkingface-codebase/00257241df758042204694ea5f70d297.mp4",  # dm069
    "av_more/CyberSculptor96__talkingface-codebase/00285b43bd13527a75d6861ab9ca94b0.mp4",  # dm071
    "av_more/CyberSculptor96__talkingface-codebase/002996433cdf41514f850a2e93ca9cfd.mp4",  # dm072
    "av_more/CyberSculptor96__talkingface-codebase/002de4ab960ca9b79f218bcc07d6ba97.mp4",  # dm073
)

# More languages, too short for the cross-half protocol (5 s each, |best lag| <= 1 in SYNC_CHECK.tsv): held out
# the same way and scored whole, audio model against the real mouth (``python train_audio/evaluate.py``).
HELDOUT_SHORT_AV_MORE = (
    "av_more/FreedomIntelligence__talk-vid/ar.mp4",                                # dm052 Arabic
    "av_more/FreedomIntelligence__talk-vid/hi.mp4",                                # dm054 Hindi
    "av_more/FreedomIntelligence__talk-vid/kr.mp4",                                # dm055 Korean
    "av_more/FreedomIntelligence__talk-vid/th.mp4",                                # dm058 Thai
    "av_more/FreedomIntelligence__talk-vid/zh.mp4",                                # dm059 Mandarin
)

# Never used for training either; not scored. ``dm064`` may show the same person as the held-out ``dm065``
# (both "male, white coat" interview crops).
EXCLUDED_AV_MORE = (
    "av_more/CyberSculptor96__talkingface-codebase/00172f2307d103b669528b6993e58f49.mp4",  # dm064
)


def heldout_paths(data_dir: Optional[Path] = None, clips=HELDOUT_CLIPS) -> List[Path]:
    """Absolute paths of the held-out clips (``clips``: one of the lists above) present in the data folder."""
    root = Path(data_dir) if data_dir is not None else sample_data_dir()
    return [root / rel for rel in clips if (root / rel).is_file()]


def sync_check_lags(tsv: Optional[Path] = None) -> Dict[str, int]:
    """A SYNC_CHECK table (default: ``av_more/SYNC_CHECK.tsv`` of the sample-data folder): clip path relative
    to the data folder (``av_more/`` + its ``local`` column) -> ``best_lag`` (frames; > 0: the clip's picture
    is late on its own sound, as the original's audio model measured it)."""
    with open(tsv if tsv is not None else sample_data_dir() / "av_more" / "SYNC_CHECK.tsv", newline="") as fh:
        return {"av_more/" + row["local"]: int(row["best_lag"]) for row in csv.DictReader(fh, delimiter="\t")}


def never_train_on() -> frozenset:
    """Relative paths no training or fitting step may read (held-out and excluded clips)."""
    return (frozenset(HELDOUT_CLIPS) | frozenset(HELDOUT_AV_MORE) | frozenset(HELDOUT_SHORT_AV_MORE)
            | frozenset(EXCLUDED_AV_MORE))
