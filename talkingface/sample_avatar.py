"""The default sample mini avatar used by `make demo` and by `demo_avatar.py` when no --avatar is given.

It is built on first use from the committed sample video (:data:`talkingface.config.paths.SAMPLE_AVATAR_VIDEO`,
licence in ``talkingface/assets/sample/NOTICE.md``), the same as
``data_preparation_mini.py VIDEO AVATAR`` then ``data_preparation_web.py AVATAR``, into the writable
:func:`talkingface.config.paths.mini_avatar_dir` (``video_data/mini`` in a clone). No external data is needed.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from talkingface.config.paths import DINET_MINI_CHECKPOINT, SAMPLE_AVATAR_VIDEO, mini_avatar_dir
from talkingface.errors import UserInputError
from talkingface.mini_pack import write_avatar_pack
from talkingface.preparation import PrepConfig, prepare_mini_avatar

log = logging.getLogger(__name__)


def ensure_sample_mini_avatar(dest: Optional[Path] = None, video: Optional[Path] = None,
                              checkpoint: Optional[Path] = None, progress: bool = False) -> Path:
    """Return ``dest`` (default :func:`~talkingface.config.paths.mini_avatar_dir`) holding a complete
    mini avatar (data/ + assets/), building it from ``video`` (default: the built-in sample video) if
    needed. ``checkpoint``: the DINet_mini weights the pack's ``ref_data`` is made with (default the
    shipped one). Each stage is written atomically, so an interrupted build is redone next time."""
    # Lazy imports: the preparation stack (MediaPipe, torch, OpenGL) is only needed when building.

    dest = Path(dest) if dest is not None else mini_avatar_dir()
    if (dest / "assets" / "combined_data.json.gz").is_file():
        return dest
    video = Path(video) if video is not None else SAMPLE_AVATAR_VIDEO
    if not video.is_file():
        raise UserInputError(f"no avatar at {dest} and the sample video {video} is missing: run "
                             f"`python data_preparation_mini.py VIDEO {dest}` then "
                             f"`python data_preparation_web.py {dest}`, or pass --avatar")
    if not (dest / "data" / "processed.pkl").is_file():
        log.info("building the sample mini avatar in %s from %s", dest, video)
        prepare_mini_avatar(video, dest, PrepConfig(progress=progress))
    log.info("building the asset pack %s", dest / "assets")
    write_avatar_pack(dest, checkpoint=checkpoint or DINET_MINI_CHECKPOINT)
    return dest
