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

# Whole people of ``av_more/`` kept out of every training and fitting step (clips >= 8 s, so the
# first-half / second-half protocol has >= 4 s on each side). One clip per person; languages:
# French, Mandarin (2), English (8). ``dm065`` is not held out but is also kept out of training:
# it may show the same person as ``dm064`` (both "male, white coat" interview crops).
HELDOUT_AV_MORE = (
    "av_more/sstzal__DFRF/french.mp4",                                            # dm002 French
    "av_more/KwaiVGI__LivePortrait/d11.mp4",                                      # dm004 Mandarin, child
    "av_more/MeiGen-AI__InfiniteTalk/ref_video.mp4",                              # dm010 English
    "av_more/JOY-MM__JoyGen/example_15s.mp4",                                     # dm011 Mandarin
    "av_more/jixinya__EAMM/surprised.mp4",                                        # dm022 English (MEAD)
    "av_more/bytedance__LatentSync/demo1_video.mp4",                              # dm026 English, portrait
    "av_more/CyberSculptor96__talkingface-codebase/0013baca4499bf23f9fec80634f85478.mp4",  # dm062
    "av_more/CyberSculptor96__talkingface-codebase/00172f2307d103b669528b6993e58f49.mp4",  # dm064
    "av_more/CyberSculptor96__talkingface-codebase/0022538ba30eb06390f5af3b248e7974.mp4",  # dm067
    "av_more/CyberSculptor96__talkingface-codebase/00257241df758042204694ea5f70d297.mp4",  # dm069
    "av_more/CyberSculptor96__talkingface-codebase/002de4ab960ca9b79f218bcc07d6ba97.mp4",  # dm073
)

# Never used for training either (see above); not scored.
EXCLUDED_AV_MORE = (
    "av_more/CyberSculptor96__talkingface-codebase/0018febe2f24e476989cf99ade97c4a4.mp4",  # dm065
)


def heldout_paths(data_dir: Optional[Path] = None, clips=HELDOUT_CLIPS) -> List[Path]:
    """Absolute paths of the held-out clips (``clips``: one of the lists above) present in the data folder."""
    root = Path(data_dir) if data_dir is not None else sample_data_dir()
    return [root / rel for rel in clips if (root / rel).is_file()]


def never_train_on() -> frozenset:
    """Relative paths no training or fitting step may read (held-out and excluded clips)."""
    return frozenset(HELDOUT_CLIPS) | frozenset(HELDOUT_AV_MORE) | frozenset(EXCLUDED_AV_MORE)
