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

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Dict, Optional

from talkingface.audio_loader import find_audio_checkpoint, load_audio_model
from talkingface.audio_model import MODEL_LOOKAHEAD_STEPS
from talkingface.errors import UserInputError
from talkingface.util.files import read_model_card

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"  # written by `python -m talkingface.export onnx` (docs/ONNX.md)
PIPELINE = "mini_pipeline"
AUDIO_STEP = "audio_step"
PIPELINE_IO = ({"source": "source", "gl": "gl", "gl_warp": "gl_warp", "ref": "ref_feature"}, "out")
AUDIO_IO = ({"fbank": "fbank", "h": "h0", "c": "c0"}, {"coeffs": "coeffs", "h": "h1", "c": "c1"})
EXPORT_COMMAND = "python -m talkingface.export onnx --what audio_step --what mini --out {out}"


class ModelsUnavailable(UserInputError):
    """The player's models or runtime are not installed (the server answers 503)."""


def file_id(path: Path) -> str:
    """The id packs use for the audio model: the first 16 hex digits of its checkpoint's sha256."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class ModelRegistry:
    """The ONNX files of ``models_dir`` (exported by the command above) and, lazily, the Python audio
    model of the stream mode (``audio_checkpoint``, default the shipped blendshape model)."""

    def __init__(self, models_dir: Path, audio_checkpoint: Optional[Path] = None):
        self.models_dir = Path(models_dir)
        self._audio_checkpoint = audio_checkpoint
        self._audio = None
        self._ids: Dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def audio_checkpoint(self) -> Path:
        if self._audio_checkpoint is None:
            self._audio_checkpoint = find_audio_checkpoint("blendshape")
        return Path(self._audio_checkpoint)

    def export_command(self) -> str:
        return EXPORT_COMMAND.format(out=self.models_dir)

    def _manifest(self) -> Dict:
        try:
            return json.loads((self.models_dir / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    def model_ids(self) -> Dict[str, str]:
        """The ids a pack must name: ``dinet_mini`` (weights id of the pipeline's checkpoint) and
        ``audio`` (file id of the audio step's checkpoint), from the manifest."""
        files = self._manifest().get("files", {})
        ids = {}
        weights = files.get(PIPELINE, {}).get("source", {}).get("weights_id")
        if weights:
            ids["dinet_mini"] = str(weights)
        sha = files.get(AUDIO_STEP, {}).get("source", {}).get("sha256")
        if sha:
            ids["audio"] = str(sha)[:16]
        return ids

    def file(self, name: str) -> Optional[Path]:
        entry = self._manifest().get("files", {})
        for graph in (PIPELINE, AUDIO_STEP):
            if entry.get(graph, {}).get("file") == name and (self.models_dir / name).is_file():
                return self.models_dir / name
        return None

    def descriptor(self, ort_ready: bool = True) -> Dict:
        """The /api/models answer (module doc); ModelsUnavailable when the player cannot run."""
        files = self._manifest().get("files", {})
        missing = [g for g in (PIPELINE, AUDIO_STEP) if g not in files or self.file(files[g].get("file", "")) is None]
        if missing:
            raise ModelsUnavailable(f"the ONNX models ({', '.join(missing)}) are not in {self.models_dir}: "
                                    f"run `{self.export_command()}` (serve_web.py does it on start-up)")
        for graph, names in ((PIPELINE, list(PIPELINE_IO[0].values())), (AUDIO_STEP, list(AUDIO_IO[0].values()))):
            if sorted(files[graph].get("inputs", {})) != sorted(names):
                raise ModelsUnavailable(f"{graph}.onnx has inputs {sorted(files[graph].get('inputs', {}))}, "
                                        f"the player feeds {sorted(names)}: re-export it")
        if "audio_file_id" not in self._ids:
            self._ids["audio_file_id"] = file_id(self.audio_checkpoint)
        if self.model_ids().get("audio") != self._ids["audio_file_id"]:
            raise ModelsUnavailable(f"audio_step.onnx was exported from another audio checkpoint than the server's "
                                    f"{self.audio_checkpoint.name}: run `{self.export_command()}`")
        if not ort_ready:
            raise ModelsUnavailable("onnxruntime-web is not installed: run `npm ci` in the repository (see README)")

        lookahead = int(read_model_card(self.audio_checkpoint).get("lookahead_steps", MODEL_LOOKAHEAD_STEPS))
        return {
            "models": self.model_ids(),
            "pipeline": {"url": f"/models/{files[PIPELINE]['file']}", "inputs": PIPELINE_IO[0], "output": PIPELINE_IO[1]},
            "audio_step": {"url": f"/models/{files[AUDIO_STEP]['file']}", "inputs": AUDIO_IO[0], "outputs": AUDIO_IO[1],
                           "state_shape": list(files[AUDIO_STEP]["inputs"]["h0"])},
            "lookahead_steps": lookahead,
            "fps": 25,
            "sample_rate": 16000,
            "ort": {"base": "/vendor/ort/", "module": "ort.wasm.min.mjs"},
        }

    def audio_model(self):
        """The shared blendshape AudioModel (loaded once)."""
        with self._lock:
            if self._audio is None:
                self._audio, _ = load_audio_model(self.audio_checkpoint, target="blendshape", basis_required=False)
            return self._audio

    def audio_stream(self):
        """A streaming copy of the audio model with its own state (one per websocket client)."""
        model = self.audio_model()
        if model is None:
            raise UserInputError("no audio model")
        return model.stream()
