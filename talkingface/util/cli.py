"""Command-line plumbing shared by every script: logging set-up, device choice, progress bars,
error handling.

Every script's ``main(argv)`` is wrapped by :func:`run_cli`, which turns a
:class:`~talkingface.errors.UserInputError` into one line on stderr and exit status 2, and makes
sure Ctrl-C (SIGINT) or SIGTERM stops quietly with status 130 / 143 after every ``finally`` and
context manager has run, so atomic writers remove their temporary files. Progress bars come from
:func:`progress`: drawn only when stderr is a terminal, and closed before an error line is printed,
so the error always starts its own line.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from tqdm import tqdm

from talkingface.errors import UserInputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    """Configure root logging once: INFO by default, DEBUG with ``verbose``.

    Status logs go to stdout; stderr is kept for errors (one line, see :func:`run_cli`) and for
    progress bars on a terminal, so a failed run's stderr is exactly its error line.
    """
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", stream=sys.stdout)
    logging.captureWarnings(True)  # library warnings join the log instead of stderr
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


def stderr_is_terminal() -> bool:
    """True when stderr is an interactive terminal (progress bars are drawn only then)."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def progress(iterable: Optional[Iterable] = None, **kwargs) -> tqdm:
    """A tqdm progress bar on stderr that is drawn only when stderr is a terminal (never in logs,
    pipes or tests); ``show=False`` hides it anyway (e.g. a ``--quiet`` flag). Other keyword
    arguments go to tqdm (``total``, ``desc``, ``unit``, ``initial``, ``leave``)."""
    show = kwargs.pop("show", True)
    return tqdm(iterable, file=sys.stderr, disable=not (show and stderr_is_terminal()), dynamic_ncols=True, **kwargs)


def _close_progress_bars() -> None:
    """Finish every open progress bar's line, so what follows on stderr starts a line of its own."""
    for bar in list(getattr(tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # a bar half torn down by the error itself; nothing more to draw
            pass


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM (SIGINT raises KeyboardInterrupt), so that cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def error_line(message: object) -> str:
    """The one stderr line of a failed run: ``error: `` and the message with its whitespace folded."""
    return "error: " + (" ".join(str(message).split()) or message.__class__.__name__)


def run_cli(main: Callable[[Optional[Sequence[str]]], Optional[int]], argv: Optional[Sequence[str]] = None) -> None:
    """Run a script's ``main`` and exit with its status: user errors become one line and status 2,
    SIGINT / SIGTERM status 130 / 143 (after cleanup). Anything else is a bug and keeps its traceback."""
    try:
        signal.signal(signal.SIGTERM, _raise_interrupted)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker thread)
        pass
    try:
        rc = main(argv)
    except UserInputError as exc:
        _close_progress_bars()
        sys.stderr.write(error_line(exc) + "\n")
        sys.exit(2)
    except KeyboardInterrupt as exc:
        _exit_interrupted(exc)
    except ctypes.ArgumentError as exc:
        # A signal that lands while ctypes converts a call's arguments (PyOpenGL) surfaces wrapped in
        # ArgumentError with the interrupt as its context: it is still Ctrl-C / SIGTERM, not a bug.
        # (ctypes may keep only the name in the message, so both forms are recognised).
        if isinstance(exc.__context__, KeyboardInterrupt):
            _exit_interrupted(exc.__context__)
        if "KeyboardInterrupt" in str(exc):
            _exit_interrupted(KeyboardInterrupt())
        raise
    sys.exit(int(rc or 0))


def _exit_interrupted(exc: KeyboardInterrupt) -> None:
    """Close progress bars, say so on stderr and exit 128 + the signal number (130 SIGINT, 143 SIGTERM)."""
    _close_progress_bars()
    sys.stderr.write("interrupted\n")
    sys.exit(128 + getattr(exc, "signum", signal.SIGINT))


class ScriptParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are :class:`UserInputError` (one ``error:`` line, exit 2
    through :func:`run_cli`) instead of argparse's usage block."""

    def error(self, message: str):
        raise UserInputError(f"{message} (see {self.prog} --help)")


def script_parser(doc: str) -> argparse.ArgumentParser:
    """Argument parser of a script whose module docstring is its help: the first paragraph is the
    description, the rest (usage examples, outputs) is shown after the options, formatting kept."""
    head, _, rest = (doc or "").strip().partition("\n\n")
    return ScriptParser(description=head, epilog=rest or None, formatter_class=argparse.RawDescriptionHelpFormatter)


def demo_parser(doc: str, source: str, source_help: str) -> argparse.ArgumentParser:
    """:func:`script_parser` of a synthesis demo (demo.py, demo_mini.py, demo_moda.py) with its three
    positional arguments: the prepared ``source`` (avatar or person folder), the speech file and the
    output mp4 (``args.audio``, ``args.out``)."""
    ap = script_parser(doc)
    ap.add_argument(source, type=Path, help=source_help)
    ap.add_argument("audio", type=Path, help="speech audio (any format ffmpeg reads)")
    ap.add_argument("out", type=Path, help="output mp4")
    return ap


def parse_verbose(ap: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Add ``-v/--verbose``, parse ``argv`` and set up logging (debug with -v): a script's last step of
    argument handling."""
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    return args
