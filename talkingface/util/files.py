"""Atomic publishing of outputs: write to a temporary name beside the target, then move it in place.

``tempfile`` creates files 0600 and folders 0700; :func:`publish` gives them the usual permissions
(0666 / 0777 minus the umask) before the rename, so outputs are readable like any other file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: PathLike, dst: PathLike) -> Path:
    """Give ``tmp`` (file or folder tree) default permissions and rename it to ``dst``."""
    tmp, dst = Path(tmp), Path(dst)
    mask = _umask()
    if tmp.is_dir():
        for root, dirs, files in os.walk(tmp):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, dst)
    return dst
