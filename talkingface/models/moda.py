"""MODA ("Mapping-Once Audio-driven portrait animation with Dual Attentions") at 25 fps, CPU-sized.

One forward pass maps speech + a subject's mean face to per-frame deltas (from the subject's means,
in the canonical 512-px space of :mod:`talkingface.moda_geometry`) of 40 lip points (120), 60 eye
points (180), head motion (7: yaw, pitch, roll in degrees, anchor x/y/z px, scale) and 18 shoulder
points (54). Two branches read the same features:

- SpecAttn (deterministic): a 3-layer transformer decoder over PPE(s_a + v_s) whose self-attention
  carries a periodic ALiBi causal bias and whose cross-attention to s_a is restricted to the same
  frame (the "alignment bias");
- ProbAttn (probabilistic): a 3-layer encoder -> mu, log sigma^2 per frame -> z = mu + sigma * eps
  -> a 3-layer decoder attending to Linear(z).

Both are concatenated (B, T, 256) and read by four MLP heads with BatchNorm over the valid frames.
The audio encoder runs on the project's kaldi fbank (80 bins, 25 ms / 10 ms, 4 frames per video
frame, per-utterance mean/variance normalisation) instead of wav2vec2. Code-vs-paper switches live
in :class:`talkingface.config.moda.MODAConfig`; the behaviour of each is documented in docs/MODA.md.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import torch
from torch import nn

from talkingface.audio_features import FbankConfig, compute_fbank
from talkingface.config.moda import MODAConfig

#: fbank options of MODA's front end: 4 frames per 40 ms video frame.
MODA_FBANK = FbankConfig(frame_length_ms=25.0, frame_shift_ms=10.0)


# ------------------------------------------------------------------------------------- audio features
def moda_fbank(audio: np.ndarray, n_frames: int, cfg: MODAConfig = MODAConfig()) -> np.ndarray:
    """Waveform (S,) float32 16 kHz in [-1, 1] -> (n_frames * 4, 80) float32, normalised per bin over
    the utterance (zero mean, unit variance). Missing trailing frames repeat the last one."""
    need = n_frames * cfg.fbank_per_frame
    feats = compute_fbank(np.asarray(audio, np.float32), MODA_FBANK)
    if len(feats) == 0:
        feats = np.zeros((1, cfg.n_mels), np.float32)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-5)
    if len(feats) < need:
        feats = np.concatenate([feats, np.repeat(feats[-1:], need - len(feats), axis=0)])
    return feats[:need].astype(np.float32)


# ----------------------------------------------------------------------------------- building blocks
def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


class MaskedMLP(nn.Module):
    """Linear layers with BatchNorm1d + LeakyReLU(0.2) between them (none after the last).

    forward(x (B, T, D_in), valid (B, T) bool or None) -> (B, T, D_out); BatchNorm statistics come
    from the valid frames only (padding frames are packed out and returned as zeros).
    """

    def __init__(self, dims, norm: bool = True):
        super().__init__()
        layers = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                if norm:
                    layers.append(nn.BatchNorm1d(dims[i + 1]))
                layers.append(_lrelu())
        self.net = nn.Sequential(*layers)
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() == 2:
            return self.net(x)
        b, t, _ = x.shape
        if valid is None:
            return self.net(x.reshape(b * t, -1)).reshape(b, t, -1)
        out = x.new_zeros(b, t, self.out_dim)
        out[valid] = self.net(x[valid])
        return out


def sinusoid_table(length: int, dim: int) -> torch.Tensor:
    """(length, dim) sine/cosine position table (even dims sin, odd dims cos)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class PeriodicPositionalEncoding(nn.Module):
    """PPE: PE(k) = PE(k mod period), added to (B, T, D), then dropout."""

    def __init__(self, dim: int, period: int, max_len: int, dropout: float):
        super().__init__()
        reps = max_len // period + 1
        self.register_buffer("pe", sinusoid_table(period, dim).repeat(reps, 1), persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x + self.pe[None, : x.shape[1]])


class PositionalEncoding(nn.Module):
    """Plain sinusoid PE of ProbAttn. ``time_axis=False`` reproduces the released code, which indexes
    the table by the batch position: sample b gets the constant pe[b] at every frame."""

    def __init__(self, dim: int, max_len: int, dropout: float, time_axis: bool):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_len, dim), persistent=False)
        self.time_axis = time_axis
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_axis:
            return self.drop(x + self.pe[None, : x.shape[1]])
        return self.drop(x + self.pe[: x.shape[0], None])


