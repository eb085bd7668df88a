"""Train DINet_mini (the DH_live_mini mouth renderer) on prepared videos (reference_system.md §5.6).

    python mini_live/prepare_training_data.py DATA_DIR videos...      # once
    python mini_live/train.py DATA_DIR --out checkpoint/DINet_mini --val W011_ --val d20_zh

Recipe (defaults = the original's): G = DINet_mini(3, 12); D = Discriminator(3, 64, 3 blocks, 256);
losses: D = 0.5 (LSGAN real + LSGAN fake); G = 10 x perceptual (2 scales) + 1 x LSGAN + 10 x pixel L1
(full + half resolution). Adam lr 8e-5 for both, batch 6, seed 1009; epochs 1..40 with the learning
rate constant for 4 epochs and then decayed linearly (factor 1 - max(0, e - 4) / 37). One "epoch"
is ``--samples_per_epoch`` random samples (the original's was one sample per video). On a small CPU
budget, ``--gan_start_step N`` trains G on the reconstruction losses alone for N steps before the
discriminator joins (D costs about 20x G per step).

Videos whose file name contains any ``--val`` string are held out for validation. Every
``--val_every`` steps the held-out PSNR/SSIM of the mouth region is logged to TensorBoard
(``OUT/log``) and a mosaic PNG (source | 3 refs | output | target) is written to ``OUT/val``.
Checkpoints ``OUT/epoch_N.pth`` use the original's training layout
``{"epoch", "step", "state_dict": {"net_g", "net_d"}, "optimizer": {"net_g", "net_d"}}``;
``--resume`` continues from one. Runs on CPU (``--threads``) or CUDA.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from talkingface.config.paths import user_checkpoint_dir
from talkingface.errors import UserInputError
from talkingface.util.cli import progress, resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import atomic_write, reading, write_text

log = logging.getLogger("mini_live.train")


@dataclass
class MiniTrainConfig:
    """Hyper-parameters of the DINet_mini recipe (defaults = reference §5.6)."""

    batch_size: int = 6
    lr_g: float = 8e-5
    lr_d: float = 8e-5
    lamb_perception: float = 10.0
    lamb_pixel: float = 10.0
    lamb_gan: float = 1.0
    lamb_interior: float = 0.0  # extra: L1 inside the mouth opening (teeth, cavity); 0 = the original recipe
    d_num_blocks: int = 3
    d_block_expansion: int = 64
    d_max_features: int = 256
    non_decay: int = 4
    decay: int = 36
    samples_per_epoch: int = 1200
    seed: int = 1009
    val: List[str] = field(default_factory=list)
    val_samples: int = 48
    val_every: int = 200
    ckpt_every: int = 500
    max_steps: Optional[int] = None
    procedural_teeth_p: float = 0.3
    gan_start_step: int = 0  # >0: reconstruction-only warm-up (no D) for that many steps, for CPU budgets
    channel_gain: float = 0.0  # extra colour-cast augmentation (see MiniDatasetConfig)
    renderer_teeth_p: float = 0.0  # extra: sources labelled with the renderer's teeth geometry (see MiniDatasetConfig)


def lr_factor(epoch: int, cfg: MiniTrainConfig) -> float:
    """The original's LambdaLR: 1 for the first ``non_decay`` epochs, then linear decay to ~0."""
    return 1.0 - max(0, epoch - cfg.non_decay) / float(cfg.decay + 1)


