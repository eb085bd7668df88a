"""The registry of render products: one entry per way of turning speech into video of an avatar.

Every consumer reads this one table: ``demo_avatar.py`` / :mod:`talkingface.realtime` (live),
:mod:`talkingface.eval.selfrecon` (self-reconstruction scores), the benchmarks. A product's
pipeline module offers the same four names (the *product interface*):

- ``prepare_avatar(video, avatar_dir, render_checkpoint=None, device="cpu", progress=True) -> Path``:
  the avatar folder its renderer reads, made from a talking-head video;
- ``synthesize(avatar_dir, audio_path, out_path, render_checkpoint=None, audio_checkpoint=None,
  device=..., progress=True, **product_options)``: the offline mp4, one frame per 40 ms of audio;
- ``StreamRenderer(avatar_dir, render_checkpoint=None, audio_checkpoint=None, device=..., engine="auto",
  threads=None)``: the live renderer (``engine``: ONNX Runtime fast path or torch, see docs/ONNX.md) (:class:`talkingface.realtime.StreamRenderer` protocol: 640 samples in, one frame out);
- ``default_avatar() -> Path``: the avatar used when the user names none.

Adding a product (MODA, later) = a pipeline module with those names + one line below.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Dict

from talkingface.errors import UserInputError


@dataclass(frozen=True)
class Product:
    """name: registry key (``--renderer``/``--pipeline`` value); audio_target: what its audio model
    predicts (:mod:`talkingface.audio_loader`); module: its pipeline module (the product interface)."""

    name: str
    description: str
    audio_target: str
    module: str

    def pipeline(self) -> ModuleType:
        """The pipeline module. Imported on first use, on purpose: pipelines load torch, MediaPipe and
        OpenGL, and scripts list the products (``--help``, argparse choices) without paying for that."""
        return importlib.import_module(self.module)


PRODUCTS: Dict[str, Product] = {p.name: p for p in (
    Product("mini", "DH_live_mini: blendshape audio LSTM -> OpenGL mouth warp -> DINet_mini on a 128 crop "
                    "(CPU real time)", "blendshape", "talkingface.mini_pipeline"),
    Product("dinet", "DH_live: pixel-PCA audio LSTM -> 15x30 mouth prompt -> DINet_five_Ref on a 256 face crop "
                     "(needs a render checkpoint)", "pixel", "talkingface.dhlive_pipeline"),
)}


def get_product(name: str) -> Product:
    if name not in PRODUCTS:
        raise UserInputError(f"unknown renderer {name!r}; choose from {', '.join(sorted(PRODUCTS))}")
    return PRODUCTS[name]
