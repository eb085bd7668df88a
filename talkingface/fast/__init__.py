"""Fast inference paths (ONNX Runtime) for the renderers; torch stays the training path and fallback.

- :mod:`talkingface.fast.mini`: the DINet_mini per-frame pipeline in one session call;
- :mod:`talkingface.fast.dinet`: DINet_five_Ref's per-frame network.

Chosen by measurement (``bench/bench_side_by_side.py``); see docs/ONNX.md.
"""
