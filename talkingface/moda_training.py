"""Training loops of MODA-lite and FaCo-Net (CPU-capable, exact resume, TensorBoard).

MODA loss (the code's, plus masks): ``5 MSE(lip) + MSE(eye) + MSE(head) + MSE(torso)`` and velocity
L1 of first differences weighted ``(5, 1, 1, 0.5)``, each averaged over the valid frames of the
samples whose source trains that head, on standardised targets; ``+ beta KL`` with beta annealed
linearly over ``kl_anneal_steps`` (0 = the code), the KL optionally with ``free_bits`` per latent
dimension; in ``cvae`` mode optionally ``+ prior_stat_weight * motion_stat_loss`` of a pass with z
from the prior (:func:`motion_stat_loss`) and ``+ blink_stat_weight * blink_stat_loss`` of the same pass
(:func:`blink_stat_loss`). ``freeze_lip_path`` keeps the audio encoder, the subject encoder and SpecAttn as the
initialising checkpoint left them (the all-heads stage otherwise drags the lips' features towards
the eye/head losses: lip r 0.48 -> 0.42-0.44 in the runs of docs/MODA.md). AdamW (0.9, 0.99), weight decay 0.01, cosine
decay of the learning rate over ``max_steps``.

FaCo loss: ``LSGAN(D(fake) -> 1) + lambda_l1 * L1(dense)``; D: ``(2 MSE(D(real), 1) + MSE(D(fake), 0)) / 2``
(the code's weighting); ``gan_all_samples=False`` scores only the last sample as the code does.

Resume: ``<out>/last.pth`` (the GAN trainers: the layout of :mod:`talkingface.gan_training`) holds
model(s), optimiser(s), step, the numpy and torch RNG states,
target statistics and the accumulated wall time, so ``--resume`` continues the same run exactly.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from talkingface.config.moda import FaCoTrainConfig, MODATrainConfig
from talkingface.data.moda_clips import ClipRecord, subject_means
from talkingface.data.moda_dataset import (HEADS, SUBJECT_SCALE, PreparedClip, TargetStats, WindowSampler,
                                           full_clip_batch, subject_vector)
from talkingface.eval.motion import EAR_PAIRS
from talkingface.gan_training import adam_pair, restore_training_checkpoint, save_training_checkpoint
from talkingface.models.faco import FaCoNet, PointDiscriminator, lsgan_loss
from talkingface.models.moda import MODANet, kl_divergence
from talkingface.moda_geometry import EYES, LIPS, canonical_mean_face
from talkingface.util.files import atomic_write

log = logging.getLogger(__name__)

UPPER_LIP, LOWER_LIP = LIPS.index(13), LIPS.index(14)
#: Flat indices into the eye head (180 = 60 points x (x, y, z)) of the y of the upper and lower lid
#: points of the 6 vertical eyelid pairs the blink measure (eval.motion.EAR_PAIRS) uses.
LID_Y = tuple(torch.tensor([3 * EYES.index(pair[j]) + 1 for eye in EAR_PAIRS for pair in eye[:3]]) for j in (0, 1))


def save_atomic(obj, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def lip_gap(lip: np.ndarray) -> np.ndarray:
    """Inner-lip gap (N,) from lips (N, 120) canonical deltas or points (points 13 and 14)."""
    p = np.asarray(lip).reshape(len(lip), 40, 3)
    return np.linalg.norm(p[:, LOWER_LIP, :2] - p[:, UPPER_LIP, :2], axis=-1)


def _tensors(batch: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def masked_losses(pred: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Per head: MSE and velocity L1 over valid frames of samples whose mask is on."""
    out = {}
    valid = batch["valid"].float()
    for k in HEADS:
        w = valid * batch[f"mask_{k}"][:, None]
        err = ((pred[k] - batch[k]) ** 2).mean(-1)
        out[k] = (err * w).sum() / w.sum().clamp(min=1.0)
        dv = ((pred[k][:, 1:] - pred[k][:, :-1]) - (batch[k][:, 1:] - batch[k][:, :-1])).abs().mean(-1)
        wv = w[:, 1:] * w[:, :-1]
        out[f"vel_{k}"] = (dv * wv).sum() / wv.sum().clamp(min=1.0)
    return out


