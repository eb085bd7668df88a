"""Shared pytest fixtures.

``sample_data`` is the one way tests reach the real media in ``../shared/data`` (or
``$TALKINGFACE_DATA``); it skips the test cleanly on a machine without that folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from talkingface.util.sample_data import find_sample_data  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The real sample-data folder; skips when it is absent (e.g. on a user's machine)."""
    found = find_sample_data()
    if found is None:
        pytest.skip("sample data folder not found (set $TALKINGFACE_DATA or put it at ../shared/data)")
    return found


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mini_avatar_dir(tmp_path_factory) -> Path:
    """data_preparation_mini output for the built-in sample video (the DH_live repository's
    video_data/000002/video.mp4, committed with its licence; 179 frames), built once. Needs no
    external data."""
    from talkingface.config.paths import SAMPLE_AVATAR_VIDEO
    from talkingface.preparation import PrepConfig, prepare_mini_avatar

    out = tmp_path_factory.mktemp("mini_avatar") / "avatar"
    return prepare_mini_avatar(SAMPLE_AVATAR_VIDEO, out, PrepConfig(progress=False))


@pytest.fixture(scope="session")
def dhlive_avatar_dir(sample_data, tmp_path_factory) -> Path:
    """data_preparation output for av/grid/bbaf2n.mpg (circle.mp4 of 150 frames), built once."""
    from talkingface.preparation import PrepConfig, prepare_dhlive_avatar

    out = tmp_path_factory.mktemp("dhlive_avatar") / "avatar"
    return prepare_dhlive_avatar(sample_data / "av/grid/bbaf2n.mpg", out, PrepConfig(progress=False))


@pytest.fixture(scope="session")
def grid_landmarks(sample_data) -> "np.ndarray":
    """Face mesh (75, 478, 3) of the GRID clip av/grid/bbaf2n.mpg, computed once."""
    from talkingface.mediapipe_utils import landmarks_for_video
    from talkingface.util.media import read_video

    return landmarks_for_video(read_video(sample_data / "av/grid/bbaf2n.mpg"), progress=False)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny CPU workloads run faster single-threaded on a shared, busy machine; restored after.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