def psnr(a: torch.Tensor, b: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-image PSNR (dB) of Bx3xHxW images in [0, 1], over ``mask`` (Bx1xHxW) when given."""
    err = (a - b) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        m = mask.expand_as(err)
        mse = (err * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def split_videos(data_dir: Path, val_patterns: List[str]):
    """Load every prepared ``*.npz``; those whose name contains a val pattern go to validation."""
    from talkingface.data.DHLive_mini_dataset import load_prepared

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
        from talkingface.models.common.Discriminator import Discriminator
        from talkingface.models.common.VGG19 import PerceptualLoss
        from talkingface.models.DINet_mini import DINet_mini

        self.cfg = cfg
        self.device = device
        torch.manual_seed(cfg.seed)
        # channels-last runs the small convolutions about 1.5x faster on CPU
        self.memory_format = torch.channels_last if device == "cpu" else torch.contiguous_format
        self.net_g = DINet_mini(3, 12).to(device, memory_format=self.memory_format)
        self.net_d = Discriminator(3, cfg.d_block_expansion, cfg.d_num_blocks, cfg.d_max_features).to(device)
        self.perceptual = PerceptualLoss(vgg_weights).to(device)
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=cfg.lr_g)
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=cfg.lr_d)
        self.epoch = 1
        self.step_count = 0

    def set_epoch_lr(self, epoch: int) -> None:
        f = lr_factor(epoch, self.cfg)
        for opt, base in ((self.opt_g, self.cfg.lr_g), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * f

    def step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        from talkingface.models.common.Discriminator import lsgan_loss
        from talkingface.models.common.VGG19 import half_scale_pair

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
        if self.cfg.lamb_interior > 0:
            inside = batch["interior_mask"].to(self.device)
            err = ((fake - target).abs() * inside).sum() / (3.0 * inside.sum()).clamp_min(1.0)
            loss_g = loss_g + self.cfg.lamb_interior * err
        loss_g.backward()
        self.opt_g.step()
        self.step_count += 1
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "loss_gan": loss_gan.item(),
                "loss_perception": loss_perc.item(), "loss_pixel": loss_pix.item()}

    @torch.no_grad()
    def validate(self, batches: List[Dict[str, torch.Tensor]]):
        """Mouth-region PSNR/SSIM of G on fixed held-out batches; returns (metrics, first fake)."""
        from talkingface.models.common.VGG19 import ssim

        self.net_g.eval()
        psnrs, ssims, first = [], [], None
        for batch in batches:
            fake = self.net_g(batch["ref"].to(self.device), batch["source"].to(self.device)).cpu()
            first = fake if first is None else first
            psnrs.append(psnr(fake, batch["target"], batch["mouth_mask"]))
            ssims.extend(float(ssim(fake[i:i + 1], batch["target"][i:i + 1])) for i in range(fake.shape[0]))
        return {"val_psnr_mouth": float(torch.cat(psnrs).mean()), "val_ssim": float(np.mean(ssims))}, first

    def state(self) -> dict:
        return {"epoch": self.epoch, "step": self.step_count,
                "state_dict": {"net_g": self.net_g.state_dict(), "net_d": self.net_d.state_dict()},
                "optimizer": {"net_g": self.opt_g.state_dict(), "net_d": self.opt_d.state_dict()}}

    def load(self, path: Path) -> None:
        with reading(path, "training checkpoint"):
            ckpt = torch.load(str(path), map_location=self.device, weights_only=True)
            self.net_g.load_state_dict(ckpt["state_dict"]["net_g"], strict=True)
            if "net_d" in ckpt["state_dict"]:
                self.net_d.load_state_dict(ckpt["state_dict"]["net_d"], strict=True)
            if "optimizer" in ckpt:
                self.opt_g.load_state_dict(ckpt["optimizer"]["net_g"])
                self.opt_d.load_state_dict(ckpt["optimizer"]["net_d"])
            self.epoch = int(ckpt.get("epoch", 1))
            self.step_count = int(ckpt.get("step", 0))


def save_checkpoint(trainer: MiniTrainer, out_dir: Path, name: str, extra: dict) -> Path:
    """Write ``out_dir/name`` atomically plus a sidecar JSON (config, data, metrics)."""
    path = out_dir / name
    with atomic_write(path) as tmp:
        torch.save(trainer.state(), tmp)
    write_text(path.with_suffix(".json"), json.dumps(extra, indent=2))
    return path


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("data_dir", type=Path, help="folder of prepared *.npz videos")
    parser.add_argument("--out", type=Path, default=user_checkpoint_dir() / "DINet_mini")
    parser.add_argument("--resume", type=Path, default=None, help="training checkpoint to continue from")
    parser.add_argument("--init", type=Path, default=None,
                        help="start G from these weights (any DINet_mini layout); a fresh schedule, unlike --resume")
    parser.add_argument("--vgg_weights", default=None, help="ImageNet VGG19 weights file (else L1+SSIM fallback)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--workers", type=int, default=1, help="data-loading worker processes")
    parser.add_argument("--max_minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("-v", "--verbose", action="store_true")
    for f in fields(MiniTrainConfig):
        if f.name == "val":
            parser.add_argument("--val", action="append", default=[], help="held-out name pattern (repeatable)")
        else:
            kind = int if f.type in ("int", "Optional[int]") else float
            parser.add_argument(f"--{f.name}", type=kind, default=f.default if f.default is not None else None)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    cfg = MiniTrainConfig(**{f.name: getattr(args, f.name) for f in fields(MiniTrainConfig)})
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.data_dir.is_dir():
        raise UserInputError(f"data folder not found: {args.data_dir}")
    if args.resume is not None and not args.resume.is_file():
        raise UserInputError(f"checkpoint not found: {args.resume}")

    from torch.utils.data import DataLoader
    from torch.utils.tensorboard import SummaryWriter

    from talkingface.data.DHLive_mini_dataset import DHLiveMiniDataset, MiniDatasetConfig

    train_videos, val_videos = split_videos(args.data_dir, cfg.val)
    log.info("training on %d videos (%d frames), validating on %d videos: %s", len(train_videos),
             sum(len(v) for v in train_videos), len(val_videos), ", ".join(v.name for v in val_videos) or "-")
    ds_cfg = MiniDatasetConfig(samples_per_epoch=cfg.samples_per_epoch, procedural_teeth_p=cfg.procedural_teeth_p,
                               channel_gain=cfg.channel_gain, renderer_teeth_p=cfg.renderer_teeth_p)
    train_set = DHLiveMiniDataset(train_videos, ds_cfg, seed=cfg.seed)
    val_batches = []
    if val_videos:
        val_set = DHLiveMiniDataset(val_videos, MiniDatasetConfig(samples_per_epoch=cfg.val_samples),
                                    seed=cfg.seed + 1, augment_images=False)
        val_batches = list(DataLoader(val_set, batch_size=12, shuffle=False))

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "val").mkdir(exist_ok=True)
    trainer = MiniTrainer(cfg, device, args.vgg_weights)
    if args.init is not None:
        from talkingface.models.DINet_mini import load_dinet_mini_state

        if not args.init.is_file():
            raise UserInputError(f"checkpoint not found: {args.init}")
        trainer.net_g.load_state_dict(load_dinet_mini_state(args.init), strict=True)
        log.info("generator initialised from %s", args.init)
    if args.resume is not None:
        trainer.load(args.resume)
        log.info("resumed from %s (epoch %d, step %d)", args.resume, trainer.epoch, trainer.step_count)
    writer = SummaryWriter(str(args.out / "log"))
    sidecar = {"config": asdict(cfg), "device": device, "perceptual": trainer.perceptual.mode,
               "train_videos": [v.name for v in train_videos], "val_videos": [v.name for v in val_videos]}
    start = time.time()
    last_epoch = cfg.non_decay + cfg.decay
    steps_per_epoch = max(1, cfg.samples_per_epoch // cfg.batch_size)
    metrics: Dict[str, float] = {}
    done = False
    bar = progress(total=cfg.max_steps, initial=trainer.step_count, unit="step", desc="DINet_mini")
    while trainer.epoch <= last_epoch and not done:
        trainer.set_epoch_lr(trainer.epoch)
        # a different, reproducible sample stream per epoch
        train_set.seed = cfg.seed * 1000 + trainer.epoch
        loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=False, drop_last=True,
                            num_workers=args.workers, persistent_workers=False)
        skip = trainer.step_count - (trainer.epoch - 1) * steps_per_epoch
        for i, batch in enumerate(loader):
            if i < skip:
                continue
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
                import cv2

                png = mosaic(val_batches[0], fake)
                cv2.imwrite(str(args.out / "val" / f"step_{s:06d}.png"), png[..., ::-1])
                log.info("step %d: %s", s, json.dumps({k: round(v, 4) for k, v in metrics.items()}))
            out_of_time = args.max_minutes is not None and (time.time() - start) / 60.0 >= args.max_minutes
            done = (cfg.max_steps is not None and s >= cfg.max_steps) or out_of_time
            if s % cfg.ckpt_every == 0 or done:
                save_checkpoint(trainer, args.out, f"epoch_{trainer.epoch}.pth",
                                dict(sidecar, step=s, epoch=trainer.epoch, metrics=metrics,
                                     wall_minutes=round((time.time() - start) / 60.0, 2)))
            if done:
                break
        if not done:
            trainer.epoch += 1
    bar.close()
    trainer.epoch = min(trainer.epoch, last_epoch)
    if val_batches:
        metrics, _ = trainer.validate(val_batches)
    final = save_checkpoint(trainer, args.out, f"epoch_{trainer.epoch}.pth",
                            dict(sidecar, step=trainer.step_count, epoch=trainer.epoch, metrics=metrics,
                                 wall_minutes=round((time.time() - start) / 60.0, 2)))
    writer.close()
    log.info("saved %s after %d steps (%.1f min): %s", final, trainer.step_count, (time.time() - start) / 60.0,
             json.dumps(metrics))
    return 0


if __name__ == "__main__":
    run_cli(main)