def periodic_alibi_mask(t: int, period: int, slope: float = 2.0 ** -8) -> torch.Tensor:
    """SpecAttn self-attention bias (T, T) float: -slope * floor((i - j) / period) for j <= i,
    -inf for j > i (the same bias for every head, as the code builds it with one head)."""
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    bias = -slope * torch.div(i - j, period, rounding_mode="floor").float()
    return bias.masked_fill(j > i, float("-inf"))


def alignment_mask(t: int) -> torch.Tensor:
    """SpecAttn cross-attention mask (T, T) bool: True (blocked) everywhere but the diagonal."""
    return ~torch.eye(t, dtype=torch.bool)


def future_mask(t: int, causal: bool) -> torch.Tensor:
    """ProbAttn decoder self-attention mask (T, T) float: the code's +1 on strictly future logits
    (not causal), or -inf there with ``causal``."""
    fut = torch.ones(t, t).triu(1).bool()
    return torch.zeros(t, t).masked_fill(fut, float("-inf") if causal else 1.0)


def _pad_bias(valid: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Key padding as a float additive mask (B, T): 0 valid, -inf padding (None when all valid)."""
    if valid is None:
        return None
    return torch.zeros(valid.shape, device=valid.device).masked_fill(~valid, float("-inf"))


def _decoder(cfg: MODAConfig) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(cfg.hidden, cfg.n_head, cfg.ffn, cfg.dropout, batch_first=True)
    return nn.TransformerDecoder(layer, cfg.n_layers)


def _encoder(cfg: MODAConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.n_head, cfg.ffn, cfg.dropout, batch_first=True)
    return nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)


# ---------------------------------------------------------------------------------------- encoders
class AudioEncoder(nn.Module):
    """fbank (B, 4T, 80) -> s_a (B, T, 128).

    ``conv``: Conv1d(80->128, k5) LReLU Conv1d(128->128, k5) LReLU at 100 Hz, stack 4 -> MLP
    512->128 (4 layers, BN), then a residual Conv1d(128->128, k5) at 25 Hz (about +-120 ms of
    context). ``mel``: stack 4 -> MLP 320->128 (4 layers, BN), the code's dormant mel head.
    """

    def __init__(self, cfg: MODAConfig):
        super().__init__()
        self.cfg = cfg
        h, k = cfg.hidden, cfg.fbank_per_frame
        if cfg.audio_head == "conv":
            self.front = nn.Sequential(nn.Conv1d(cfg.n_mels, h, 5, padding=2), _lrelu(),
                                       nn.Conv1d(h, h, 5, padding=2), _lrelu())
            self.mlp = MaskedMLP([k * h, h, h, h, h])
            self.post = nn.Conv1d(h, h, 5, padding=2)
        elif cfg.audio_head == "mel":
            self.front = None
            self.mlp = MaskedMLP([k * cfg.n_mels, h, h, h, h])
            self.post = None
        else:
            raise ValueError(f"unknown audio_head {cfg.audio_head!r}: use conv or mel")

    def forward(self, fbank: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, f, _ = fbank.shape
        t = f // self.cfg.fbank_per_frame
        x = fbank
        if self.front is not None:
            x = self.front(x.transpose(1, 2)).transpose(1, 2)
        x = self.mlp(x.reshape(b, t, -1), valid)
        if self.post is not None:
            x = x + self.post(x.transpose(1, 2)).transpose(1, 2)
        return x


class SpecAttn(nn.Module):
    """Deterministic branch: tgt = PPE(s_a + v_s), memory = s_a; periodic ALiBi causal self-attention,
    same-frame cross-attention. (B, T, 128) x 2 -> x_short (B, T, 128)."""

    def __init__(self, cfg: MODAConfig):
        super().__init__()
        self.cfg = cfg
        self.ppe = PeriodicPositionalEncoding(cfg.hidden, cfg.period, cfg.max_len, cfg.dropout)
        self.decoder = _decoder(cfg)

    def forward(self, s_a: torch.Tensor, v_s: torch.Tensor) -> torch.Tensor:
        t = s_a.shape[1]
        tgt = self.ppe(s_a + v_s[:, None])
        self_mask = periodic_alibi_mask(t, self.cfg.period, self.cfg.alibi_slope).to(s_a.device)
        return self.decoder(tgt, s_a, tgt_mask=self_mask, memory_mask=alignment_mask(t).to(s_a.device))


class ProbAttn(nn.Module):
    """Probabilistic branch (transformer VAE).

    enc_in = PE(v_s repeated over T) + s_a (+ Linear(targets) in ``cvae`` training);
    encoder -> mu, logvar; z = mu + exp(logvar / 2) * eps; decoder(tgt = enc_in [+ Linear(z) with
    ``z_to_query``], memory = Linear(z)) -> Linear -> x_long (B, T, 128). In ``cvae`` mode without
    targets (inference) z is drawn from the prior N(0, I) instead, or taken from ``latent``.

    With ``latent_chunk`` K > 1, mu and logvar are pooled (masked mean of the encoder output) over
    chunks of K frames: shapes (B, ceil(T / K), z_dim); z is sampled per chunk and linearly
    interpolated to frames (:func:`chunks_to_frames`). Otherwise they are per frame (B, T, z_dim).
    """

    def __init__(self, cfg: MODAConfig, target_dim: int):
        super().__init__()
        h, zd = cfg.hidden, cfg.z_dim
        self.cfg = cfg
        self.pe = PositionalEncoding(h, cfg.max_len, cfg.dropout, time_axis=cfg.vae_pe_fix)
        self.encoder = _encoder(cfg)
        self.to_mu = nn.Linear(h, zd)
        self.to_logvar = nn.Linear(h, zd)
        self.from_z = nn.Linear(zd, h)
        self.z_query = nn.Linear(zd, h) if cfg.z_to_query else None
        self.decoder = _decoder(cfg)
        self.out = nn.Linear(h, h)
        self.posterior = nn.Linear(target_dim, h) if cfg.prob_mode == "cvae" else None

    def n_latent(self, t: int) -> int:
        """Latent steps of a T-frame window."""
        return -(-t // self.cfg.latent_chunk)

    def sample_prior(self, b: int, t: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A prior draw z ~ N(0, I) for B sequences of T frames, at frame rate: (B, T, z_dim)."""
        z = torch.randn((b, self.n_latent(t), self.cfg.z_dim), generator=generator)
        return chunks_to_frames(z, self.cfg.latent_chunk, t)

    def _pool(self, hid: torch.Tensor, valid: Optional[torch.Tensor]):
        """(B, T, h) -> per-chunk masked means (B, C, h) and the chunks' validity (B, C) bool."""
        k = self.cfg.latent_chunk
        b, t, h = hid.shape
        w = hid.new_ones(b, t) if valid is None else valid.float()
        c = self.n_latent(t)
        pad = c * k - t
        hid = torch.nn.functional.pad(hid * w[..., None], (0, 0, 0, pad)).reshape(b, c, k, h).sum(2)
        n = torch.nn.functional.pad(w, (0, pad)).reshape(b, c, k).sum(2)
        return hid / n.clamp(min=1)[..., None], n > 0

    def forward(self, s_a: torch.Tensor, v_s: torch.Tensor, valid: Optional[torch.Tensor] = None,
                targets: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                z_scale: float = 1.0, latent: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        b, t, h = s_a.shape
        k = self.cfg.latent_chunk
        enc_in = self.pe(v_s[:, None].expand(b, t, h)) + s_a
        pad = _pad_bias(valid)
        lat_valid = None
        if self.posterior is not None and targets is None:
            mu = torch.zeros(b, self.n_latent(t), self.cfg.z_dim, device=s_a.device)
            logvar = torch.zeros_like(mu)
        else:
            x = enc_in if self.posterior is None else enc_in + self.posterior(targets)
            hid = self.encoder(x, src_key_padding_mask=pad)
            if k > 1:
                hid, lat_valid = self._pool(hid, valid)
            mu, logvar = self.to_mu(hid), self.to_logvar(hid)
        if latent is not None and targets is None:  # a given prior draw at frame rate (whole-clip sampling)
            z = latent.to(s_a.device) * z_scale
        else:
            eps = torch.randn(mu.shape, generator=generator).to(mu.device)  # drawn on every call, eval too
            z = mu + torch.exp(0.5 * logvar) * eps * z_scale
            if k > 1:
                z = chunks_to_frames(z, k, t)
        self_mask = future_mask(t, self.cfg.vae_causal).to(s_a.device)
        tgt = enc_in if self.z_query is None else enc_in + self.z_query(z)
        dec = self.decoder(tgt, self.from_z(z), tgt_mask=self_mask, tgt_key_padding_mask=pad,
                           memory_key_padding_mask=pad)
        out = {"x_long": self.out(dec), "mu": mu, "logvar": logvar}
        if lat_valid is not None:
            out["latent_valid"] = lat_valid
        return out


def chunks_to_frames(z: torch.Tensor, chunk: int, t: int) -> torch.Tensor:
    """Chunk latents (B, C, D) -> frame latents (B, T, D): linear interpolation between chunk centres
    (edges held), so a latent path is continuous. chunk 1: returned as it is."""
    if chunk <= 1:
        return z[:, :t]
    frames = torch.nn.functional.interpolate(z.transpose(1, 2), scale_factor=chunk, mode="linear",
                                             align_corners=False)
    return frames.transpose(1, 2)[:, :t]


# ------------------------------------------------------------------------------------------- MODA
class MODANet(nn.Module):
    """The MODA body.

    forward(fbank (B, 4T, 80) normalised fbank, subject (B, 1434) mean mesh in canonical px,
    valid (B, T) bool frame mask or None, has_audio (B,) bool or None, targets (B, T, 241)
    standardised eye|head|torso deltas (cvae training only), generator, z_scale) ->
    dict lip (B, T, 120), eye (B, T, 180), head (B, T, 7), torso (B, T, 54), mu, logvar (B, T, 128).
    Outputs are in the trainer's (standardised) target units; padded frames are zeros.
    """

    def __init__(self, cfg: MODAConfig = MODAConfig()):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.audio = AudioEncoder(cfg)
        self.subject = MaskedMLP([cfg.n_vertices * 3, h, h, h])
        self.spec = SpecAttn(cfg)
        self.prob = ProbAttn(cfg, cfg.eye_dim + cfg.head_dim + cfg.torso_dim)
        self.lip_head = MaskedMLP([2 * h, 512, cfg.lip_dim])
        self.eye_head = MaskedMLP([2 * h, 256, 256, cfg.eye_dim])
        self.head_head = MaskedMLP([2 * h, 256, 256, cfg.head_dim])
        self.torso_head = MaskedMLP([2 * h, 256, 256, cfg.torso_dim])
        self.no_audio = nn.Parameter(torch.zeros(h)) if cfg.no_audio_token else None
        self.apply(_init_weights)
        if self.prob.z_query is not None:  # z must reach the decoder at O(1) scale from the first step
            nn.init.normal_(self.prob.z_query.weight, 0.0, cfg.z_dim ** -0.5)

    def forward(self, fbank: torch.Tensor, subject: torch.Tensor, valid: Optional[torch.Tensor] = None,
                has_audio: Optional[torch.Tensor] = None, targets: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None, z_scale: float = 1.0,
                latent: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        s_a = self.audio(fbank, valid)
        if has_audio is not None and self.no_audio is not None:
            s_a = torch.where(has_audio[:, None, None], s_a, self.no_audio.expand_as(s_a))
        v_s = self.subject(subject)
        x_short = self.spec(s_a, v_s)
        prob = self.prob(s_a, v_s, valid, targets, generator, z_scale, latent)
        x_long = prob["x_long"]
        both = torch.cat([x_short, x_long], -1)
        lip_in = torch.cat([x_short, torch.zeros_like(x_long)], -1) if self.cfg.lip_from_spec_only else both
        out = {"lip": self.lip_head(lip_in, valid), "eye": self.eye_head(both, valid),
               "head": self.head_head(both, valid), "torso": self.torso_head(both, valid),
               "mu": prob["mu"], "logvar": prob["logvar"]}
        if "latent_valid" in prob:
            out["latent_valid"] = prob["latent_valid"]
        return out


def _init_weights(m: nn.Module) -> None:
    """The code's init: N(0, 0.02) weights and zero biases for every Linear and Conv1d."""
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, valid: Optional[torch.Tensor] = None,
                  free_bits: float = 0.0) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per latent dimension, averaged over (valid) latent steps: scalar.

    ``free_bits`` > 0: each dimension's KL is first averaged over the valid steps of the batch and
    clamped from below at ``free_bits`` nats, then averaged over dimensions; a dimension carrying less
    information than that costs a constant (no gradient), so the KL cannot push the posterior back to
    the prior and the decoder does not learn to ignore z (posterior collapse)."""
    kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp())  # (B, C, D)
    w = torch.ones(kl.shape[:-1], device=kl.device) if valid is None else valid.float()
    per_dim = (kl * w[..., None]).sum((0, 1)) / w.sum().clamp(min=1)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.mean()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
