"""A small Chrome DevTools Protocol client: drive the system's headless Chromium from Python.

Used by the browser tests and ``bench/bench_web.py``. It launches Debian's ``chromium-headless-shell``
(or ``$TALKINGFACE_BROWSER``) with software WebGL2 (SwiftShader), autoplay allowed and a throw-away
profile, attaches to one page over the DevTools websocket (the ``websockets`` package) and offers
``navigate``, ``evaluate`` (awaiting promises, values returned as JSON) and ``screenshot``.
No browser is downloaded: :func:`find_browser` returns None when none is installed.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

BROWSER_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
         "--autoplay-policy=no-user-gesture-required", "--no-first-run", "--no-default-browser-check",
         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
         "--disable-backgrounding-occluded-windows", "--window-size=1280,1000", "--remote-debugging-port=0"]


def wait_for_line(stream, pattern: str, timeout_s: float) -> Optional[str]:
    """Read a child process's text ``stream`` line by line until one matches ``pattern`` (a regex with
    one group, searched anywhere in the line) and return that group; None at end of stream or after
    ``timeout_s`` seconds (checked between lines). Used to learn the address a child listens on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return None
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    return None


def _signal(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the child's whole process group when it leads one (``start_new_session=True``),
    else to the child alone. Debian's ``chromium-headless-shell`` is a shell wrapper that runs the real
    browser as its child: signalling the wrapper alone would leave the browser running, orphaned."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def stop_process(proc: subprocess.Popen, timeout_s: float) -> None:
    """Terminate a child process (and its group, see :func:`_signal`), kill it if it has not exited after
    ``timeout_s`` seconds, and reap it."""
    if proc.poll() is None:
        _signal(proc, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.wait()
    else:
        _signal(proc, signal.SIGKILL)  # the wrapper exited on its own: end what it left behind


class BrowserError(RuntimeError):
    """The browser could not be started, or a page call failed (the page's exception text is kept)."""


def find_browser() -> Optional[str]:
    """The headless Chromium to use: ``$TALKINGFACE_BROWSER`` or the first of BROWSER_NAMES on PATH."""
    env = os.environ.get("TALKINGFACE_BROWSER")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page. Use as a context manager; ``close()`` ends the process."""

    def __init__(self, executable: Optional[str] = None, extra_flags: Optional[List[str]] = None,
                 timeout_s: float = 30.0):
        # Lazy: websockets is needed only to drive a browser (tests, bench_web).
        from websockets.sync.client import connect

        exe = executable or find_browser()
        if exe is None:
            raise BrowserError("no headless Chromium found (apt-get install --no-install-recommends chromium-headless-shell)")
        self.profile = tempfile.mkdtemp(prefix="tf_browser_")
        self.proc = subprocess.Popen([exe, *FLAGS, *(extra_flags or []), f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace", start_new_session=True)
        assert self.proc.stderr is not None
        url = wait_for_line(self.proc.stderr, r"DevTools listening on (ws://\S+)", timeout_s)
        if url is None:
            self.close()
            raise BrowserError(f"{exe} did not start (no DevTools endpoint)")
        # keep draining stderr so the browser never blocks on a full pipe
        import threading

        self.console: List[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        self._conn = connect(url, max_size=64 * 1024 * 1024, open_timeout=timeout_s)
        self.ws = self._conn.__enter__()
        self._ids = itertools.count(1)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Runtime.enable", session=True)
        self.call("Page.enable", session=True)

    def _drain(self) -> None:
        for line in self.proc.stderr:
            if len(self.console) < 2000:
                self.console.append(line.rstrip())

    def call(self, method: str, params: Optional[Dict] = None, session: bool = False, timeout_s: float = 120.0) -> Dict:
        """Send one CDP command and wait for its reply (events received meanwhile are collected)."""
        msg_id = next(self._ids)
        msg: Dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{method}: no reply in {timeout_s:.0f} s")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if reply.get("method") == "Runtime.consoleAPICalled":
                args = reply["params"].get("args", [])
                self.console.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif reply.get("method") == "Runtime.exceptionThrown":
                d = reply["params"]["exceptionDetails"]
                self.console.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))

    def navigate(self, url: str, wait_for: Optional[str] = None, timeout_s: float = 120.0) -> None:
        """Open ``url``; with ``wait_for`` (a JS expression), poll until it is truthy."""
        self.call("Page.navigate", {"url": url}, session=True)
        if wait_for:
            self.wait_for(wait_for, timeout_s)

    def wait_for(self, expression: str, timeout_s: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"timed out waiting for {expression!r}; console: {self.console[-5:]}")

    def evaluate(self, expression: str, timeout_s: float = 120.0) -> Any:
        """Evaluate a JS expression in the page (promises awaited); returns its JSON value."""
        res = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                        session=True, timeout_s=timeout_s)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise BrowserError(str(d.get("exception", {}).get("description") or d.get("text")))
        return res.get("result", {}).get("value")

    def set_files(self, selector: str, paths: List[Path]) -> None:
        """Choose files in the page's ``<input type=file>`` matching ``selector`` (as a user would)."""
        root = self.call("DOM.getDocument", {"depth": 0}, session=True)["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector}, session=True)["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(Path(p).resolve()) for p in paths]},
                  session=True)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            if getattr(self, "_conn", None) is not None:
                self._conn.__exit__(None, None, None)
        finally:
            stop_process(self.proc, 10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
