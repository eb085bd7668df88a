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