def motion_stat_loss(pred: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor],
                     heads: Sequence[str] = ("eye", "head")) -> torch.Tensor:
    """Spread/energy matching of sampled motion: per sample and dimension, the temporal std over the
    valid frames and the mean absolute first difference, L1 between prediction and target, averaged
    over dimensions and the samples whose mask trains the head; summed over ``heads``.

    A statistic of the window, not of each frame: a sample drawn from the prior cannot know where the
    real clip blinks or turns, but it can be made to move as much and as fast (blinks are the fast,
    sparse part of the eye signal that the velocity term sees)."""
    valid = batch["valid"].float()
    n = valid.sum(1).clamp(min=2.0)[:, None]  # (B, 1)
    wv = valid[:, 1:] * valid[:, :-1]
    total = 0.0
    for k in heads:
        m = batch[f"mask_{k}"] * (valid.sum(1) > 2).float()
        if m.sum() == 0:
            continue
        stats = []
        for x in (pred[k], batch[k]):
            mean = (x * valid[..., None]).sum(1) / n
            std = ((((x - mean[:, None]) ** 2) * valid[..., None]).sum(1) / n + 1e-6).sqrt()
            vel = ((x[:, 1:] - x[:, :-1]).abs() * wv[..., None]).sum(1) / wv.sum(1).clamp(min=1.0)[:, None]
            stats.append((std, vel))
        err = ((stats[0][0] - stats[1][0]).abs() + (stats[0][1] - stats[1][1]).abs()).mean(-1)  # (B,)
        total = total + (err * m).sum() / m.sum()
    return torch.as_tensor(total)


