"""One rule for "an audio checkpoint and the basis that decodes it", used by every consumer.

An Audio2Feature checkpoint predicts 6 coefficients per 40 ms; its sidecar card (``<name>.json``,
:func:`talkingface.util.files.read_model_card`) says what they mean (``target``: ``pixel`` for the
DH_live mouth-image PCA, ``blendshape`` for the mini mesh basis) and may name the basis file.

- :func:`find_audio_checkpoint` -- the shipped checkpoint of a target: the first existing default,
  else any checkpoint under ``checkpoint/`` whose card has that target.
- :func:`resolve_basis` -- the basis file: a name in the card (keys :data:`BASIS_CARD_KEYS`), else the
  target's default name; each tried relative to the checkpoint's folder, the repository and the
  working directory (absolute names as they are).
- :func:`load_basis` -- a ``.npz`` basis of either kind (told apart by its arrays).
- :func:`load_audio_model` -- the two together, checking that the checkpoint predicts what the caller
  renders. Callers: :mod:`talkingface.dhlive_pipeline` (pixel, basis required),
  :mod:`talkingface.mini_pipeline` and the realtime mini renderer (blendshape; without a basis the
  renderer's committed table is used), ``train_audio/test.py`` (whatever the card says).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from talkingface.config.paths import AUDIO_CHECKPOINT, CHECKPOINT_DIR, MINI_AUDIO_CHECKPOINT_CANDIDATES, resolve_named_file
from talkingface.audio_model import AudioModel
from talkingface.errors import UserInputError
from talkingface.mouth_basis import BlendshapeBasis, PixelBasis
from talkingface.util.files import read_model_card

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
Basis = Union[PixelBasis, BlendshapeBasis]
TARGETS = ("pixel", "blendshape")
#: Card keys that may name the basis file, in order of preference.
BASIS_CARD_KEYS = ("basis", "basis_file", "pixel_basis")
DEFAULT_BASIS_NAMES: Dict[str, str] = {"pixel": "pixel_basis.npz", "blendshape": "blendshape_basis.npz"}
#: The shipped checkpoint of each target, most preferred first.
DEFAULT_AUDIO_CHECKPOINTS: Dict[str, Tuple[Path, ...]] = {
    "pixel": (AUDIO_CHECKPOINT,),
    "blendshape": MINI_AUDIO_CHECKPOINT_CANDIDATES,
}
#: What each target drives, for error messages.
_RENDERER_OF = {"pixel": "the DH_live renderer", "blendshape": "the mini renderer"}


def _check_target(target: Optional[str]) -> None:
    if target is not None and target not in TARGETS:
        raise ValueError(f"unknown audio target {target!r}; expected one of {TARGETS}")


def find_audio_checkpoint(target: str) -> Path:
    """The shipped audio model of ``target``: the first existing default, else any ``.pkl`` under
    ``checkpoint/`` whose card says ``"target": target``; a clear error when there is none."""
    _check_target(target)
    for cand in DEFAULT_AUDIO_CHECKPOINTS[target]:
        if cand.is_file():
            return cand
    for cand in sorted(CHECKPOINT_DIR.rglob("*.pkl")):
        if read_model_card(cand).get("target") == target:
            return cand
    raise UserInputError(f"no {target} audio model found under checkpoint/ (give --audio_ckpt)")


def resolve_basis(audio_checkpoint: PathLike, card: dict, target: str) -> Optional[Path]:
    """The basis file decoding ``audio_checkpoint`` (see the module doc), or None when there is none."""
    _check_target(target)
    ckpt = Path(audio_checkpoint)
    names = [card[k] for k in BASIS_CARD_KEYS if isinstance(card.get(k), str)] + [DEFAULT_BASIS_NAMES[target]]
    for name in names:
        if Path(name).is_absolute():
            if Path(name).is_file():
                return Path(name)
            continue
        path = resolve_named_file(name, ckpt.parent)
        if path is not None:
            return path
    return None


def load_basis(path: PathLike) -> Basis:
    """A project basis ``.npz`` of either kind: blendshape files carry ``landmark_ids``."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"basis file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as d:
            is_blendshape = "landmark_ids" in d.files
    except (OSError, ValueError) as exc:
        raise UserInputError(f"cannot read basis {path}: {exc}") from exc
    return BlendshapeBasis.load(path) if is_blendshape else PixelBasis.load(path)


def load_audio_model(audio_checkpoint: Optional[PathLike] = None, target: Optional[str] = None,
                     basis: Optional[PathLike] = None, device: str = "cpu",
                     basis_required: bool = True) -> Tuple[AudioModel, Optional[Basis]]:
    """The audio model and the basis decoding its outputs.

    audio_checkpoint: None = :func:`find_audio_checkpoint` of ``target``. target: what the caller
    renders (``pixel``/``blendshape``; a checkpoint whose card names another target is refused; a card
    without a target is accepted); None = whatever the card says. basis: an explicit basis file
    (overrides the card). basis_required: False returns None for the basis when none is found
    (logged), True raises.
    """
    _check_target(target)
    if audio_checkpoint is None:
        if target is None:
            raise ValueError("give an audio checkpoint or a target")
        audio_checkpoint = find_audio_checkpoint(target)
    ckpt = Path(audio_checkpoint)
    if not ckpt.is_file():
        raise UserInputError(f"audio checkpoint not found: {ckpt}")
    model = AudioModel(ckpt, device=device)
    card_target = model.card.get("target")
    if target is not None and card_target is not None and card_target != target:
        raise UserInputError(f"{ckpt} predicts {card_target!r} coefficients; {_RENDERER_OF[target]} needs a "
                             f"{target}-target audio model")
    if basis is not None:
        basis_path: Optional[Path] = Path(basis)
    else:
        kind = target or card_target
        basis_path = resolve_basis(ckpt, model.card, kind) if kind in TARGETS else None
    if basis_path is None:
        if basis_required:
            raise UserInputError(f"no basis found for {ckpt} (its card names none or the file is missing): "
                                 "run train_audio/preparation_step1.py or give --basis")
        log.warning("no basis found for %s (the caller falls back to its own default)", ckpt)
        return model, None
    loaded = load_basis(basis_path)
    want = {"pixel": PixelBasis, "blendshape": BlendshapeBasis}.get(target or "")
    if want is not None and not isinstance(loaded, want):
        raise UserInputError(f"{basis_path} is not a {target} basis")
    log.info("audio model %s, basis %s", ckpt, basis_path)
    return model, loaded
