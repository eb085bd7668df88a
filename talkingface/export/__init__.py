"""Exported inference graphs (ONNX) and the ONNX Runtime fast path.

- :mod:`talkingface.export.graphs`: the exportable torch wrappers and their I/O names;
- :mod:`talkingface.export.onnx_export`: writing ONNX files plus ``manifest.json``
  (``python -m talkingface.export onnx --what all --out DIR``);
- :mod:`talkingface.export.runtime`: ONNX Runtime sessions (optional dependency, torch fallback).

The contract of every graph is in docs/ONNX.md.
"""
