"""What the two GAN recipes share (DINet_five_Ref: :mod:`talkingface.render_training`; DINet_mini:
:mod:`talkingface.mini_training`): the learning-rate schedule, the training-checkpoint layout, and
the checkpoint's model card; MODA's FaCo-Net and renderer trainers (:mod:`talkingface.moda_training`)
use the same optimisers, layout and cards (their rate is constant).

- Schedule: Adam for G and D; the rate is constant for ``non_decay`` epochs, then falls linearly
  (:func:`lr_factor`, the original's LambdaLR).
- Training checkpoint (the original's layout, docs/CHECKPOINTS.md §2): ``{"epoch", "state_dict":
  {"net_g", "net_d"}, "optimizer": {"net_g", "net_d"}}`` plus ``step``; a sidecar ``.json`` card
  beside it records the resolved config, data and metrics.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from talkingface.models.DINet import extract_generator_state
from talkingface.util.files import PathLike, atomic_write, reading, write_model_card

log = logging.getLogger(__name__)


def lr_factor(epoch: int, non_decay: int, decay: int) -> float:
    """Learning-rate factor of 1-based ``epoch``: 1 for the first ``non_decay`` epochs, then
    ``1 - (epoch - non_decay) / (decay + 1)`` (reaches 1 / (decay + 1) at the last epoch)."""
    return 1.0 - max(0, epoch - non_decay) / float(decay + 1)


def training_checkpoint(net_g: nn.Module, net_d: nn.Module, opt_g: torch.optim.Optimizer,
                        opt_d: torch.optim.Optimizer, epoch: int, **extra: Any) -> Dict[str, Any]:
    """The original's training-checkpoint layout, plus optional extras (e.g. ``step``)."""
    ckpt: Dict[str, Any] = {
        "epoch": epoch,
        "state_dict": {"net_g": net_g.state_dict(), "net_d": net_d.state_dict()},
        "optimizer": {"net_g": opt_g.state_dict(), "net_d": opt_d.state_dict()},
    }
    ckpt.update(extra)
    return ckpt


def adam_pair(net_g: nn.Module, net_d: nn.Module, lr_g: float, lr_d: float,
              betas: Tuple[float, float] = (0.9, 0.999)) -> Tuple[torch.optim.Adam, torch.optim.Adam]:
    """The Adam optimisers of G and D."""
    return (torch.optim.Adam(net_g.parameters(), lr=lr_g, betas=tuple(betas)),
            torch.optim.Adam(net_d.parameters(), lr=lr_d, betas=tuple(betas)))


def save_training_checkpoint(path: PathLike, net_g: nn.Module, net_d: nn.Module, opt_g: torch.optim.Optimizer,
                             opt_d: torch.optim.Optimizer, epoch: Optional[int], step: int,
                             card: Optional[dict] = None, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write the training checkpoint atomically (``extra``: more top-level keys, e.g. RNG states for an
    exact resume), and its model card when given."""
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save(training_checkpoint(net_g, net_d, opt_g, opt_d, epoch, step=step, **(extra or {})), tmp)
    if card is not None:
        write_model_card(path, card)
    return path


def load_training_checkpoint(path: PathLike, net_g: nn.Module, net_d: nn.Module, opt_g: torch.optim.Optimizer,
                             opt_d: torch.optim.Optimizer, map_location: Any = "cpu",
                             what: str = "GAN") -> Tuple[Optional[int], int]:
    """Restore G (required), D and both optimisers (when present) from a training checkpoint, strictly.

    Returns ``(epoch, step)`` as stored (epoch None when absent, step 0). A file that is not such a
    checkpoint is a :class:`UserInputError` naming ``what``.
    """
    ckpt = restore_training_checkpoint(path, net_g, net_d, opt_g, opt_d, map_location, what)
    epoch = ckpt.get("epoch")
    return (int(epoch) if epoch is not None else None), int(ckpt.get("step", 0))


def restore_training_checkpoint(path: PathLike, net_g: nn.Module, net_d: nn.Module, opt_g: torch.optim.Optimizer,
                                opt_d: torch.optim.Optimizer, map_location: Any = "cpu",
                                what: str = "GAN") -> Dict[str, Any]:
    """:func:`load_training_checkpoint`, returning the whole loaded checkpoint (for its extras)."""
    with reading(path, f"{what} training checkpoint"):
        ckpt = torch.load(str(path), map_location=map_location, weights_only=True)
        net_g.load_state_dict(extract_generator_state(ckpt), strict=True)
        state = ckpt.get("state_dict", {})
        if "net_d" in state:
            net_d.load_state_dict(state["net_d"], strict=True)
        else:
            log.warning("%s holds no discriminator: D starts fresh", path)
        if "optimizer" in ckpt:
            opt_g.load_state_dict(ckpt["optimizer"]["net_g"])
            opt_d.load_state_dict(ckpt["optimizer"]["net_d"])
    return ckpt
