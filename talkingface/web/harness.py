"""Shared set-up of the browser tests and bench/bench_web.py: the ONNX models, the server as a child
process on 127.0.0.1, and helpers to read the page's frames back.

Nothing here downloads anything: it needs the system's headless Chromium, ``npm ci``'s
onnxruntime-web and the Python packages of the export (onnx, onnxruntime); :func:`missing` says what
is absent so callers can skip.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from talkingface.config.paths import ORT_WEB_DIR, PACKAGE_ROOT  # PACKAGE_ROOT: where serve_web.py lives
from talkingface.web.cdp import find_browser, stop_process, wait_for_line

ORT_DIR = ORT_WEB_DIR


def missing() -> Optional[str]:
    """Why the browser tests cannot run here, or None."""
    if find_browser() is None:
        return "no headless Chromium (apt-get install --no-install-recommends chromium-headless-shell)"
    if not (ORT_DIR / "ort.wasm.min.mjs").is_file():
        return "onnxruntime-web is not installed (run `npm ci` in the repository)"
    for mod in ("onnx", "onnxruntime", "fastapi", "uvicorn", "websockets"):
        if importlib.util.find_spec(mod) is None:
            return f"python package {mod} is not installed"
    return None


def export_models(out: Path) -> Path:
    """The player's ONNX models in ``out`` (``$TALKINGFACE_WEB_MODELS`` reuses a folder made before)."""
    reuse = os.environ.get("TALKINGFACE_WEB_MODELS")
    if reuse and (Path(reuse) / "manifest.json").is_file():
        return Path(reuse)
    subprocess.run([sys.executable, "-m", "talkingface.export", "onnx", "--what", "audio_step", "--what", "mini",
                    "--out", str(out)], cwd=PACKAGE_ROOT, check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT)))
    return out


class Server:
    """``serve_web.py --port 0`` as a child process; ``url`` is its address."""

    def __init__(self, packs: Path, work: Path, models: Path, extra=()):
        self.proc = subprocess.Popen(
            [sys.executable, str(PACKAGE_ROOT / "serve_web.py"), "--port", "0", "--packs", str(packs), "--work", str(work),
             "--models", str(models), "--ort", str(ORT_DIR), "--no_sample", "--no_prepare", *extra],
            cwd=PACKAGE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT)))
        assert self.proc.stdout is not None
        self.url = wait_for_line(self.proc.stdout, r"^serving (http://\S+)", 120)
        if self.url is None:
            self.close()
            raise RuntimeError("serve_web.py did not start")

    def close(self) -> None:
        stop_process(self.proc, 15)


def decode_rgba(b64: str, w: int, h: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(h, w, 4)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


STILL_JS = """(async () => {
  const { toBase64 } = await import('/static/js/diagnostics.js');
  const r = await __player.renderStill(%d, %s);
  const [x0, y0, x1, y1] = r.rect;
  return {rect: r.rect, before: toBase64(r.before), after: toBase64(r.after), ms: r.ms};
})()"""


def render_still(page, index: int, coeffs) -> dict:
    """Compose video frame ``index`` with ``coeffs`` in the page: {rect, before, after (H, W, 4) uint8, ms}."""

    res = page.evaluate(STILL_JS % (index, json.dumps([float(c) for c in coeffs])))
    x0, y0, x1, y1 = res["rect"]
    res["before"] = decode_rgba(res["before"], x1 - x0, y1 - y0)
    res["after"] = decode_rgba(res["after"], x1 - x0, y1 - y0)
    return res
