"""The script wrapper (talkingface.util.cli.run_cli) on signals and terminals, with real processes.

- Ctrl-C (SIGINT) sent to a real ``demo_mini.py`` run while it is encoding, SIGTERM to a script
  writing a video and an atomic file: exit 130 / 143, the one stderr line ``interrupted``, and no
  temporary file or partial output left.
- A progress bar on a real terminal (a pty) is finished before the error line, so ``error:`` starts
  a line of its own (issue 11: ``demo_mini:   0%| … |error: output folder does not exist``); with
  stderr not a terminal no bar is drawn at all and stderr is exactly the error line.
"""
from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from talkingface.config.paths import SAMPLE_AVATAR_VIDEO, SAMPLE_SPEECH_EN

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")

# A script whose main draws a progress bar, advances it, then fails with a user error.
BAR_THEN_ERROR = """
from talkingface.errors import UserInputError
from talkingface.util.cli import progress, run_cli

def main(argv=None):
    bar = progress(total=100, desc="demo_mini", unit="frame")
    bar.update(3)
    raise UserInputError("output folder does not exist: /nowhere")

run_cli(main)
"""

# A script that keeps an atomic file and a video open and writes frames until it is stopped.
WRITE_FOREVER = """
import sys
import numpy as np
from pathlib import Path
from talkingface.util.cli import run_cli
from talkingface.util.files import atomic_write
from talkingface.util.media import VideoWriter

def main(argv=None):
    out = Path(sys.argv[1])
    with atomic_write(out / "table.txt") as tmp, VideoWriter(out / "video.mp4") as writer:
        tmp.write_text("partial")
        frame = np.zeros((64, 64, 3), np.uint8)
        while True:
            writer.write(frame)

run_cli(main)
"""


@pytest.fixture(scope="module")
def short_pack(tmp_path_factory) -> Path:
    """An asset pack of the first 1.2 s (30 frames) of the built-in sample video."""
    from talkingface.preparation import PrepConfig, prepare_mini_avatar
    from talkingface.mini_pack import write_avatar_pack

    avatar = tmp_path_factory.mktemp("short_avatar") / "avatar"
    prepare_mini_avatar(SAMPLE_AVATAR_VIDEO, avatar, PrepConfig(max_seconds=1.2, progress=False))
    write_avatar_pack(avatar)
    return avatar / "assets"


def test_ctrl_c_mid_run_leaves_nothing(short_pack, tmp_path):
    """SIGINT (what Ctrl-C sends) to a real demo_mini.py run while it encodes."""
    _signal_mid_run(short_pack, tmp_path, signal.SIGINT, 130)


def test_sigterm_while_writing_leaves_nothing(tmp_path):
    """SIGTERM to a script writing a video (the real encoder) and an atomic file: exit 143, no trace."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(out)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len([p for p in out.iterdir() if p.name.startswith(".tmp_")]) < 2:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the writers never started"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr
    assert [ln for ln in stderr.splitlines() if ln.strip()] == ["interrupted"]
    assert sorted(p.name for p in out.iterdir()) == []


def _signal_mid_run(short_pack, tmp_path, sig, code):
    from talkingface.util.media import load_audio, save_wav

    # a minute of speech: the fast path renders the 9.7-s sample in about 2 s, so with it the signal could
    # land after the run (during interpreter shutdown, where SIGINT kills with the default action)
    speech = load_audio(SAMPLE_SPEECH_EN)
    long_wav = save_wav(tmp_path / "speech_60s.wav", np.tile(speech, 7)[: 60 * 16000])
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, str(REPO / "demo_mini.py"), str(short_pack), str(long_wav),
                             str(out / "talk.mp4"), "--mosaic", str(out / "mouths.png")],
                            cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not any(p.name.startswith(".tmp_") for p in out.iterdir()):  # the encoder has started
            assert proc.poll() is None, f"finished before the signal: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "the encoder never started"
            time.sleep(0.1)
        time.sleep(1.0)  # a few frames into the encoding
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr
    assert [ln for ln in stderr.splitlines() if ln.strip()] == ["interrupted"]
    assert sorted(p.name for p in out.iterdir()) == []


def test_progress_bar_then_error_on_a_terminal():
    """Issue 11: the error line must not be glued to a progress bar."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal has a size
    proc = subprocess.Popen([sys.executable, "-c", BAR_THEN_ERROR], env=ENV, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 2
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "demo_mini" in text, f"no progress bar was drawn on the terminal: {text!r}"
    before, sep, after = text.partition("error: output folder does not exist")
    assert sep, text
    assert before.endswith("\n"), f"the error does not start its own line: {text!r}"


def test_no_progress_bar_when_stderr_is_not_a_terminal():
    proc = subprocess.run([sys.executable, "-c", BAR_THEN_ERROR], env=ENV, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "error: output folder does not exist: /nowhere\n"
