"""DH_live_mini mouth-renderer (DINet_mini) training, the reference recipe (docs/REFERENCE.md §5.6).

G = DINet_mini(3, 12); D = Discriminator(3, 64, 3 blocks, 256); losses: D = 0.5 (LSGAN real + LSGAN
fake); G = lamb_perception x perceptual (2 scales) + lamb_gan x LSGAN + lamb_pixel x pixel L1 (full +
half resolution). Adam for both; epochs 1..non_decay+decay with the shared schedule, checkpoint
layout and model card of :mod:`talkingface.gan_training` (the DH_live recipe beside it:
:mod:`talkingface.render_training`). One "epoch" is ``samples_per_epoch`` random samples (the
original's was one sample per video). ``gan_start_step`` trains G on the reconstruction losses alone
for that many steps before D joins (D costs about 20x G per step on CPU). Extras: ``lamb_interior`` (L1
inside the mouth opening), ``lamb_edge`` (L1 of image gradients, :func:`gradient_l1`). Hyper-parameters:
:class:`talkingface.config.training.MiniTrainConfig`; the script is ``mini_live/train.py``.

Videos whose file name contains any ``val`` pattern are held out: every ``val_every`` steps their
mouth-region PSNR/SSIM goes to TensorBoard (``OUT/log``) and a mosaic PNG (source | 3 refs | output |
target) to ``OUT/val``. Checkpoints ``OUT/epoch_N.pth`` (+ ``.json`` card) every ``ckpt_every`` steps
and at the end.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torch.utils.tensorboard import SummaryWriter

from talkingface.config.flags import config_dict
from talkingface.config.training import MiniTrainConfig
from talkingface.data.DHLive_mini_dataset import DHLiveMiniDataset, MiniDatasetConfig, load_prepared
from talkingface.errors import UserInputError
from talkingface.gan_training import load_training_checkpoint, lr_factor, save_training_checkpoint
from talkingface.models.common.Discriminator import Discriminator, lsgan_loss
from talkingface.models.common.VGG19 import PerceptualLoss, half_scale_pair, ssim
from talkingface.models.DINet_mini import DINet_mini, load_dinet_mini_state
from talkingface.util.files import write_image
from talkingface.util.cli import progress

log = logging.getLogger(__name__)


def psnr(a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-image PSNR (dB) of Bx3xHxW images in [0, 1], over ``mask`` (Bx1xHxW) when given."""
    err = (a - b) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.expand_as(err)
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def gradient_l1(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of the horizontal and vertical finite differences of two BxCxHxW images."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(fake), dx(target)) + F.l1_loss(dy(fake), dy(target))


def split_videos(data_dir: Path, val_patterns: List[str]):
    """Load every prepared ``*.npz``; those whose name contains a val pattern go to validation."""
    files = sorted(data_dir.glob("*.npz"))
    if not files:
        raise UserInputError(f"no prepared videos (*.npz) in {data_dir}; run mini_live/prepare_training_data.py")
    train, val = [], []
    for f in files:
        (val if any(p in f.name for p in val_patterns) else train).append(load_prepared(f))
    if not train:
        raise UserInputError("every video matches --val; nothing left to train on")
    return train, val


def mosaic(batch: Dict[str, torch.Tensor], fake: torch.Tensor, rows: int = 6) -> np.ndarray:
    """Rows of source | ref0 | ref1 | ref2 (RGB) | output | target, as an RGB uint8 image."""
    def img(t: torch.Tensor) -> np.ndarray:
        return (t.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)

    out = []
    for i in range(min(rows, fake.shape[0])):
        refs = [img(batch["ref"][i, 4 * k:4 * k + 3]) for k in range(batch["ref"].shape[1] // 4)]
        out.append(np.concatenate([img(batch["source"][i])] + refs + [img(fake[i]), img(batch["target"][i])], 1))
    return np.concatenate(out, 0)


class MiniTrainer:
    """Holds G, D, losses and optimisers; ``step`` does one D and one G update."""

    def __init__(self, cfg: MiniTrainConfig, device: str, vgg_weights: Optional[str] = None):
        self.cfg = cfg
        self.device = device
        torch.manual_seed(cfg.seed)
        # channels-last runs the small convolutions about 1.5x faster on CPU
        self.memory_format = torch.channels_last if device == "cpu" else torch.contiguous_format
        self.net_g = DINet_mini(3, 12).to(device, memory_format=self.memory_format)
        self.net_d = Discriminator(3, cfg.D_block_expansion, cfg.D_num_blocks, cfg.D_max_features).to(device)
        self.perceptual = PerceptualLoss(vgg_weights).to(device)
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=cfg.lr_g)
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=cfg.lr_d)
        self.epoch = 1
        self.step_count = 0

    def set_epoch_lr(self, epoch: int) -> None:
        f = lr_factor(epoch, self.cfg.non_decay, self.cfg.decay)
        for opt, base in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * f

    def step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        self.net_g.train()
        self.net_d.train()
        source, ref, target = (batch[k].to(self.device).contiguous(memory_format=self.memory_format)
                               for k in ("source", "ref", "target"))
        fake = self.net_g(ref, source)
        use_gan = self.step_count >= self.cfg.gan_start_step and self.cfg.lamb_gan > 0

        loss_d = torch.zeros(())
        if use_gan:
            self.opt_d.zero_grad(set_to_none=True)
            _, d_fake = self.net_d(fake.detach())
            _, d_real = self.net_d(target)
            loss_d = 0.5 * (lsgan_loss(d_fake, False) + lsgan_loss(d_real, True))
            loss_d.backward()
            self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        loss_gan = torch.zeros((), device=fake.device)
        if use_gan:
            _, d_fake = self.net_d(fake)
            loss_gan = lsgan_loss(d_fake, True) * self.cfg.lamb_gan
        loss_perc = self.perceptual(fake, target) * self.cfg.lamb_perception
        fake_half, target_half = half_scale_pair(fake, target)
        loss_pix = (F.l1_loss(fake, target) + F.l1_loss(fake_half, target_half)) * self.cfg.lamb_pixel
        loss_g = loss_gan + loss_perc + loss_pix
        loss_edge = torch.zeros((), device=fake.device)
        if self.cfg.lamb_edge > 0:
            loss_edge = gradient_l1(fake, target) * self.cfg.lamb_edge
            loss_g = loss_g + loss_edge
        if self.cfg.lamb_interior > 0:
            inside = batch["interior_mask"].to(self.device)
            err = ((fake - target).abs() * inside).sum() / (3.0 * inside.sum()).clamp_min(1.0)
            loss_g = loss_g + self.cfg.lamb_interior * err
        loss_g.backward()
        self.opt_g.step()
        self.step_count += 1
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "loss_gan": loss_gan.item(),
                "loss_perception": loss_perc.item(), "loss_pixel": loss_pix.item(), "loss_edge": loss_edge.item()}

    @torch.no_grad()
    def validate(self, batches: List[Dict[str, torch.Tensor]]):
        """Mouth-region PSNR/SSIM of G on fixed held-out batches; returns (metrics, first fake)."""
        self.net_g.eval()
        psnrs, ssims, first = [], [], None
        for batch in batches:
            fake = self.net_g(batch["ref"].to(self.device), batch["source"].to(self.device)).cpu()
            first = fake if first is None else first
            psnrs.append(psnr(fake, batch["target"], batch["mouth_mask"]))
            ssims.extend(float(ssim(fake[i:i + 1], batch["target"][i:i + 1])) for i in range(fake.shape[0]))
        return {"val_psnr_mouth": float(torch.cat(psnrs).mean()), "val_ssim": float(np.mean(ssims))}, first

    def load(self, path: Path) -> None:
        """Continue from a training checkpoint (G, and D and the optimisers when present)."""
        epoch, self.step_count = load_training_checkpoint(path, self.net_g, self.net_d, self.opt_g, self.opt_d,
                                                          map_location=self.device, what="DINet_mini")
        self.epoch = epoch or 1

    def save(self, path: Path, card: dict) -> Path:
        """The training checkpoint (the original's layout + ``step``) and its model card."""
        return save_training_checkpoint(path, self.net_g, self.net_d, self.opt_g, self.opt_d, self.epoch,
                                        self.step_count, card)


