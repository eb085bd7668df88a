"""Locate the real sample media (videos, speech) used by tests, benchmarks and training recipes.

Order: ``$TALKINGFACE_DATA`` if set, else ``../shared/data`` next to the repository root. Runtime
code never needs this folder; only tests, ``bench/``, training recipes and ``make demo`` read it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from talkingface.errors import UserInputError

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "TALKINGFACE_DATA"


def find_sample_data() -> Optional[Path]:
    """Return the sample-data folder, or None when neither location exists."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    return None


def sample_data_dir() -> Path:
    """Like :func:`find_sample_data` but raises a clear error when the data is absent."""
    found = find_sample_data()
    if found is None:
        raise UserInputError(
            f"sample data not found: set ${ENV_VAR} to the data folder or place it at "
            f"{REPO_ROOT.parent / 'shared' / 'data'}"
        )
    return found


def sample_path(*parts: str) -> Path:
    """Path of one sample file, e.g. ``sample_path('speech', 'arctic_a0007.wav')``; must exist."""
    path = sample_data_dir().joinpath(*parts)
    if not path.exists():
        raise UserInputError(f"sample file missing: {path}")
    return path
