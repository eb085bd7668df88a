"""Training configs: one typed dataclass per recipe, defaults = the original's hyper-parameters
(docs/REFERENCE.md §6). The scripts turn them into flags with :mod:`talkingface.config.flags`;
each checkpoint card records the resolved config (:func:`talkingface.config.flags.config_dict`).

One spelling across recipes: discriminator sizes are ``D_num_blocks``, ``D_block_expansion``,
``D_max_features`` (the original's option names); learning rates ``lr_g``/``lr_d``; loss weights
``lamb_*``; the schedule ``non_decay`` + ``decay`` epochs; ``max_steps`` for smoke runs; ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple


def _flag(help: str = "", **meta) -> dict:
    return dict(help=help, **meta)


@dataclass
class GANTrainConfig:
    """What both render recipes (DINet_five_Ref, DINet_mini) name the same way: Adam learning rates of
    G and D, loss weights, the epoch schedule (``non_decay`` flat + ``decay`` linear,
    :func:`talkingface.gan_training.lr_factor`), the discriminator's size, seed, smoke-run limit."""

    batch_size: int = field(default=4, metadata=_flag("samples per step"))
    seed: int = field(default=456, metadata=_flag("torch / numpy / sampling seed"))
    lr_g: float = field(default=8e-5, metadata=_flag("Adam learning rate of the generator"))
    lr_d: float = field(default=8e-5, metadata=_flag("Adam learning rate of the discriminator"))
    lamb_perception: float = field(default=10.0, metadata=_flag("weight of the perceptual loss"))
    lamb_pixel: float = field(default=0.0, metadata=_flag("weight of the pixel L1 loss"))
    non_decay: int = field(default=4, metadata=_flag("epochs at the full learning rate"))
    decay: int = field(default=36, metadata=_flag("epochs of linear learning-rate decay after those"))
    D_num_blocks: int = field(default=4, metadata=_flag("discriminator blocks"))
    D_block_expansion: int = field(default=64, metadata=_flag("discriminator base width"))
    D_max_features: int = field(default=256, metadata=_flag("discriminator maximum width"))
    max_steps: Optional[int] = field(default=None, metadata=_flag("stop after this many steps (smoke runs)"))


@dataclass
class DINetTrainingOptions(GANTrainConfig):
    """DH_live render model (DINet_five_Ref) recipe; the original's class name and defaults
    (its config.py plus the overrides of its train_render_model.py)."""

    train_data: List[str] = field(default_factory=list, metadata=_flag("prepared data folder(s)", nargs="+",
                                                                         required=True))
    out_dir: str = "checkpoint/Dinet_five_ref"
    n_ref: int = 5
    face_size: int = 256
    checkpoint_epochs: int = 2
    samples_per_video: int = 1
    vgg_weights: Optional[str] = field(default=None, metadata=_flag("ImageNet VGG19 weights (else L1+SSIM)"))
    resume: Optional[str] = None
    eval_frames: int = 8
    eval_every: int = 0
    num_workers: int = 0
    device: str = field(default="cpu", metadata={"flag": False})


@dataclass
class MiniTrainConfig(GANTrainConfig):
    """DH_live_mini mouth renderer (DINet_mini) recipe (defaults = docs/REFERENCE.md §5.6); the fields
    marked "extra" are this project's additions (0 = the original recipe). ``--d_*`` are accepted as
    the older spelling of ``--D_*``."""

    batch_size: int = 6
    seed: int = 1009
    lamb_pixel: float = 10.0
    D_num_blocks: int = field(default=3, metadata=_flag("discriminator blocks", aliases=("--d_num_blocks",)))
    D_block_expansion: int = field(default=64, metadata=_flag("discriminator base width",
                                                              aliases=("--d_block_expansion",)))
    D_max_features: int = field(default=256, metadata=_flag("discriminator maximum width",
                                                            aliases=("--d_max_features",)))
    lamb_gan: float = 1.0
    lamb_interior: float = field(default=0.0, metadata=_flag("extra: L1 inside the mouth opening (teeth, cavity)"))
    samples_per_epoch: int = 1200
    val: List[str] = field(default_factory=list, metadata=_flag("held-out name pattern (repeatable)",
                                                                  action="append"))
    val_samples: int = 48
    val_every: int = 200
    ckpt_every: int = 500
    procedural_teeth_p: float = 0.3
    gan_start_step: int = field(default=0, metadata=_flag("extra: reconstruction-only warm-up (no D) for that "
                                                          "many steps, for CPU budgets"))
    channel_gain: float = field(default=0.0, metadata=_flag("extra: colour-cast augmentation (MiniDatasetConfig)"))
    renderer_teeth_p: float = field(default=0.0, metadata=_flag("extra: sources labelled with the renderer's "
                                                                "teeth geometry (MiniDatasetConfig)"))
    renderer_teeth_follow: bool = field(default=False, metadata=_flag(
        "extra: those labels draw a teeth row only where the target shows it (MiniDatasetConfig)"))
    lamb_edge: float = field(default=0.0, metadata=_flag("extra: L1 between the image gradients of output and "
                                                         "target (sharper edges)"))


