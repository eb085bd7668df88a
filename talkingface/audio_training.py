"""Training loop for Audio2Feature (docs/REFERENCE.md §6.2 step 3), used by the direct and distillation recipes.

Loss: L1 between ``pred[:, L + s:]`` and ``target[:, s : T - L]`` with lookahead L (the original:
4, i.e. step t + 4 predicts frame t) and ``s`` skipped steps (the original: 0), on targets
standardised per coefficient so Adam's step size suits any target units; export folds the
scaling back into the last layer. Distillation (``train_audio/distill.py``) uses the same loop
with targets = a frozen teacher's whole-file outputs on each augmented copy of the audio,
``L = 0`` (the teacher's lookahead is already in its outputs) and ``s = 4`` (the student's own
zero initial state).

Checkpoints: ``<out>/last.pth`` = {"model", "optimizer", "step", "config"} every ``save_every``
steps (resume with ``resume=True``); at the end ``<out>/<name>.pkl`` (plain state dict, the
original's layout) and its sidecar ``<name>.json``. TensorBoard logs in ``<out>/log``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from talkingface.config.training import LSTMTrainConfig
from talkingface.data.dataset_wav import worker_init
from talkingface.eval.metrics import best_offset
from talkingface.models.audio2bs_lstm import Audio2Feature
from talkingface.util.files import atomic_write, reading, write_model_card
from talkingface.util.cli import progress

log = logging.getLogger(__name__)


def _save_atomic(obj, path: Path) -> None:
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


class LSTMTrainer:
    """Owns model, optimiser, data and the output folder; ``run()`` trains until epochs/max_steps."""

    def __init__(self, cfg: LSTMTrainConfig, train_set, out_dir: Path,
                 val_set=None, resume: bool = False, init_state: Optional[dict] = None, target_norm=None):
        self.cfg, self.train_set, self.val_set, self.out = cfg, train_set, val_set, Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.device = torch.device(cfg.device)
        self.model = Audio2Feature().to(self.device)
        if init_state is not None:
            self.model.load_state_dict(init_state, strict=True)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
        # the net learns targets standardised by ``target_norm`` = (mean, std) per coefficient
        self.t_mean = torch.zeros(self.model.cfg.out_dim, device=self.device)
        self.t_std = torch.ones(self.model.cfg.out_dim, device=self.device)
        if target_norm is not None:
            self.t_mean, self.t_std = (torch.as_tensor(np.asarray(t), dtype=torch.float32, device=self.device)
                                       for t in target_norm)
        self.step = 0
        self.epoch = 0
        self.wall_s = 0.0  # training time over all runs (resumes included)
        if resume and (self.out / "last.pth").is_file():
            with reading(self.out / "last.pth", "training checkpoint"):
                ck = torch.load(self.out / "last.pth", map_location=self.device, weights_only=False)
                self.model.load_state_dict(ck["model"])
                self.opt.load_state_dict(ck["optimizer"])
                self.step, self.epoch = int(ck["step"]), int(ck.get("epoch", 0))
                self.wall_s = float(ck.get("wall_s", 0.0))
                if "target_norm" in ck:
                    self.t_mean, self.t_std = (t.to(self.device) for t in ck["target_norm"])
            log.info("resumed from %s at step %d", self.out / "last.pth", self.step)
        # Lazy: TensorBoard loads only when a training run starts.
        from torch.utils.tensorboard import SummaryWriter

        self.tb_train = SummaryWriter(str(self.out / "log" / "train"))
        self.tb_val = SummaryWriter(str(self.out / "log" / "val"))

    def _loss(self, feats: torch.Tensor, target: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        h0, c0 = net.init_state(feats.shape[0], self.device)
        pred, _, _ = net(feats, h0, c0)
        la, w = self.cfg.lookahead, self.cfg.skip
        target = (target - self.t_mean) / self.t_std
        return torch.nn.functional.l1_loss(pred[:, la + w:], target[:, w: target.shape[1] - la])

    def _loader(self, ds, batch: int, shuffle: bool) -> DataLoader:
        return DataLoader(ds, batch_size=batch, shuffle=shuffle, num_workers=self.cfg.num_workers,
                          worker_init_fn=worker_init, drop_last=False,
                          persistent_workers=self.cfg.num_workers > 0)

    @torch.no_grad()
    def validate(self) -> Optional[float]:
        if self.val_set is None:
            return None
        self.model.eval()
        losses = []
        for feats, target in self._loader(self.val_set, self.cfg.val_batch_size, False):
            losses.append(float(self._loss(feats.to(self.device), target.to(self.device), self.model)))
        self.model.train()
        return float(np.mean(losses)) if losses else None

    def save(self) -> None:
        _save_atomic({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                      "epoch": self.epoch, "config": asdict(self.cfg), "wall_s": self.wall_s,
                      "target_norm": (self.t_mean.cpu(), self.t_std.cpu())}, self.out / "last.pth")

    def run(self) -> dict:
        cfg = self.cfg
        loader = self._loader(self.train_set, cfg.batch_size, True)
        total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * len(loader)
        self.model.train()
        t0 = time.time()
        last_val = None
        bar = progress(total=total, initial=min(self.step, total), desc="train", unit="step")
        while self.step < total and self.epoch < cfg.epochs:
            for feats, target in loader:
                if cfg.cosine:
                    for group in self.opt.param_groups:
                        group["lr"] = 0.5 * cfg.lr * (1 + np.cos(np.pi * min(self.step / max(total, 1), 1.0)))
                loss = self._loss(feats.to(self.device), target.to(self.device), self.model)
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
                self.tb_train.add_scalar("loss", loss.item(), self.step)
                if self.step % cfg.val_every == 0:
                    last_val = self.validate()
                    if last_val is not None:
                        self.tb_val.add_scalar("loss", last_val, self.step)
                        log.info("step %d val L1 %.4f", self.step, last_val)
                if self.step % cfg.save_every == 0:
                    self.save()
                if self.step >= total:
                    break
            else:
                self.epoch += 1
        bar.close()
        self.wall_s += time.time() - t0
        self.save()
        if last_val is None:
            last_val = self.validate()
        self.tb_train.flush()
        self.tb_val.flush()
        return {"steps": self.step, "wall_s": round(self.wall_s, 1), "val_l1": last_val}

    def exported_state(self) -> dict:
        """The model's state dict on CPU, its outputs mapped back to the targets' units."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if not (bool((self.t_mean == 0).all()) and bool((self.t_std == 1).all())):
            std, mean = self.t_std.double().cpu().numpy(), self.t_mean.double().cpu().numpy()
            state = fold_output_map(state, OutputMap(np.diag(std), mean, 0, float("nan")))
        return state

    def export(self, card: dict, name: str = "audio") -> Path:
        """Write ``<out>/<name>.pkl`` (plain state dict) and its sidecar ``<name>.json``."""
        self.model.eval()
        state = self.exported_state()
        path = self.out / f"{name}.pkl"
        _save_atomic(state, path)
        write_model_card(path, card)
        return path