def train_mini(cfg: MiniTrainConfig, data_dir: Path, out: Path, device: str = "cpu",
               resume: Optional[Path] = None, init: Optional[Path] = None, vgg_weights: Optional[str] = None,
               workers: int = 1, max_minutes: Optional[float] = None) -> Path:
    """Train on the prepared ``data_dir/*.npz`` into ``out``; returns the last checkpoint written.

    resume: a training checkpoint to continue from (step, epoch, D and optimisers included). init:
    start G from these weights (any DINet_mini layout) with a fresh schedule. max_minutes: stop (and
    save) after this wall time.
    """
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise UserInputError(f"data folder not found: {data_dir}")
    for path in (resume, init):
        if path is not None and not Path(path).is_file():
            raise UserInputError(f"checkpoint not found: {path}")
    train_videos, val_videos = split_videos(data_dir, cfg.val)
    log.info("training on %d videos (%d frames), validating on %d videos: %s", len(train_videos),
             sum(len(v) for v in train_videos), len(val_videos), ", ".join(v.name for v in val_videos) or "-")
    ds_cfg = MiniDatasetConfig(samples_per_epoch=cfg.samples_per_epoch, procedural_teeth_p=cfg.procedural_teeth_p,
                               channel_gain=cfg.channel_gain, renderer_teeth_p=cfg.renderer_teeth_p,
                               renderer_teeth_follow=cfg.renderer_teeth_follow)
    train_set = DHLiveMiniDataset(train_videos, ds_cfg, seed=cfg.seed)
    val_batches = []
    if val_videos:
        val_set = DHLiveMiniDataset(val_videos, MiniDatasetConfig(samples_per_epoch=cfg.val_samples),
                                    seed=cfg.seed + 1, augment_images=False)
        val_batches = list(DataLoader(val_set, batch_size=12, shuffle=False))

    out.mkdir(parents=True, exist_ok=True)
    (out / "val").mkdir(exist_ok=True)
    trainer = MiniTrainer(cfg, device, vgg_weights)
    if init is not None:
        trainer.net_g.load_state_dict(load_dinet_mini_state(init), strict=True)
        log.info("generator initialised from %s", init)
    if resume is not None:
        trainer.load(resume)
        log.info("resumed from %s (epoch %d, step %d)", resume, trainer.epoch, trainer.step_count)
    writer = SummaryWriter(str(out / "log"))
    card = {"config": config_dict(cfg), "device": device, "perceptual": trainer.perceptual.mode,
            "train_videos": [v.name for v in train_videos], "val_videos": [v.name for v in val_videos]}
    start = time.time()
    last_epoch = cfg.non_decay + cfg.decay
    steps_per_epoch = max(1, cfg.samples_per_epoch // cfg.batch_size)
    metrics: Dict[str, float] = {}

    def save() -> Path:
        return trainer.save(out / f"epoch_{trainer.epoch}.pth",
                            dict(card, step=trainer.step_count, epoch=trainer.epoch, metrics=metrics,
                                 wall_minutes=round((time.time() - start) / 60.0, 2)))

    done = False
    bar = progress(total=cfg.max_steps, initial=trainer.step_count, unit="step", desc="DINet_mini")
    while trainer.epoch <= last_epoch and not done:
        trainer.set_epoch_lr(trainer.epoch)
        # a different, reproducible sample stream per epoch
        train_set.seed = cfg.seed * 1000 + trainer.epoch
        # after a resume inside an epoch, start at the next batch: items are deterministic in their index,
        # so the samples already trained on are left out instead of being drawn and thrown away
        skip = max(0, trainer.step_count - (trainer.epoch - 1) * steps_per_epoch)
        stream = Subset(train_set, range(skip * cfg.batch_size, len(train_set))) if skip else train_set
        loader = DataLoader(stream, batch_size=cfg.batch_size, shuffle=False, drop_last=True,
                            num_workers=workers, persistent_workers=False)
        for batch in loader:
            losses = trainer.step(batch)
            bar.update(1)
            s = trainer.step_count
            if s % 20 == 0:
                for k, v in losses.items():
                    writer.add_scalar(f"train/{k}", v, s)
                bar.set_postfix(g=f"{losses['loss_g']:.3f}", d=f"{losses['loss_d']:.3f}")
            if val_batches and s % cfg.val_every == 0:
                metrics, fake = trainer.validate(val_batches)
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, s)
                write_image(out / "val" / f"step_{s:06d}.png", mosaic(val_batches[0], fake)[..., ::-1])
                log.info("step %d: %s", s, json.dumps({k: round(v, 4) for k, v in metrics.items()}))
            out_of_time = max_minutes is not None and (time.time() - start) / 60.0 >= max_minutes
            done = (cfg.max_steps is not None and s >= cfg.max_steps) or out_of_time
            if s % cfg.ckpt_every == 0 or done:
                save()
            if done:
                break
        if not done:
            trainer.epoch += 1
    bar.close()
    trainer.epoch = min(trainer.epoch, last_epoch)
    if val_batches:
        metrics, _ = trainer.validate(val_batches)
    final = save()
    writer.close()
    log.info("saved %s after %d steps (%.1f min): %s", final, trainer.step_count, (time.time() - start) / 60.0,
             json.dumps(metrics))
    return final
