"""ONNX Runtime sessions for the exported graphs: the fast CPU inference path.

ONNX Runtime is optional (``onnxruntime`` in requirements.txt); :func:`ort_available` says whether
it imports, and every caller falls back to torch when it does not. Graphs are exported from the
loaded torch modules on first use and cached on disk by content (graph name + weights hash +
exporter versions; folder: ``talkingface.config.paths.onnx_cache_dir``), so a run with the same weights loads the file in milliseconds.

    graph = session_for(graphs.MiniNetworkGraph(net), "mini_network", threads=1)
    (mouth,) = graph(driving, ref_feature)      # numpy float32 in and out
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from talkingface.config.paths import onnx_cache_dir
from talkingface.errors import UserInputError
from talkingface.export.graphs import OPSET, onnx_bytes
from talkingface.util.files import atomic_write

log = logging.getLogger(__name__)

#: Bumped when a graph wrapper changes, so stale cached files are not reused.
GRAPH_VERSION = 3


def ort_available() -> bool:
    """True when onnxruntime imports and the ONNX exporter's ``onnx`` package is installed.

    ``onnx`` is only located, not imported: a run whose graphs are all cached never needs it, and
    importing it (with ml_dtypes) costs about 0.5 s of start-up."""
    try:
        import onnxruntime  # noqa: F401  (optional dependency: only probed here)
    except ImportError:
        return False
    return importlib.util.find_spec("onnx") is not None


def resolve_engine(engine: str = "auto") -> str:
    """``auto`` -> ``onnx`` when ONNX Runtime is installed, else ``torch``; ``onnx`` without it is an error."""
    engine = (engine or "auto").lower()
    if engine not in ("auto", "onnx", "torch"):
        raise UserInputError(f"unknown inference engine {engine!r}: use auto, onnx or torch")
    if engine == "auto":
        return "onnx" if ort_available() else "torch"
    if engine == "onnx" and not ort_available():
        raise UserInputError("--engine onnx needs onnxruntime and onnx (pip install -r requirements.txt)")
    return engine


class OnnxGraph:
    """One ONNX Runtime CPU session. ``threads``: intra-op threads (the user's ``--threads``).

    Call with the inputs in the graph's order (numpy arrays: float32, or uint8 where the graph takes
    images; other dtypes are cast to float32); returns the list of outputs as numpy arrays.
    """

    def __init__(self, model: Union[bytes, str, Path], threads: int = 1):
        import onnxruntime as ort  # optional dependency (see ort_available)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(int(threads), 1)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")  # no slow paths on tiny values
        model = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.input_names: List[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: List[str] = [o.name for o in self.session.get_outputs()]
        self.threads = opts.intra_op_num_threads

    def __call__(self, *inputs: np.ndarray) -> List[np.ndarray]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(inputs)}")
        feeds = {n: np.ascontiguousarray(x) if x.dtype in (np.float32, np.uint8) else np.ascontiguousarray(x, np.float32)
                 for n, x in zip(self.input_names, inputs)}
        return self.session.run(self.output_names, feeds)


def module_digest(module: nn.Module) -> str:
    """Content hash of a module's parameters and buffers (names, shapes, values)."""
    h = hashlib.sha256()
    state = module.state_dict(keep_vars=False)
    for k in sorted(state):
        h.update(k.encode())
        h.update(str(tuple(state[k].shape)).encode())
        h.update(state[k].detach().cpu().contiguous().float().numpy().tobytes())
    for name, buf in module.named_buffers():  # non-persistent buffers (masks, grids) too
        h.update(name.encode())
        h.update(buf.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]


def cached_onnx(module: nn.Module, name: str, cache_dir: Optional[Path] = None) -> bytes:
    """The ONNX bytes of graph ``name`` of ``module``, exported once and cached under ``cache_dir``."""
    cache_dir = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    key = f"{name}-v{GRAPH_VERSION}-o{OPSET}-t{torch.__version__.split('+')[0]}-{module_digest(module)}.onnx"
    path = cache_dir / key
    if path.is_file():
        return path.read_bytes()
    data = onnx_bytes(module, name)
    try:
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:  # a read-only home is not an error: the graph is still used from memory
        log.warning("cannot cache %s: %s", path, exc)
    return data


def session_for(module: nn.Module, name: str, threads: int = 1, cache_dir: Optional[Path] = None) -> OnnxGraph:
    """An :class:`OnnxGraph` of graph ``name`` (a ``graphs.GRAPHS`` key) built from ``module``."""
    return OnnxGraph(cached_onnx(module, name, cache_dir), threads=threads)


def as_inputs(tensors: Sequence[torch.Tensor]) -> List[np.ndarray]:
    """CPU float32 numpy views of torch tensors (no copy when already contiguous float32)."""
    return [t.detach().cpu().float().contiguous().numpy() for t in tensors]


def quantized_onnx(model: bytes, samples: Sequence[Sequence[np.ndarray]], cache_dir: Optional[Path] = None) -> bytes:
    """An int8 version of an ONNX graph (QDQ: per-channel int8 weights, uint8 activations), its
    activation ranges calibrated on ``samples`` (input tuples in the graph's order); cached by content.

    Uses ``onnxruntime.quantization.quantize_static`` (MinMax calibration); on CPUs with AVX-512 VNNI
    the int8 convolutions run about twice as fast as float32 ones.
    """
    h = hashlib.sha256(model)
    for sample in samples:
        for arr in sample:
            h.update(np.ascontiguousarray(arr).tobytes())
    cache_dir = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    path = cache_dir / f"int8-{h.hexdigest()[:20]}.onnx"
    if path.is_file():
        return path.read_bytes()
    # Lazy: optional dependency, and it imports onnx (slow); a cached file needs neither.
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    names = [i.name for i in OnnxGraph(model).session.get_inputs()]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([dict(zip(names, s)) for s in samples])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        # quantize_static's calibration saves an augmented model whose weights go to a '<uuid>.data' file in
        # the working directory: run it inside the temporary folder so nothing is left behind in the caller's.
        # ... and it logs advice ("consider pre-processing", per-tensor axis notes) on the root logger.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with contextlib.chdir(tmp):
                quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        data = dst.read_bytes()
    try:
        with atomic_write(path) as tmp_path:
            tmp_path.write_bytes(data)
    except OSError as exc:
        log.warning("cannot cache %s: %s", path, exc)
    return data
