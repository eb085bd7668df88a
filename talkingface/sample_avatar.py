"""The default sample mini avatar used by `make demo` and by `demo_avatar.py` when no --avatar is given.

It is built on first use from the sample data (``$TALKINGFACE_DATA`` or ``../shared/data``):
``data_preparation_mini.py dh_live/video_data/000002/video.mp4 video_data/mini`` then
``data_preparation_web.py video_data/mini``, and kept in the git-ignored ``video_data/mini``.
Nothing from the sample data is committed; without it the caller gets a clear error naming the
commands that make an avatar from the user's own video.
"""
from __future__ import annotations

import logging
from pathlib import Path

from talkingface.errors import UserInputError
from talkingface.util.sample_data import REPO_ROOT, find_sample_data

log = logging.getLogger(__name__)

SAMPLE_AVATAR_VIDEO = ("dh_live", "video_data", "000002", "video.mp4")
DEFAULT_MINI_AVATAR = REPO_ROOT / "video_data" / "mini"


def ensure_sample_mini_avatar(dest: Path = DEFAULT_MINI_AVATAR, data: Path | None = None,
                              checkpoint: Path | None = None, progress: bool = False) -> Path:
    """Return ``dest`` holding a complete mini avatar (data/ + assets/), building it if needed
    (``checkpoint``: the DINet_mini weights the pack's ``ref_data`` is made with; default the shipped one)."""
    dest = Path(dest)
    if (dest / "assets" / "combined_data.json.gz").is_file():
        return dest
    data = data or find_sample_data()
    if data is None:
        raise UserInputError(f"no avatar at {dest} and no sample data to build one: run "
                             f"`python data_preparation_mini.py VIDEO {dest}` then "
                             f"`python data_preparation_web.py {dest}`, or pass --avatar")
    video = Path(data).joinpath(*SAMPLE_AVATAR_VIDEO)
    if not video.is_file():
        raise UserInputError(f"sample video missing: {video}")
    from talkingface.preparation import PrepConfig, prepare_mini_avatar
    from talkingface.mini_pack import DEFAULT_CHECKPOINT, write_avatar_pack

    if not (dest / "data" / "processed.pkl").is_file():
        log.info("building the sample mini avatar in %s from %s", dest, video)
        prepare_mini_avatar(video, dest, PrepConfig(progress=progress))
    log.info("building the asset pack %s", dest / "assets")
    write_avatar_pack(dest, checkpoint=checkpoint or DEFAULT_CHECKPOINT)
    return dest