# ------------------------------------------------------------------------- mapping to our own bases
@dataclass
class OutputMap:
    """Linear map from a model's 6 outputs to a target space: ``target[t] ~ A @ out[t + shift] + c``.

    A: (6, 6); c: (6,); shift: frames (the mapped model's lookahead becomes ``4 + shift``);
    score: the selection score (see :func:`fit_output_map`); ridge: the chosen regularisation.
    """

    A: np.ndarray
    c: np.ndarray
    shift: int
    score: float
    ridge: float = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) @ self.A.T + self.c

    def then(self, other: "OutputMap") -> "OutputMap":
        """The composition ``other(self(x))`` (shift and score of ``self``)."""
        return OutputMap(other.A @ self.A, other.A @ self.c + other.c, self.shift, self.score, self.ridge)


def _pairs(preds, targets, shift: int):
    xs, ys = [], []
    for p, t in zip(preds, targets):
        n = min(len(p), len(t))
        p, t = p[:n], t[:n]
        if shift >= 0:
            x, y = p[shift:], t[: n - shift]
        else:
            x, y = p[: n + shift], t[-shift:]
        xs.append(x)
        ys.append(y)
    return xs, ys


def fit_linear(xs, ys, ridge: float = 0.0, shift: int = 0) -> OutputMap:
    """Ridge regression ``y ~ A x + c`` over lists of per-clip (N_i, D) arrays; ``ridge`` is relative
    to the number of rows, on standardised inputs (the intercept is not penalised)."""
    x, y = np.concatenate(xs), np.concatenate(ys)
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    reg = ridge * len(z) * np.eye(z.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(z.T @ z + reg, z.T @ y)
    A = (w[:-1] / sd[:, None]).T
    return OutputMap(A, w[-1] - A @ mu, shift, float("nan"), ridge)


def fit_output_map(preds, targets, shifts=range(-3, 4), ridges=(1e-3, 1e-1, 1.0, 10.0)) -> OutputMap:
    """Map model outputs onto measured coefficients, choosing the frame shift and the ridge by
    leave-one-clip-out cross-validation.

    preds, targets: lists of (N_i, 6) arrays per clip (model offline rows and true coefficients).
    Score of a (shift, ridge): mean over left-out clips of the best Pearson r (lags -5..+5) between
    the mapped coefficient 0 and the true one, the figure the held-out evaluation reports. The
    returned map is refitted on all clips.
    """
    best = None
    for shift in shifts:
        xs, ys = _pairs(preds, targets, shift)
        for ridge in ridges:
            rs = []
            for k in range(len(xs)):
                m = fit_linear(xs[:k] + xs[k + 1:], ys[:k] + ys[k + 1:], ridge) if len(xs) > 1 else \
                    fit_linear(xs, ys, ridge)
                rs.append(best_offset(m(xs[k])[:, 0], ys[k][:, 0])[1])
            score = float(np.nanmean(rs))
            if best is None or score > best[0] + 1e-9:
                best = (score, shift, ridge)
    score, shift, ridge = best
    xs, ys = _pairs(preds, targets, shift)
    m = fit_linear(xs, ys, ridge, shift)
    m.score = score
    return m


def match_amplitude(m: OutputMap, preds, targets, dims=(0,)) -> OutputMap:
    """Rescale output ``dims`` of ``m`` about their mean so that, within clips, they move as much as the
    true coefficients do (pooled within-clip std), instead of the least-squares shrinkage toward the
    mean (which makes a rendered mouth mumble). Correlations are unchanged.

    preds, targets: the per-clip lists given to :func:`fit_output_map`.
    """
    xs, ys = _pairs(preds, targets, m.shift)
    out = [m(x) for x in xs]
    A, c = m.A.copy(), m.c.copy()
    gains = {}
    for j in dims:
        pred_var = np.mean([np.var(o[:, j]) for o in out])
        true_var = np.mean([np.var(y[:, j]) for y in ys])
        g = float(np.sqrt(true_var / max(pred_var, 1e-12)))
        mu = float(np.mean(np.concatenate([o[:, j] for o in out])))
        A[j] *= g
        c[j] = g * c[j] + (1.0 - g) * mu
        gains[j] = g
    log.info("amplitude gains %s", {k: round(v, 3) for k, v in gains.items()})
    return OutputMap(A, c, m.shift, m.score, m.ridge)


def fold_output_map(state: dict, m: OutputMap) -> dict:
    """A copy of an Audio2Feature state dict whose last Linear (``fc.6``) also applies ``m``."""
    out = {k: v.clone() for k, v in state.items()}
    A = torch.as_tensor(m.A, dtype=torch.float64)
    w, b = out["fc.6.weight"].double(), out["fc.6.bias"].double()
    out["fc.6.weight"] = (A @ w).float()
    out["fc.6.bias"] = (A @ b + torch.as_tensor(m.c, dtype=torch.float64)).float()
    return out
