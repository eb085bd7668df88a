"""Command-line plumbing shared by every script: logging set-up, device choice, error handling.

Every script's ``main(argv)`` is wrapped by :func:`run_cli`, which turns a
:class:`~talkingface.errors.UserInputError` into one line on stderr and exit status 2, and makes
sure a KeyboardInterrupt stops quietly with status 130.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Optional, Sequence

from talkingface.errors import UserInputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    """Configure root logging once: INFO by default, DEBUG with ``verbose``.

    Status logs go to stdout; stderr is kept for errors (one line, see :func:`run_cli`) and for
    progress bars on a terminal, so a failed run's stderr is exactly its error line.
    """
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", stream=sys.stdout)
    # MediaPipe / TFLite write C++ log lines; keep them quiet unless asked for.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def resolve_device(name: str = "auto") -> str:
    """Map ``auto|cpu|cuda`` to a torch device string, falling back to CPU when CUDA is absent."""
    # Lazy: scripts import this module before parsing; torch loads only when a device is resolved.
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger(__name__).warning("CUDA requested but not available; using CPU")
        return "cpu"
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise UserInputError(f"unknown device {name!r}: use auto, cpu or cuda")
    return name


def run_cli(main: Callable[[Optional[Sequence[str]]], Optional[int]], argv: Optional[Sequence[str]] = None) -> None:
    """Run a script's ``main`` and exit with its status; user errors become one line and status 2."""
    try:
        rc = main(argv)
    except UserInputError as exc:
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(int(rc or 0))


def script_parser(doc: str) -> argparse.ArgumentParser:
    """Argument parser of a script whose module docstring is its help: the first paragraph is the
    description, the rest (usage examples, outputs) is shown after the options, formatting kept."""
    head, _, rest = (doc or "").strip().partition("\n\n")
    return argparse.ArgumentParser(description=head, epilog=rest or None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
