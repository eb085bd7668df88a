"""Run many command-line invocations of the project's scripts in one Python process.

Used by tests/test_bad_input_matrix.py: starting a fresh interpreter per case costs 5-10 s of imports
(torch, OpenCV, MediaPipe) on a loaded machine, so the matrix runs every case here, one after the
other, each exactly as ``python SCRIPT ARGS`` would (``runpy`` with ``__name__ == "__main__"``,
``sys.argv`` and ``sys.path[0]`` set, its own working directory). The file descriptors 1 and 2 are
redirected per case, so what C libraries and child processes (ffmpeg) write is captured too.

Usage: python tests/bad_input_runner.py CASES.json RESULTS.json
CASES.json: [{"id", "script" (path, or "-m module"), "argv": [...], "cwd", "watch": [folders]}].
RESULTS.json: [{"id", "rc", "stderr", "new_files", "seconds"}]; rc 1 with the traceback as stderr
when the script raised (what the interpreter would print and return).
"""
from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

CASE_TIMEOUT_S = 120


class CaseTimeout(BaseException):
    """A case ran past CASE_TIMEOUT_S (e.g. a blocking read of a FIFO)."""


def _on_alarm(signum, frame):
    raise CaseTimeout(f"case timed out after {CASE_TIMEOUT_S} s")


def snapshot(folders) -> set:
    """Every path (files and folders, hidden ones included) under ``folders``."""
    found = set()
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            found.update(os.path.join(root, n) for n in dirs + files)
    return found


def run_case(case: dict) -> dict:
    before = snapshot(case["watch"])
    err_file = tempfile.TemporaryFile()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_out, saved_err, saved_cwd = os.dup(1), os.dup(2), os.getcwd()
    saved_argv, saved_path0 = list(sys.argv), sys.path[0]
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(devnull, 1)
    os.dup2(err_file.fileno(), 2)
    rc = 0
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        os.chdir(case["cwd"])
        script = case["script"]
        if script.startswith("-m "):
            module = script[3:]
            sys.argv = [module] + case["argv"]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [script] + case["argv"]
            sys.path[0] = str(Path(script).resolve().parent)
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        rc = code if isinstance(code, int) else (0 if code is None else 1)
        if not isinstance(code, (int, type(None))):
            sys.stderr.write(f"{code}\n")
    except BaseException:  # what the interpreter would print for an uncaught exception
        traceback.print_exc()
        rc = 1
    finally:
        signal.alarm(0)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        os.close(devnull)
        os.chdir(saved_cwd)
        sys.argv, sys.path[0] = saved_argv, saved_path0
    err_file.seek(0)
    stderr = err_file.read().decode("utf-8", "replace")
    err_file.close()
    new_files = sorted(snapshot(case["watch"]) - before)
    return {"id": case["id"], "rc": rc, "stderr": stderr, "new_files": new_files,
            "seconds": round(time.perf_counter() - t0, 2)}


def main() -> int:
    cases = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    results = [run_case(case) for case in cases]
    Path(sys.argv[2]).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
