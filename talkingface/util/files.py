"""Files in and out: atomic outputs, early output checks, and inputs that fail with one clear error.

Outputs are written to a temporary name beside the target and moved in place. ``tempfile`` creates
files 0600 and folders 0700; :func:`publish` gives them the usual permissions (0666 / 0777 minus the
umask) before the rename, so outputs are readable like any other file.

Inputs are read inside :func:`reading`, which turns a missing, unreadable, truncated, corrupt or
foreign file into one :class:`~talkingface.errors.UserInputError` naming it.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import stat
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Union

import cv2

from talkingface.errors import UserInputError

PathLike = Union[str, os.PathLike]

#: What reading a truncated, corrupt or foreign file raises (json/gzip/zlib/pickle/zip/torch.load/
#: np.load), and what parsing a file of another layout raises (missing keys, wrong types or shapes).
#: Only caught around the read and parse of one file (see :func:`reading`).
BAD_FILE_ERRORS = (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, ImportError,
                   RuntimeError, zlib.error, pickle.UnpicklingError, zipfile.BadZipFile, gzip.BadGzipFile)


def check_input_file(path: PathLike, what: str = "input file") -> Path:
    """``path`` as a Path if it names a readable regular file; else one clear error (missing, a
    folder, a FIFO or device, unreadable)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserInputError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserInputError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UserInputError(f"{what} {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise UserInputError(f"cannot read {what} {path}: permission denied")
    return path


@contextmanager
def reading(path: PathLike, what: str = "file") -> Iterator[Path]:
    """Check ``path`` (:func:`check_input_file`), yield it, and turn what reading and parsing it
    inside the block raises (:data:`BAD_FILE_ERRORS`, OSError) into one UserInputError naming the
    file: ``with reading(p, "asset pack data") as p: data = json.load(gzip.open(p))``."""
    path = check_input_file(path, what)
    try:
        yield path
    except UserInputError:
        raise
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except BAD_FILE_ERRORS as exc:
        detail = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise UserInputError(f"{what} {path} is truncated, corrupt or of another format "
                             f"({exc.__class__.__name__}: {detail})") from exc


def read_json(path: PathLike, what: str = "JSON file") -> Any:
    """A JSON file (``.json`` or gzip-compressed ``.json.gz``), with :func:`reading`'s errors."""
    with reading(path, what) as p:
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8") as fh:
            return json.load(fh)


def read_pickle(path: PathLike, what: str = "pickle file") -> Any:
    """A pickle file, with :func:`reading`'s errors. Pickles run code: only for the toolkit's own
    data formats (keypoint pickles), never for downloaded model weights."""
    with reading(path, what) as p:
        with open(p, "rb") as fh:
            return pickle.load(fh)


def check_output_file(path: PathLike, what: str = "output") -> Path:
    """Fail early (before any heavy work) when ``path`` cannot become a file: it is an existing
    folder, or its nearest existing ancestor is not a writable folder. Missing parents are fine
    (created when the output is complete)."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise UserInputError(f"{what} {path} exists and is not a regular file")
    anchor = path.absolute().parent
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    if not anchor.is_dir():
        raise UserInputError(f"cannot write {what} {path}: {anchor} is not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK) or _read_only_fs(anchor):
        raise UserInputError(f"cannot write {what} {path}: {anchor} is not writable")
    return path


def check_output_dir(out_dir: PathLike, what: str = "output folder") -> Path:
    """Fail early (before any heavy work) when ``out_dir`` cannot become a folder of outputs: it
    exists and is not a writable folder, or the nearest existing ancestor of its parent is not a
    writable folder. Returns that ancestor, where a staging folder beside ``out_dir`` can be made
    (missing parents are created only when the output is complete)."""
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserInputError(f"{what} {out_dir} exists and is not a folder")
    anchor = out_dir.parent
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    for folder in ([anchor, out_dir] if out_dir.is_dir() else [anchor]):
        if not folder.is_dir():
            raise UserInputError(f"cannot write {what} {out_dir}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK) or _read_only_fs(folder):
            raise UserInputError(f"cannot write {what} {out_dir}: {folder} is not writable")
    return anchor


def _read_only_fs(folder: Path) -> bool:
    """True on a read-only mount (/proc, /sys, a ro bind), which os.access does not see as root."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: PathLike, dst: PathLike) -> Path:
    """Give ``tmp`` (file or folder tree) default permissions and rename it to ``dst``. A file never
    replaces a folder (a clear error; ``tmp`` is left for the caller's cleanup)."""
    tmp, dst = Path(tmp), Path(dst)
    if dst.is_dir() and not tmp.is_dir():
        raise UserInputError(f"output {dst} is a folder; give a file name")
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
    dst = check_output_file(dst)
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
        card = read_json(side, "model card")
        if not isinstance(card, dict):
            raise UserInputError(f"model card {side} is not a JSON object")
        return card
    return {}


def write_model_card(checkpoint: PathLike, card: dict) -> Path:
    """Write the sidecar JSON of a checkpoint atomically."""
    return write_text(Path(checkpoint).with_suffix(".json"), json.dumps(card, indent=1, default=str))
