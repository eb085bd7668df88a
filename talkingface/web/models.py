"""What the player runs: the ONNX files in the models folder, described for the page, and the
server-side audio model of the stream mode.

``GET /api/models`` answers::

    {"models": {"dinet_mini": ID, "audio": ID},            # weights ids a pack must name (pack_web)
     "pipeline": {"url", "inputs": {"source", "gl", "gl_warp", "ref"}, "output"},
     "audio_step": {"url", "inputs": {"fbank", "h", "c"}, "outputs": {"coeffs", "h", "c"}, "state_shape"},
     "lookahead_steps": L, "fps": 25, "sample_rate": 16000,
     "ort": {"base": "/vendor/ort/", "module": "ort.wasm.min.mjs"}}
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Dict, Optional

from talkingface.errors import UserInputError

log = logging.getLogger(__name__)

MANIFEST = "dev_manifest.json"
PIPELINE_FILE = "mini_pipeline.onnx"
AUDIO_STEP_FILE = "audio_step.onnx"


class ModelsUnavailable(UserInputError):
    """The player's models or runtime are not installed (the server answers 503)."""


class ModelRegistry:
    """The ONNX files of ``models_dir`` and (lazily) the Python audio model for streaming."""

    def __init__(self, models_dir: Path, audio_checkpoint: Optional[Path] = None):
        self.models_dir = Path(models_dir)
        self.audio_checkpoint = audio_checkpoint
        self._audio = None
        self._lock = threading.Lock()

    def _manifest(self) -> Dict:
        path = self.models_dir / MANIFEST
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def model_ids(self) -> Dict[str, str]:
        m = self._manifest()
        return {k: m[k] for k in ("dinet_mini", "audio") if m.get(k)}

    def file(self, name: str) -> Optional[Path]:
        if name not in (PIPELINE_FILE, AUDIO_STEP_FILE):
            return None
        path = self.models_dir / name
        return path if path.is_file() else None

    def descriptor(self, ort_ready: bool = True) -> Dict:
        m = self._manifest()
        missing = [f for f in (PIPELINE_FILE, AUDIO_STEP_FILE) if self.file(f) is None]
        if not m or missing:
            raise ModelsUnavailable(f"the ONNX models are not in {self.models_dir} yet "
                                f"(missing: {', '.join(missing) or MANIFEST}): export them (see README)")
        if not ort_ready:
            raise ModelsUnavailable("onnxruntime-web is not installed: run `npm ci` in the repository (see README)")
        return {
            "models": self.model_ids(),
            "pipeline": {"url": f"/models/{PIPELINE_FILE}",
                         "inputs": {"source": "source", "gl": "gl", "gl_warp": "gl_warp", "ref": "ref_feature"},
                         "output": "out"},
            "audio_step": {"url": f"/models/{AUDIO_STEP_FILE}", "inputs": {"fbank": "fbank", "h": "h0", "c": "c0"},
                           "outputs": {"coeffs": "coeffs", "h": "h1", "c": "c1"}, "state_shape": m["state_shape"]},
            "lookahead_steps": int(m["lookahead_steps"]),
            "fps": 25,
            "sample_rate": 16000,
            "ort": {"base": "/vendor/ort/", "module": "ort.wasm.min.mjs"},
        }

    def audio_model(self):
        """The shared blendshape AudioModel (loaded once)."""
        with self._lock:
            if self._audio is None:
                from talkingface.render_model_mini import load_mini_audio

                self._audio, _ = load_mini_audio(self.audio_checkpoint)
            return self._audio

    def audio_stream(self):
        """A streaming copy of the audio model with its own state (one per websocket client)."""
        model = self.audio_model()
        if model is None:
            raise UserInputError("no audio model")
        return model.stream()
