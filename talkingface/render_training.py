"""DH_live render-model (DINet_five_Ref) training, the reference recipe (docs/REFERENCE.md §6.1).

- G = DINet_five_Ref(6, 30) with 5 references; D = Discriminator(3, 64, 4, 256); perceptual loss
  :class:`~talkingface.models.common.VGG19.PerceptualLoss` (VGG19 features when ImageNet weights are
  given, else its announced L1 + SSIM fallback).
- Losses: D = 0.5 * (LSGAN(real -> 1) + LSGAN(fake -> 0)); G = lamb_perception * perceptual +
  LSGAN(fake -> 1) (+ lamb_pixel * L1, 0 in the original recipe).
- Adam lr 8e-5 for G and D; 4 epochs flat then 36 of linear decay (LambdaLR stepped per epoch);
  seed 456; checkpoint every 2 epochs in the original's training layout; TensorBoard. Schedule,
  checkpoint layout and model card are shared with the DINet_mini recipe (:mod:`talkingface.gan_training`);
  the hyper-parameters are :class:`talkingface.config.training.DINetTrainingOptions`.

Additions: ``max_steps`` for smoke runs, ``resume``, an L1 between output and target on fixed
training frames (the dataset's eval path; an over-fit check, not a held-out score) logged at the start, every ``eval_every`` steps and at the end, and a
final plain generator state dict ``render.pth`` (what :class:`talkingface.render_model.RenderModel`
and the original's loader read) with a JSON model card beside it.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from talkingface.config.flags import config_dict
from talkingface.config.training import DINetTrainingOptions
from talkingface.data.few_shot_dataset import FewShotConfig, Few_Shot_Dataset, data_preparation
from talkingface.errors import UserInputError
from talkingface.gan_training import load_training_checkpoint, lr_factor, save_training_checkpoint
from talkingface.models.common.Discriminator import Discriminator, lsgan_loss
from talkingface.models.common.VGG19 import PerceptualLoss
from talkingface.models.DINet import DINet_five_Ref
from talkingface.util.cli import progress
from talkingface.util.files import atomic_write, write_model_card

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_l1(net_g: DINet_five_Ref, dataset: Few_Shot_Dataset, indices: List[int], device: str):
    """Mean absolute error between generated and target frames (eval mode, fixed inputs), in [0, 1],
    and a preview of the first frame: 3xHx(2W) RGB float [output | target]."""
    was_training = net_g.training
    net_g.eval()
    total = 0.0
    preview = None
    for i in indices:
        s = dataset[i]
        src, ref, tgt = (s[k].unsqueeze(0).to(device) for k in ("source", "ref", "target"))
        out = net_g(src[:, :3], src[:, 3:], ref)
        total += float(F.l1_loss(out, tgt))
        if preview is None:
            preview = torch.cat([out[0], tgt[0]], dim=2).flip(0).cpu()  # BGR -> RGB for TensorBoard
    net_g.train(was_training)
    return total / max(len(indices), 1), preview


class RenderTrainer:
    """Owns the networks, optimisers, data and loop; ``run()`` trains and returns a summary dict."""

    def __init__(self, opts: DINetTrainingOptions):
        if not opts.train_data:
            raise UserInputError("no training data folders given")
        if opts.batch_size < 1:
            raise UserInputError("batch size must be at least 1")
        if opts.eval_frames < 1:
            raise UserInputError("eval_frames must be at least 1")
        if opts.resume and not os.path.isfile(opts.resume):
            raise UserInputError(f"resume checkpoint not found: {opts.resume}")
        self.opts = opts
        self.device = opts.device
        torch.manual_seed(opts.seed)
        np.random.seed(opts.seed)
        if opts.face_size % 32 or opts.face_size < 96:
            # trans_conv halves 6 times: below 96 px its last BatchNorm sees 1x1 maps (fails at batch 1)
            raise UserInputError("face size must be a multiple of 32, at least 96")
        data_cfg = FewShotConfig(n_ref=opts.n_ref, size=opts.face_size)
        self.videos = data_preparation(opts.train_data, opts.face_size)
        self.train_set = Few_Shot_Dataset(self.videos, data_cfg, is_train=True,
                                          samples_per_video=opts.samples_per_video, seed=opts.seed)
        self.eval_set = Few_Shot_Dataset(self.videos, data_cfg, is_train=False, seed=opts.seed)
        n_eval = min(opts.eval_frames, len(self.eval_set))
        self.eval_indices = [int(round(k * (len(self.eval_set) - 1) / max(n_eval - 1, 1))) for k in range(n_eval)]
        self.net_g = DINet_five_Ref(3 * 2, 6 * opts.n_ref).to(self.device)
        self.net_d = Discriminator(3, opts.D_block_expansion, opts.D_num_blocks, opts.D_max_features).to(self.device)
        self.perceptual = PerceptualLoss(opts.vgg_weights, channel_order="bgr").to(self.device)
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=opts.lr_g)
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=opts.lr_d)
        # LambdaLR counts epochs from 0, lr_factor from 1
        lam = lambda epoch: lr_factor(epoch + 1, opts.non_decay, opts.decay)  # noqa: E731
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, lam)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, lam)
        self.epoch = 0
        self.step = 0
        if opts.resume:
            self._resume(opts.resume)
        self.out_dir = Path(opts.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------ state
    def _resume(self, path: str) -> None:
        epoch, self.step = load_training_checkpoint(path, self.net_g, self.net_d, self.opt_g, self.opt_d,
                                                    map_location=self.device, what="render")
        self.epoch = epoch or 0
        for sched in (self.sched_g, self.sched_d):
            sched.last_epoch = self.epoch  # the restored optimisers already carry this epoch's lr
        log.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step)

    def save_training(self, name: str) -> Path:
        return save_training_checkpoint(self.out_dir / name, self.net_g, self.net_d, self.opt_g, self.opt_d,
                                        self.epoch, self.step)

    def save_render(self, card: dict) -> Path:
        path = self.out_dir / "render.pth"
        with atomic_write(path) as tmp:
            torch.save(self.net_g.state_dict(), tmp)
        write_model_card(path, card)
        return path

    # ------------------------------------------------------------------------------------- loop
    def train_step(self, batch: dict) -> dict:
        """One G/D update on a batch; returns the loss values."""
        source = batch["source"].to(self.device)
        ref = batch["ref"].to(self.device)
        target = batch["target"].to(self.device)
        fake = self.net_g(source[:, :3], source[:, 3:], ref)

        self.opt_d.zero_grad(set_to_none=True)
        _, real_logits = self.net_d(target)
        _, fake_logits = self.net_d(fake.detach())
        loss_d = 0.5 * (lsgan_loss(real_logits, True) + lsgan_loss(fake_logits, False))
        loss_d.backward()
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        _, fake_logits = self.net_d(fake)
        loss_gan = lsgan_loss(fake_logits, True)
        loss_perc = self.perceptual(fake, target) * self.opts.lamb_perception
        loss_pix = F.l1_loss(fake, target)
        loss_g = loss_perc + loss_gan
        if self.opts.lamb_pixel > 0:
            loss_g = loss_g + self.opts.lamb_pixel * loss_pix
        loss_g.backward()
        self.opt_g.step()
        values = {"loss_d": loss_d, "loss_g": loss_g, "loss_g_gan": loss_gan, "loss_g_perception": loss_perc,
                  "l1_train": loss_pix}
        return {k: float(v.detach()) for k, v in values.items()}

    def run(self) -> dict:
        # Lazy: TensorBoard loads only when a training run starts.
        from torch.utils.tensorboard import SummaryWriter

        opts = self.opts
        writer = SummaryWriter(str(self.out_dir / "log" / "train"))
        total_epochs = opts.non_decay + opts.decay
        loader = DataLoader(self.train_set, batch_size=opts.batch_size, shuffle=True, drop_last=False,
                            num_workers=opts.num_workers)
        steps_per_epoch = len(loader)
        planned = (total_epochs - self.epoch) * steps_per_epoch
        if opts.max_steps is not None:
            planned = min(planned, max(opts.max_steps - self.step, 0))
        log.info("%d videos, %d steps per epoch, %d steps planned, device %s, perceptual loss %s",
                 len(self.videos), steps_per_epoch, planned, self.device, self.perceptual.mode)
        l1_start, preview = evaluate_l1(self.net_g, self.eval_set, self.eval_indices, self.device)
        log.info("eval L1 at step %d: %.5f", self.step, l1_start)
        writer.add_scalar("eval/l1", l1_start, self.step)
        writer.add_image("eval/output_target", preview, self.step)
        t0 = time.time()
        done = 0
        bar = progress(total=planned, desc="train render", unit="step")
        self.net_g.train()
        self.net_d.train()
        stop = planned == 0
        while not stop and self.epoch < total_epochs:
            for batch in loader:
                losses = self.train_step(batch)
                self.step += 1
                done += 1
                bar.update(1)
                bar.set_postfix(g=f"{losses['loss_g']:.3f}", d=f"{losses['loss_d']:.3f}")
                for k, v in losses.items():
                    writer.add_scalar(f"train/{k}", v, self.step)
                if opts.eval_every and self.step % opts.eval_every == 0:
                    l1, preview = evaluate_l1(self.net_g, self.eval_set, self.eval_indices, self.device)
                    log.info("eval L1 at step %d: %.5f", self.step, l1)
                    writer.add_scalar("eval/l1", l1, self.step)
                    writer.add_image("eval/output_target", preview, self.step)
                if done >= planned:
                    stop = True
                    break
            else:
                self.epoch += 1
                self.sched_g.step()
                self.sched_d.step()
                writer.add_scalar("train/lr", self.opt_g.param_groups[0]["lr"], self.step)
                if self.epoch % opts.checkpoint_epochs == 0:
                    path = self.save_training(f"epoch_{self.epoch}.pth")
                    log.info("saved %s", path)
        bar.close()
        wall = time.time() - t0
        l1_end, preview = evaluate_l1(self.net_g, self.eval_set, self.eval_indices, self.device)
        writer.add_scalar("eval/l1", l1_end, self.step)
        writer.add_image("eval/output_target", preview, self.step)
        writer.close()
        last = self.save_training("last.pth")
        change = (l1_start - l1_end) / l1_start * 100.0 if l1_start > 0 else math.nan
        summary = {
            "steps": self.step, "epochs_completed": self.epoch, "wall_seconds": round(wall, 1),
            "eval_l1_start": l1_start, "eval_l1_end": l1_end, "eval_l1_reduction_percent": round(change, 2),
            "eval_frames": len(self.eval_indices), "perceptual_loss": self.perceptual.mode,
            "videos": [str(v.path) for v in self.videos], "training_checkpoint": str(last),
        }
        card = {"model": "DINet_five_Ref(6, 30)", "channel_order": "bgr", "face_size": opts.face_size,
                "config": config_dict(opts), **summary}
        summary["render_checkpoint"] = str(self.save_render(card))
        log.info("eval L1 step %d -> %d: %.5f -> %.5f (%.1f%% lower)", self.step - done, self.step,
                 l1_start, l1_end, change)
        return summary

