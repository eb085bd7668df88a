"""Locate the optional real sample data (videos, speech) used by tests, benchmarks and training recipes.

Order: ``$TALKINGFACE_DATA`` if set, else ``../shared/data`` next to the repository root. Runtime
code and ``make demo`` never need this folder (the built-in sample is
:data:`talkingface.config.paths.SAMPLE_DIR`); only tests, ``bench/`` and training recipes read it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from talkingface.config.paths import DATA_ENV as ENV_VAR
from talkingface.config.paths import shared_data_default
from talkingface.errors import UserInputError


#: The original's published audio model inside the sample data (the distillation teacher), as path parts.
ORIGINAL_AUDIO_MODEL = ("dh_live", "checkpoint", "audio.pkl")


def find_sample_data() -> Optional[Path]:
    """Return the sample-data folder, or None when neither location exists."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    if shared_data_default() is not None:
        candidates.append(shared_data_default())
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    return None


def sample_data_dir() -> Path:
    """Like :func:`find_sample_data` but raises a clear error when the data is absent."""
    found = find_sample_data()
    if found is None:
        where = f" or place it at {shared_data_default()}" if shared_data_default() is not None else ""
        raise UserInputError(f"sample data not found: set ${ENV_VAR} to the data folder{where}")
    return found


def sample_path(*parts: str) -> Path:
    """Path of one sample file, e.g. ``sample_path('speech', 'arctic_a0007.wav')``; must exist."""
    path = sample_data_dir().joinpath(*parts)
    if not path.exists():
        raise UserInputError(f"sample file missing: {path}")
    return path