@dataclass
class LSTMTrainConfig:
    """Audio LSTM (Audio2Feature) recipe, direct training on clips (defaults: the original's)."""

    seq_len: int = field(default=26, metadata=_flag("window length in video frames"))
    lookahead: int = field(default=4, metadata=_flag("LSTM step t + lookahead predicts frame t"))
    batch_size: int = 32
    val_batch_size: int = 8
    lr: float = field(default=4e-4, metadata=_flag("Adam learning rate"))
    betas: Tuple[float, float] = field(default=(0.9, 0.99), metadata={"flag": False})
    epochs: int = 1000
    max_steps: Optional[int] = field(default=None, metadata=_flag("stop after this many optimiser steps"))
    samples_per_epoch: Optional[int] = None
    save_every: int = 200
    val_every: int = 200
    skip: int = field(default=0, metadata=_flag("window steps left out of the loss (0: the original)"))
    cosine: bool = field(default=False, metadata=_flag("cosine learning-rate decay to 0 over max_steps"))
    num_workers: int = field(default=0, metadata=_flag("DataLoader workers", aliases=("--workers",)))
    seed: int = 777
    device: str = field(default="cpu", metadata={"flag": False})
    extra: dict = field(default_factory=dict, metadata={"flag": False})


@dataclass
class DistillConfig:
    """Distilling a teacher audio model over a speech corpus (``train_audio/distill.py``); the student
    is trained with an :class:`LSTMTrainConfig` built from these (lookahead 0, val_every = save_every)."""

    teacher: Optional[Path] = field(default=None, metadata=_flag("teacher Audio2Feature state dict", required=True))
    speech: List[Path] = field(default_factory=list, metadata=_flag("folder of speech audio (repeatable)",
                                                                     action="append", required=True))
    exclude: List[str] = field(default_factory=list, metadata=_flag("sub-folder name or glob to skip (repeatable)",
                                                                      action="append"))
    bases: Optional[Path] = field(default=None, metadata=_flag("preparation_step1 output: bases + real clips "
                                                              "with targets"))
    out: Optional[Path] = field(default=None, metadata=_flag("output folder", required=True))
    variants: int = field(default=4, metadata=_flag("fbank copies per file: clean + augmented"))
    val_fraction: float = field(default=0.05, metadata=_flag("files held out for validation loss"))
    seq_len: int = 40
    skip: int = field(default=4, metadata=_flag("window steps left out of the loss (student warm-up)"))
    batch_size: int = 32
    lr: float = 1e-3
    cosine: bool = field(default=False, metadata=_flag("cosine learning-rate decay over max_steps"))
    max_steps: int = 3000
    save_every: int = 250
    seed: int = 777

    def student_config(self, device: str) -> LSTMTrainConfig:
        return LSTMTrainConfig(seq_len=self.seq_len, lookahead=0, skip=self.skip, batch_size=self.batch_size,
                               lr=self.lr, max_steps=self.max_steps, save_every=self.save_every,
                               val_every=self.save_every, cosine=self.cosine, seed=self.seed, device=device,
                               epochs=10 ** 9)
