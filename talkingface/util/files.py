"""Atomic outputs: write to a temporary name beside the target, then move it in place.

``tempfile`` creates files 0600 and folders 0700; :func:`publish` gives them the usual permissions
(0666 / 0777 minus the umask) before the rename, so outputs are readable like any other file.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import cv2

from talkingface.errors import UserInputError

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


@contextmanager
def atomic_write(dst: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dst`` (same suffix, so writers pick the same format); on
    success it is published as ``dst`` (parents created), on an exception it is removed."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".tmp_{dst.name}")
    try:
        yield tmp
        publish(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(dst: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``dst`` atomically."""
    with atomic_write(dst) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dst)


def write_image(dst: PathLike, image) -> Path:
    """Write an image (format from the suffix, e.g. PNG) with OpenCV, atomically; a clear error if
    OpenCV cannot write it."""
    with atomic_write(dst) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise UserInputError(f"cannot write image {dst}")
    return Path(dst)


def read_model_card(checkpoint: PathLike) -> dict:
    """The sidecar ``<checkpoint stem>.json`` of a checkpoint (config, data, metrics), or {} if none."""
    side = Path(checkpoint).with_suffix(".json")
    if side.is_file():
        with open(side, encoding="utf-8") as fh:
            return json.load(fh)
    return {}


def write_model_card(checkpoint: PathLike, card: dict) -> Path:
    """Write the sidecar JSON of a checkpoint atomically."""
    return write_text(Path(checkpoint).with_suffix(".json"), json.dumps(card, indent=1, default=str))
