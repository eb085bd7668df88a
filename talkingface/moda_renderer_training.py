"""Per-person training of MODA's TPE renderer on a person folder of ``data_preparation_moda.py --avatar``.

Each training pair: the condition image drawn from the frame's own tracked landmarks
(:func:`talkingface.moda_pipeline.draw_condition`, in memory, no video round trip), the person's
reference image and the TPE of the frame index i (t = i / 1000, the same rule at inference) -> the
real frame resized to R x R. Loss (G): ``100 L1 + LSGAN (summed over D scales) + 10 feature
matching``; D: LSGAN, ``0.666 real + 0.334 fake`` (the code's weighting). Adam 1e-4, (0.5, 0.999),
constant. No VGG loss (its weights need a download). One clip of the person (``val_clip``) is held
out whole for validation (PSNR of the full frame).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talkingface.config.moda import RendererConfig
from talkingface.moda_geometry import from_canonical
from talkingface.moda_pipeline import draw_condition, to_tensor
from talkingface.moda_training import GANTrainer
from talkingface.models.moda_renderer import MultiScalePatchGAN, TPERenderer
from talkingface.util.media import read_video

log = logging.getLogger(__name__)


@dataclass
class RendererTrainConfig:
    batch_size: int = 4
    lr: float = 1e-4
    betas: Tuple[float, float] = field(default=(0.5, 0.999), metadata={"nargs": 2})
    lambda_l1: float = 100.0
    lambda_fm: float = 10.0
    max_steps: int = 1900
    val_clip: int = field(default=-1, metadata={"help": "index of the person's clip held out (-1: none)"})
    save_every: int = 100
    log_every: int = 1
    seed: int = 777
    model: RendererConfig = field(default_factory=RendererConfig, metadata={"flag": False})


def load_person(folder: Path, size: int) -> Dict[str, np.ndarray]:
    """Frames (N, R, R, 3) uint8 BGR, conditions (N, R, R, 3), reference (R, R, 3), clip ids (N,)."""
    with np.load(folder / "subject.npz", allow_pickle=False) as d:
        dense, head7 = d["dense"].astype(np.float64), d["head7"]
        lengths = d["clip_lengths"] if "clip_lengths" in d else np.array([len(dense)])
        frame_size = tuple(int(x) for x in d["frame_size"])
    frames = read_video(folder / "video.mp4")[: len(dense)]
    pts = from_canonical(dense, head7)
    conds = np.stack([draw_condition(p, frame_size, size) for p in pts])
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    ref = cv2.resize(cv2.imread(str(folder / "reference.png")), (size, size), interpolation=cv2.INTER_AREA)
    return {"frames": small, "conditions": conds, "reference": ref,
            "clip": np.repeat(np.arange(len(lengths)), lengths)[: len(small)]}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two image batches in [-1, 1]."""
    mse = float(((a - b) / 2).pow(2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-10))


class RendererTrainer(GANTrainer):
    val_metric = "val_psnr_db"

    def __init__(self, cfg: RendererTrainConfig, person: Dict[str, np.ndarray], out_dir: Path, resume: bool = False):
        torch.manual_seed(cfg.seed)
        m = cfg.model
        self.setup(cfg, TPERenderer(m), MultiScalePatchGAN(m.in_channels + 3, m.ndf, m.d_layers, m.d_scales),
                   out_dir, resume)
        self.frames = torch.stack([to_tensor(f) for f in person["frames"]])
        self.conds = torch.stack([to_tensor(c) for c in person["conditions"]])
        self.ref = to_tensor(person["reference"])
        is_val = person["clip"] == cfg.val_clip
        self.train_idx, self.val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)

    def _inputs(self, idx: np.ndarray) -> torch.Tensor:
        ref = self.ref[None].expand(len(idx), -1, -1, -1)
        return self.g.make_input(self.conds[idx], ref, torch.tensor(idx / 1000.0))

    def train_step(self) -> Dict[str, float]:
        idx = self.rng.choice(self.train_idx, self.cfg.batch_size)
        x, real = self._inputs(idx), self.frames[idx]
        fake = self.g(x)
        d_real = self.d(torch.cat([x, real], 1))
        d_fake = self.d(torch.cat([x, fake.detach()], 1))
        loss_d = sum(0.666 * ((r[-1] - 1) ** 2).mean() + 0.334 * (f[-1] ** 2).mean() for r, f in zip(d_real, d_fake))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        g_out = self.d(torch.cat([x, fake], 1))
        gan = sum(((o[-1] - 1) ** 2).mean() for o in g_out)
        fm = sum(F.l1_loss(a, b.detach()) for go, dr in zip(g_out, d_real) for a, b in zip(go[:-1], dr[:-1]))
        l1 = F.l1_loss(fake, real)
        loss_g = gan + self.cfg.lambda_l1 * l1 + self.cfg.lambda_fm * fm / max(len(g_out), 1)
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return {"l1": float(l1.detach()), "gan": float(gan.detach()), "d": float(loss_d.detach())}

    @torch.no_grad()
    def validate(self) -> float:
        idx = self.val_idx if len(self.val_idx) else self.train_idx[:8]
        self.g.eval()
        vals = [psnr(self.g(self._inputs(idx[i:i + 8])), self.frames[idx[i:i + 8]]) for i in range(0, len(idx), 8)]
        self.g.train()
        return float(np.mean(vals))