def eye_opening(eye: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Eyelid opening change (B, T) in canonical px from standardised eye deltas (B, T, 180) and their
    per-dimension std (180,): the mean over both eyes' 3 vertical lid pairs of lower-lid y minus
    upper-lid y (the subject's mean opening cancels; a blink is a sharp negative dip)."""
    upper, lower = LID_Y
    return (eye[..., lower] * std[lower] - eye[..., upper] * std[upper]).mean(-1)


def blink_stat_loss(pred_eye: torch.Tensor, batch: Dict[str, torch.Tensor], std: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein distance between the distributions of the eyelid opening (:func:`eye_opening`)
    over each window's valid frames, predicted vs target, in canonical px, averaged over the samples
    whose eye mask is on.

    Why: :func:`motion_stat_loss` matches the eye signal's std and mean speed, which a sample can meet
    with small continuous lid wobble and no blink; matching the sorted openings (every quantile) asks
    for as many deeply closed frames as the real window has, wherever they fall in time."""
    valid = batch["valid"].bool()
    n = valid.sum(1)
    # invalid frames sort to the end of both series with the same value, so they add exactly 0 to the sum
    far = torch.finfo(pred_eye.dtype).max
    op_p = eye_opening(pred_eye, std).masked_fill(~valid, far).sort(-1).values
    op_t = eye_opening(batch["eye"], std).masked_fill(~valid, far).sort(-1).values
    per_sample = (op_p - op_t).abs().sum(1) / n.clamp(min=1)
    use = (batch["mask_eye"] > 0) & (n >= 2)
    return per_sample[use].mean() if use.any() else pred_eye.new_zeros(())


class MODATrainer:
    """Train MODANet on prepared clips; ``run()`` until ``cfg.max_steps``."""

    def __init__(self, cfg: MODATrainConfig, train: Sequence[PreparedClip], val: Sequence[PreparedClip],
                 out_dir: Path, resume: bool = False, init: Optional[Path] = None):
        self.cfg, self.val, self.out = cfg, list(val), Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.model = MODANet(cfg.model)
        self.stats = TargetStats.fit(list(train))
        if init is not None:
            ck = torch.load(init, map_location="cpu", weights_only=False)
            if "state_dict" not in ck:  # another run's last.pth
                ck = {"state_dict": ck["model"], "stats": ck["stats"]}
            own = self.model.state_dict()
            state = {k: v for k, v in ck["state_dict"].items() if k in own and own[k].shape == v.shape}
            missing, _ = self.model.load_state_dict(state, strict=False)
            self.stats = TargetStats.from_dict(ck["stats"])
            log.info("initialised from %s (new or resized parameters: %s)", init, missing)
        for p in self.frozen_parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=cfg.lr, betas=tuple(cfg.betas),
                                     weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng(cfg.seed)
        self.step, self.wall_s = 0, 0.0
        if resume and (self.out / "last.pth").is_file():
            ck = torch.load(self.out / "last.pth", map_location="cpu", weights_only=False)
            self.model.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["optimizer"])
            self.step, self.wall_s = int(ck["step"]), float(ck["wall_s"])
            self.rng.bit_generator.state = ck["numpy_rng"]
            torch.set_rng_state(ck["torch_rng"])
            self.stats = TargetStats.from_dict(ck["stats"])
            log.info("resumed from %s at step %d", self.out / "last.pth", self.step)
        f = cfg.speech_fraction
        weights = ({"speech": f, "av": 1 - f} if cfg.stage == "lips"
                   else {"speech": f, "av": 0.65 * (1 - f), "silent": 0.35 * (1 - f)})
        self.sampler = WindowSampler(train, cfg.window, weights, self.stats, cfg.model, cfg.audio_dropout)
        # Lazy: TensorBoard loads only when a training run starts.
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.out / "log"))

    @property
    def eye_std(self) -> torch.Tensor:
        """(180,) std of the standardised eye targets (canonical px)."""
        return torch.from_numpy(self.stats.std["eye"])

    def frozen_modules(self) -> list:
        """The sub-networks ``freeze_lip_path`` keeps fixed (none without it)."""
        m = self.model
        return [m.audio, m.subject, m.spec] if self.cfg.freeze_lip_path else []

    def frozen_parameters(self) -> list:
        return [p for mod in self.frozen_modules() for p in mod.parameters()]

    def train_mode(self) -> None:
        """model.train(), with the frozen sub-networks in eval mode (fixed BatchNorm statistics, no dropout)."""
        self.model.train()
        for mod in self.frozen_modules():
            mod.eval()

    def loss(self, batch: Dict[str, torch.Tensor], step: int) -> Dict[str, torch.Tensor]:
        cfg = self.cfg
        tg = None
        if cfg.model.prob_mode == "cvae":
            tg = torch.cat([batch[k] * batch[f"mask_{k}"][:, None, None] for k in ("eye", "head", "torso")], -1)
        pred = self.model(batch["fbank"], batch["subject"], batch["valid"], batch["has_audio"], tg)
        parts = masked_losses(pred, batch)
        heads = ("lip",) if cfg.stage == "lips" else HEADS
        w = dict(zip(HEADS, (cfg.lip_weight, 1.0, 1.0, 1.0)))
        vw = dict(zip(HEADS, cfg.vel_weights))
        total = sum(w[k] * parts[k] + vw[k] * parts[f"vel_{k}"] for k in heads)
        lat_valid = pred.get("latent_valid", batch["valid"])
        with torch.no_grad():
            parts["kl"] = kl_divergence(pred["mu"], pred["logvar"], lat_valid)  # logged: the plain KL
        kl_term = kl_divergence(pred["mu"], pred["logvar"], lat_valid, cfg.free_bits)
        if (cfg.prior_stat_weight > 0 or cfg.blink_stat_weight > 0) and tg is not None and cfg.stage != "lips":
            # one pass with z from the prior serves both terms; each is computed only when it is on
            prior = self.model(batch["fbank"], batch["subject"], batch["valid"], batch["has_audio"])
            if cfg.prior_stat_weight > 0:
                parts["prior_stat"] = motion_stat_loss(prior, batch)
                total = total + cfg.prior_stat_weight * parts["prior_stat"]
            if cfg.blink_stat_weight > 0:
                parts["blink_stat"] = blink_stat_loss(prior["eye"], batch, self.eye_std)
                total = total + cfg.blink_stat_weight * parts["blink_stat"]
        beta = cfg.kl_weight * min(1.0, step / max(cfg.kl_anneal_steps, 1))
        parts["total"] = total + beta * kl_term
        return parts

    def _lr(self) -> float:
        return 0.5 * self.cfg.lr * (1 + np.cos(np.pi * min(self.step / max(self.cfg.max_steps, 1), 1.0)))

    def save(self) -> None:
        save_atomic({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                     "wall_s": self.wall_s, "numpy_rng": self.rng.bit_generator.state,
                     "torch_rng": torch.get_rng_state(), "stats": self.stats.to_dict(),
                     "config": asdict(self.cfg)}, self.out / "last.pth")

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Whole validation clips: per-head MSE (standardised) and the lip-gap correlation r."""
        if not self.val:
            return {}
        self.model.eval()
        errs: Dict[str, list] = {k: [] for k in HEADS}
        rs = []
        g = torch.Generator().manual_seed(0)
        for c in self.val:
            pred = self.model(**_tensors(full_clip_batch(c, self.cfg.model)), generator=g)
            for k in HEADS:
                if c.masks[k]:
                    p = pred[k][0].numpy() * self.stats.std[k]
                    errs[k].append(float((((p - c.targets[k]) / self.stats.std[k]) ** 2).mean()))
            if c.masks["lip"] and c.has_audio:
                gap_p = lip_gap(pred["lip"][0].numpy() * self.stats.std["lip"] + mean_lip_points(c))
                gap_t = lip_gap(c.targets["lip"] + mean_lip_points(c))
                if gap_p.std() > 0 and gap_t.std() > 0:
                    rs.append(float(np.corrcoef(gap_p, gap_t)[0, 1]))
        self.train_mode()
        out = {f"mse_{k}": float(np.mean(v)) for k, v in errs.items() if v}
        if rs:
            out["lip_gap_r"] = float(np.mean(rs))
        return out

    def run(self, until: Optional[int] = None) -> dict:
        """Train to ``max_steps`` (or stop early at step ``until``, saving, as an interruption would)."""
        cfg = self.cfg
        stop = min(cfg.max_steps, until or cfg.max_steps)
        self.train_mode()
        t0, last = time.time(), {}
        while self.step < stop:
            for group in self.opt.param_groups:
                group["lr"] = self._lr()
            batch = _tensors(self.sampler.sample(self.rng, cfg.batch_size, cfg.subject_jitter_px))
            parts = self.loss(batch, self.step)
            self.opt.zero_grad()
            parts["total"].backward()
            self.opt.step()
            self.step += 1
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                for k, v in parts.items():
                    self.tb.add_scalar(f"train/{k}", float(v.detach()), self.step)
                log.info("step %d loss %.4f lip %.4f eye %.4f head %.4f kl %.3f prior_stat %.3f blink_stat %.3f",
                         self.step, *(float(parts[k].detach()) for k in ("total", "lip", "eye", "head", "kl")),
                         *(float(parts.get(k, torch.zeros(())).detach()) for k in ("prior_stat", "blink_stat")))
            if self.step % cfg.save_every == 0 or self.step == stop:
                self.wall_s += time.time() - t0
                t0 = time.time()
                last = self.validate()
                for k, v in last.items():
                    self.tb.add_scalar(f"val/{k}", v, self.step)
                log.info("step %d val %s", self.step, {k: round(v, 4) for k, v in last.items()})
                self.save()
        self.wall_s += time.time() - t0
        self.tb.flush()
        return {"steps": self.step, "wall_s": round(self.wall_s, 1), "val": last}

    def export(self, path: Path) -> Path:
        """``{"config", "state_dict", "stats"}`` for :class:`talkingface.moda_pipeline.MODAPredictor`."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        save_atomic({"config": asdict(self.cfg.model), "state_dict": state, "stats": self.stats.to_dict()}, path)
        return path


def mean_lip_points(c: PreparedClip) -> np.ndarray:
    """The subject's mean lips (120,) canonical px, recovered from its subject vector."""
    mean = c.subject.reshape(478, 3) * SUBJECT_SCALE + canonical_mean_face()
    return mean[LIPS].reshape(-1)


# ------------------------------------------------------------------------------------------ FaCo
def faco_rows(records: Sequence[ClipRecord]) -> Dict[str, np.ndarray]:
    """Frame rows of face clips: lip (N,120), eye (N,180), dense (N,1434) deltas from each clip's mean
    mesh (canonical px) and subject (N,1434) network inputs (:func:`subject_vector`). float32."""
    rows: Dict[str, list] = {"lip": [], "eye": [], "dense": [], "subject": []}
    for r in records:
        mean = subject_means(r)["dense"]
        d = r.dense.astype(np.float64) - mean
        n = len(d)
        rows["lip"].append(d[:, LIPS].reshape(n, -1))
        rows["eye"].append(d[:, EYES].reshape(n, -1))
        rows["dense"].append(d.reshape(n, -1))
        rows["subject"].append(np.repeat(subject_vector(mean)[None], n, axis=0))
    return {k: np.concatenate(v).astype(np.float32) for k, v in rows.items()}


class GANTrainer:
    """Shared state of the two GAN trainers (FaCo-Net, the renderer): generator ``g``, discriminator
    ``d``, their Adam optimisers, step, wall time, RNG states. ``last.pth`` has the GAN checkpoint
    layout of :mod:`talkingface.gan_training` plus wall time, RNG states and config (exact resume)."""

    def setup(self, cfg, g: torch.nn.Module, d: torch.nn.Module, out_dir: Path, resume: bool) -> None:
        self.cfg, self.g, self.d, self.out = cfg, g, d, Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.opt_g, self.opt_d = adam_pair(g, d, cfg.lr, cfg.lr, cfg.betas)
        self.rng = np.random.default_rng(cfg.seed)
        self.step, self.wall_s = 0, 0.0
        if resume and (self.out / "last.pth").is_file():
            ck = restore_training_checkpoint(self.out / "last.pth", g, d, self.opt_g, self.opt_d,
                                             what=type(self).__name__)
            self.step, self.wall_s = int(ck["step"]), float(ck["wall_s"])
            self.rng.bit_generator.state = ck["numpy_rng"]
            torch.set_rng_state(ck["torch_rng"])
            log.info("resumed from %s at step %d", self.out / "last.pth", self.step)
        # Lazy: TensorBoard loads only when a training run starts.
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.out / "log"))

    def save(self) -> None:
        save_training_checkpoint(self.out / "last.pth", self.g, self.d, self.opt_g, self.opt_d, None, self.step,
                                 extra={"wall_s": self.wall_s, "numpy_rng": self.rng.bit_generator.state,
                                        "torch_rng": torch.get_rng_state(), "config": asdict(self.cfg)})

    #: Name of :meth:`validate`'s number (TensorBoard ``val/<name>``, the key in :meth:`run`'s result).
    val_metric = "val"

    def train_step(self) -> Dict[str, float]:
        """One D and one G update; the scalar losses to log."""
        raise NotImplementedError

    def validate(self) -> float:
        raise NotImplementedError

    def run(self) -> dict:
        """Train to ``cfg.max_steps``: log every ``cfg.log_every`` steps; validate and save ``last.pth``
        every ``cfg.save_every`` steps and at the end."""
        cfg = self.cfg
        t0, val = time.time(), float("nan")
        while self.step < cfg.max_steps:
            parts = self.train_step()
            self.step += 1
            if self.step % cfg.log_every == 0:
                for k, v in parts.items():
                    self.tb.add_scalar(f"train/{k}", v, self.step)
            if self.step % cfg.save_every == 0 or self.step == cfg.max_steps:
                self.wall_s += time.time() - t0
                t0 = time.time()
                val = self.validate()
                self.tb.add_scalar(f"val/{self.val_metric}", val, self.step)
                log.info("step %d train %s, %s %.3f", self.step, {k: round(v, 4) for k, v in parts.items()},
                         self.val_metric, val)
                self.save()
        self.wall_s += time.time() - t0
        self.tb.flush()
        return {"steps": self.step, "wall_s": round(self.wall_s, 1), self.val_metric: val}

    def export(self, path: Path) -> Path:
        """The generator for inference: ``{"config": the model config, "state_dict"}``."""
        save_atomic({"config": asdict(self.cfg.model), "state_dict": self.g.state_dict()}, path)
        return path


class FaCoTrainer(GANTrainer):
    """Frame-wise FaCo-Net training on (lip, eye, dense, subject) rows of video clips."""

    val_metric = "val_l1_px"

    def __init__(self, cfg: FaCoTrainConfig, train: Dict[str, np.ndarray], val: Dict[str, np.ndarray],
                 out_dir: Path, resume: bool = False):
        self.train, self.val = train, val
        torch.manual_seed(cfg.seed)
        self.setup(cfg, FaCoNet(cfg.model), PointDiscriminator(cfg.model), out_dir, resume)

    def _batch(self) -> Dict[str, torch.Tensor]:
        n = len(self.train["dense"])
        idx = self.rng.integers(0, n, self.cfg.batch_size)
        b = {k: torch.from_numpy(v[idx]) for k, v in self.train.items()}
        if self.cfg.subject_jitter_px > 0:
            b["subject"] = b["subject"] + torch.from_numpy(
                self.rng.normal(0, self.cfg.subject_jitter_px / SUBJECT_SCALE, b["subject"].shape).astype(np.float32))
        return b

    @torch.no_grad()
    def validate(self) -> float:
        """Mean absolute dense error (canonical px) on the validation rows."""
        self.g.eval()
        v = {k: torch.from_numpy(a) for k, a in self.val.items()}
        err = (self.g(v["lip"], v["eye"], v["subject"]) - v["dense"]).abs().mean().item()
        self.g.train()
        return err

    def train_step(self) -> Dict[str, float]:
        cfg = self.cfg
        b = self._batch()
        fake = self.g(b["lip"], b["eye"], b["subject"])
        loss_d = 0.5 * (2 * lsgan_loss(self.d(b["lip"], b["eye"], b["dense"], b["subject"]), True,
                                       cfg.gan_all_samples)
                        + lsgan_loss(self.d(b["lip"], b["eye"], fake.detach(), b["subject"]), False,
                                     cfg.gan_all_samples))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        l1 = (fake - b["dense"]).abs().mean()
        loss_g = lsgan_loss(self.d(b["lip"], b["eye"], fake, b["subject"]), True, cfg.gan_all_samples) \
            + cfg.lambda_l1 * l1
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()
        return {"l1": float(l1.detach()), "loss_d": float(loss_d.detach())}
