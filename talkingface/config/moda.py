"""Typed configurations of the MODA networks (``talkingface.models.moda``, ``faco``, ``moda_renderer``).

Defaults follow the released MODA code where the paper and the code disagree (docs/MODA.md lists
both); every deviation is a flag with the code's behaviour as its default, except the things this
project changes on purpose (25 fps, the fbank audio front end, 100-frame training windows).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

from talkingface.config.paths import BLENDSHAPE_BASIS, CHECKPOINT_DIR, MINI_AUDIO_CHECKPOINT

FPS = 25  # the project's video rate; MODA's code runs at 30

#: Shipped MODA-lite and FaCo-Net checkpoints; the lip teacher and its basis (speech pseudo-labels).
MODA_CHECKPOINT = CHECKPOINT_DIR / "moda" / "moda_lite.pth"
FACO_CHECKPOINT = CHECKPOINT_DIR / "moda" / "faco.pth"
TEACHER_CHECKPOINT = MINI_AUDIO_CHECKPOINT
BASIS_PATH = BLENDSHAPE_BASIS

#: Sizes of the flattened landmark groups both MODA-lite and FaCo-Net read (canonical px, x y z).
N_VERTICES, N_LIP_POINTS, N_EYE_POINTS = 478, 40, 60
LIP_DIM, EYE_DIM, DENSE_DIM = 3 * N_LIP_POINTS, 3 * N_EYE_POINTS, 3 * N_VERTICES


@dataclass
class MODAConfig:
    """MODA body ("MODA-lite").

    audio_head: ``conv`` (default: non-causal Conv1d front end over 4 fbank frames per video frame,
    +-120 ms context) or ``mel`` (the code's dormant 320->128 head, +-20 ms).
    prob_mode: ``moda`` (the code: the ProbAttn encoder never sees the targets) or ``cvae`` (the
    posterior also reads the target eye/head/torso deltas in training; z ~ N(0, I) at inference).
    vae_pe_fix: position encoding of ProbAttn on the time axis (the code adds it on the batch axis).
    vae_causal: ProbAttn decoder self-attention causal (-inf on the future); the code adds +1 to
    future logits instead (not causal).
    lip_from_spec_only: the lip head reads SpecAttn only (ProbAttn half zeroed), so lips do not
    depend on the sample; the code feeds both branches to every head.
    no_audio_token: a learned 128-d vector replaces the audio features of silent clips.
    latent_dim: size of ProbAttn's latent z per latent step; 0 = ``hidden`` (the code's 128).
    latent_chunk: frames per latent step. 1 (the code) draws an independent z for every frame; > 1
    pools the posterior over chunks of that many frames and linearly interpolates the chunk latents
    back to frames, so a prior sample is a smooth motion "plan" (not frame-wise white noise that the
    decoder's attention averages away) and the latent can be drawn once for a whole clip.
    z_to_query: also add Linear(z) to ProbAttn's decoder input (the query stream). The code feeds z
    only as cross-attention memory (Linear(z), N(0, 0.02) init): the softmax over all frames averages
    per-frame noise and the decoder learns to ignore z (measured: posterior z, z = mu and two prior
    samples give the same outputs to 0.006 std). This path is initialised at N(0, 1/latent_dim).
    """

    fps: int = FPS
    n_mels: int = 80
    fbank_per_frame: int = 4  # 25 ms window, 10 ms hop at 25 fps
    audio_head: str = field(default="conv", metadata={"choices": ["conv", "mel"]})
    hidden: int = 128
    n_head: int = 4
    ffn: int = 128
    n_layers: int = 3
    dropout: float = 0.1
    period: int = FPS  # periodic position encoding / ALiBi period (1 s)
    alibi_slope: float = 2.0 ** -8
    n_vertices: int = N_VERTICES
    lip_dim: int = LIP_DIM
    eye_dim: int = EYE_DIM
    head_dim: int = 7  # yaw, pitch, roll (deg), anchor x, y, z (px), scale
    torso_dim: int = 54  # 18 points x 3
    prob_mode: str = field(default="moda", metadata={"choices": ["moda", "cvae"]})
    vae_pe_fix: bool = False
    vae_causal: bool = False
    lip_from_spec_only: bool = False
    no_audio_token: bool = False
    latent_dim: int = 0
    latent_chunk: int = 1
    z_to_query: bool = False
    max_len: int = 5000

    @property
    def z_dim(self) -> int:
        return self.latent_dim or self.hidden


@dataclass
class FaCoConfig:
    """FaCo-Net: sparse (40 lip + 60 eye points) -> dense 478 points, frame-wise, deltas from the mean."""

    lip_dim: int = LIP_DIM
    eye_dim: int = EYE_DIM
    dense_dim: int = DENSE_DIM
    hidden: int = 256  # width of the encoders and of D
    code: int = 128  # per-group code; the decoder reads lip + eye codes (2 x code)
    dec_hidden: int = 512
    slope: float = 0.2  # LeakyReLU


@dataclass
class RendererConfig:
    """TPE U-Net renderer. The paper: resolution 512, n_downs 8, ngf 64 (76,207,296 parameters).
    The CPU default: 256, 7, 16. Input = condition 3 + reference 3 + TPE 13 channels."""

    resolution: int = 256
    n_downs: int = 7
    ngf: int = 16
    max_mult: int = 8
    tpe: bool = True
    tpe_channels: int = 13  # t, sin(2^k t), cos(2^k t) for k = 0..5
    d_scales: int = 2
    d_layers: int = 3
    ndf: int = 32

    @property
    def in_channels(self) -> int:
        return 6 + (self.tpe_channels if self.tpe else 0)


@dataclass
class MODATrainConfig:
    """MODA training (losses and optimiser of the code unless stated)."""

    stage: str = field(default="all", metadata={"choices": ["lips", "all"],
                                                "help": "lips: only lip losses; all: every head"})
    window: int = field(default=100, metadata={"help": "frames per training window (4 s), padded with a frame mask"})
    batch_size: int = 16
    lr: float = 1e-3
    betas: Tuple[float, float] = field(default=(0.9, 0.99), metadata={"nargs": 2})
    weight_decay: float = 0.01
    max_steps: int = 3000
    kl_weight: float = field(default=0.0, metadata={"help": "0: the code (no KL); > 0: the paper's t-VAE"})
    kl_anneal_steps: int = field(default=1000, metadata={"help": "KL weight ramps up linearly over N steps"})
    free_bits: float = field(default=0.0, metadata={
        "help": "nats per latent dimension the KL does not penalise (batch-averaged KL of each dimension "
                "clamped from below, Kingma et al. 2016): the posterior keeps that much information about the "
                "target motion however large kl_weight is, so the decoder keeps using z; 0 = plain KL"})
    prior_stat_weight: float = field(default=0.0, metadata={
        "help": "cvae: weight of a second pass with z from the prior whose eye and head outputs must match "
                "each window's per-dimension temporal std and mean absolute velocity (not the frames): MSE "
                "rewards the mean, so a prior draw moves less than real motion. Measured: harmful from step 0 "
                "(1.0: the decoder dropped z, head spread 0.06-0.16 x real); as a 600-step fine-tune of a model "
                "that uses z, 0.5 raised head spread from 0.44-0.65 to 0.69-0.89 x real: 0 = off"})
    blink_stat_weight: float = field(default=0.0, metadata={
        "help": "cvae: weight of a term on the same prior pass: the distribution of the eyelid opening over "
                "each window's frames (every quantile, canonical px) must match the real window's, so the sampled "
                "eyes close as often and as deeply as real ones wherever the blinks fall; 0 = off"})
    freeze_lip_path: bool = field(default=False, metadata={
        "help": "freeze the audio encoder, the subject encoder and SpecAttn (BatchNorm statistics too) so "
                "the all-heads stage cannot move the features the lips read; the heads and ProbAttn train"})
    lip_weight: float = 5.0
    vel_weights: Tuple[float, float, float, float] = field(default=(5.0, 1.0, 1.0, 0.5), metadata={"nargs": 4})
    speech_fraction: float = field(default=0.5, metadata={"help": "share of windows drawn from pseudo-labelled speech "
                                                      "(train_moda.py's default: 0.75 for --stage lips, 0.3 for all)"})
    audio_dropout: float = 0.1  # AV windows whose audio is replaced by the no-audio token
    subject_jitter_px: float = 0.5
    save_every: int = 200
    log_every: int = 20
    seed: int = 777
    model: MODAConfig = field(default_factory=MODAConfig, metadata={"flag": False})


@dataclass
class FaCoTrainConfig:
    """FaCo-Net training: LSGAN + lambda_l1 * L1 (the code: 100; the paper: 10)."""

    batch_size: int = 256  # frames
    lr: float = 1e-3
    betas: Tuple[float, float] = field(default=(0.5, 0.999), metadata={"nargs": 2})
    lambda_l1: float = field(default=100.0, metadata={"help": "the code: 100; the paper: 10"})
    gan_all_samples: bool = field(default=False, metadata={"help": "score every sample (the code: last only)"})
    max_steps: int = 2000
    subject_jitter_px: float = 0.5
    save_every: int = 200
    log_every: int = 20
    seed: int = 777
    model: FaCoConfig = field(default_factory=FaCoConfig, metadata={"flag": False})
