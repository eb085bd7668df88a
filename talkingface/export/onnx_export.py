"""Export the inference graphs of :mod:`talkingface.export.graphs` to ONNX files, with a manifest.

    export_models(["all"], "onnx_out/")   # what ``python -m talkingface.export onnx`` runs

Every file is written atomically, checked against torch on deterministic example inputs with
ONNX Runtime (the max |delta| goes into the manifest) and named in ``manifest.json`` together with
its source checkpoint (path, sha256 of the file, and for DINet_mini the weights id that asset packs
record as ``ref_checkpoint``). docs/ONNX.md describes every graph's inputs and outputs.

The TorchScript exporter is used at opset 17: AdaAT runs in its planar form (2-D ``GridSample``),
so no graph needs the 5-D sampling of opset 20, and the LSTM exports as one ONNX ``LSTM`` node.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from mini_live.generate_fusion_mask import load_fusion_masks
from talkingface.audio_loader import find_audio_checkpoint
from talkingface.config.paths import render_checkpoint
from talkingface.errors import UserInputError
from talkingface.export import graphs
from talkingface.export.graphs import OPSET, onnx_bytes
from talkingface.export.runtime import OnnxGraph
from talkingface.mini_pack import DEFAULT_CHECKPOINT, weights_id
from talkingface.models.audio2bs_lstm import load_audio2feature
from talkingface.models.DINet import DINet_five_Ref, load_dinet_state_dict
from talkingface.models.DINet_mini import DINet_mini_pipeline, load_dinet_mini_state
from talkingface.render_model import RENDER_CHECKPOINT_HELP
from talkingface.util.files import atomic_write, write_text

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
MANIFEST = "manifest.json"
#: --what choices: each names the graphs it writes (file = <graph>.onnx).
TARGETS: Dict[str, Sequence[str]] = {
    "audio_step": ("audio_step",),
    "audio_offline": ("audio_offline",),
    "mini": ("mini_pipeline", "mini_network", "mini_ref"),
    "dinet": ("dinet", "dinet_ref"),
}


@dataclass
class Sources:
    """The checkpoints to export from (None: that family's default; DINet has no shipped default)."""

    audio: Optional[Path] = None
    mini: Optional[Path] = None
    dinet: Optional[Path] = None


def file_sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parity(model_bytes: bytes, module: nn.Module, name: str, seed: int = 1) -> float:
    """Max |ONNX Runtime - torch| over all outputs of graph ``name`` on example inputs (seed ``seed``)."""
    inputs = graphs.example_inputs(name, seed=seed)
    with torch.no_grad():
        ref = module(*inputs)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    got = OnnxGraph(model_bytes, threads=1)(*[t.numpy() for t in inputs])
    return float(max(np.abs(g - r.numpy()).max() for g, r in zip(got, ref)))


# ------------------------------------------------------------------------------------------ sources
def audio_module(checkpoint: Optional[PathLike]):
    """(net, checkpoint path): the blendshape audio model that drives the mini renderer by default."""
    path = Path(checkpoint) if checkpoint is not None else find_audio_checkpoint("blendshape")
    return load_audio2feature(path), path


def mini_modules(checkpoint: Optional[PathLike]):
    """(pipeline with the real fusion masks and the interior blend, checkpoint path, weights id)."""
    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise UserInputError(f"DINet_mini checkpoint not found: {path}")
    state = load_dinet_mini_state(path)
    pipe = DINet_mini_pipeline(3, 12, *load_fusion_masks(), blend="interior").eval()
    pipe.infer_model.load_state_dict(state, strict=True)
    return pipe, path, weights_id(state)


def dinet_module(checkpoint: Optional[PathLike]):
    """(DINet_five_Ref, checkpoint path); the default is checkpoint/render.pth."""
    path = Path(checkpoint) if checkpoint is not None else render_checkpoint()
    if not path.is_file():
        raise UserInputError(f"{path} not found; {RENDER_CHECKPOINT_HELP}")
    net = DINet_five_Ref(6, 30)
    load_dinet_state_dict(net, path)
    return net.eval(), path


def build_graph(name: str, sources: Sources):
    """(graph module, source description dict) of graph ``name``."""
    if name.startswith("audio"):
        net, path = audio_module(sources.audio)
        module = graphs.AudioStepGraph(net) if name == "audio_step" else graphs.AudioOfflineGraph(net)
        return module, {"checkpoint": str(path), "sha256": file_sha256(path)}
    if name.startswith("mini"):
        pipe, path, wid = mini_modules(sources.mini)
        module = {"mini_pipeline": lambda: graphs.MiniPipelineGraph(pipe),
                  "mini_network": lambda: graphs.MiniNetworkGraph(pipe.infer_model),
                  "mini_ref": lambda: graphs.MiniRefGraph(pipe.infer_model)}[name]()
        return module, {"checkpoint": str(path), "sha256": file_sha256(path), "weights_id": wid}
    net, path = dinet_module(sources.dinet)
    module = graphs.DINetGraph(net) if name == "dinet" else graphs.DINetRefGraph(net)
    return module, {"checkpoint": str(path), "sha256": file_sha256(path)}


# ------------------------------------------------------------------------------------------ export
def resolve_targets(what: Sequence[str]) -> List[str]:
    """--what values -> graph names, in a stable order ("all" = every target)."""
    names: List[str] = []
    for w in what:
        if w == "all":
            keys = list(TARGETS)
        elif w in TARGETS:
            keys = [w]
        else:
            raise UserInputError(f"unknown export target {w!r}: choose from {', '.join(list(TARGETS) + ['all'])}")
        for k in keys:
            names.extend(n for n in TARGETS[k] if n not in names)
    return names


def export_models(what: Sequence[str], out_dir: PathLike, sources: Optional[Sources] = None,
                  opset: int = OPSET, check: bool = True) -> Dict:
    """Export the graphs of ``what`` into ``out_dir`` and (re)write its ``manifest.json``.

    With "all", the DINet graphs are skipped with a warning when no DINet checkpoint exists (none
    is shipped); asked for by name, a missing checkpoint is an error. Returns the manifest dict.
    """
    sources = sources or Sources()
    out_dir = Path(out_dir)
    names = resolve_targets(what)
    manifest_path = out_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.update(format=1, opset=opset, torch=torch.__version__, python=platform.python_version())
    files = manifest.setdefault("files", {})
    for name in names:
        try:
            module, source = build_graph(name, sources)
        except UserInputError as exc:
            if name.startswith("dinet") and "all" in what and sources.dinet is None:
                log.warning("skipping %s: %s", name, exc)
                continue
            raise
        data = onnx_bytes(module, name, opset)
        path = out_dir / f"{name}.onnx"
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
        spec = graphs.GRAPHS[name]
        entry = {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                 "inputs": {n: list(s) for n, s in spec.inputs}, "outputs": list(spec.outputs),
                 "dynamic_axes": {k: {str(a): v for a, v in d.items()} for k, d in spec.dynamic_axes().items()},
                 "dtype": "float32", "source": source}
        if check:
            entry["max_abs_diff_vs_torch"] = parity(data, module, name)
        files[name] = entry
        log.info("wrote %s (%.0f kB)%s", path, len(data) / 1024,
                 f", max |delta| vs torch {entry['max_abs_diff_vs_torch']:.2e}" if check else "")
    write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return manifest
