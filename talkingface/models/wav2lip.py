"""Wav2Lip generator (the teacher of docs/REFERENCE.md §6.2 step 1), built to the original's checkpoint layout.

Only used by ``train_audio/preparation_step0.py`` to render 96x96 teacher mouths for many voices on
one fixed face; its weights (``wav2lip.pth``) come from the Wav2Lip project and are not shipped.
Layout (docs/CHECKPOINTS.md §7): 352 state-dict keys, 36,298,035 parameters.

Inputs: mel chunks ``B x 1 x 80 x 16`` (80 mels x 16 frames = 0.2 s, values in [-4, 4]) and faces
``B x 6 x 96 x 96`` float in [0, 1] (BGR; channels 0-2: the target face with its lower half
blanked, channels 3-5: a reference face). Output ``B x 3 x 96 x 96`` in [0, 1].
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from talkingface.errors import UserInputError


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d + ReLU, optionally residual (``x + block(x)`` before the ReLU)."""

    def __init__(self, cin: int, cout: int, kernel, stride, padding, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_block(x)
        return self.act(y + x if self.residual else y)


class ConvTransposeBlock(nn.Module):
    """ConvTranspose2d + BatchNorm2d + ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride, padding, output_padding: int = 0):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int) -> ConvBlock:
    return ConvBlock(c, c, 3, 1, 1, residual=True)


def audio_encoder(res_at_256: int = 1) -> nn.Sequential:
    """Mel chunk 1 x 80 x 16 -> 512 x 1 x 1 (Wav2Lip: 1 residual block at 256 channels; SyncNet_color: 2)."""
    return nn.Sequential(
        ConvBlock(1, 32, 3, 1, 1), _res(32), _res(32),
        ConvBlock(32, 64, 3, (3, 1), 1), _res(64), _res(64),
        ConvBlock(64, 128, 3, 3, 1), _res(128), _res(128),
        ConvBlock(128, 256, 3, (3, 2), 1), *[_res(256) for _ in range(res_at_256)],
        ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),
    )


class Wav2Lip(nn.Module):
    """U-Net: face encoder (96 -> 1), audio embedding at the bottleneck, decoder with skip connections."""

    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),  # 96
            nn.Sequential(ConvBlock(16, 32, 3, 2, 1), _res(32), _res(32)),  # 48
            nn.Sequential(ConvBlock(32, 64, 3, 2, 1), _res(64), _res(64), _res(64)),  # 24
            nn.Sequential(ConvBlock(64, 128, 3, 2, 1), _res(128), _res(128)),  # 12
            nn.Sequential(ConvBlock(128, 256, 3, 2, 1), _res(256), _res(256)),  # 6
            nn.Sequential(ConvBlock(256, 512, 3, 2, 1), _res(512)),  # 3
            nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = audio_encoder()
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),  # 1
            nn.Sequential(ConvTransposeBlock(1024, 512, 3, 1, 0), _res(512)),  # 3
            nn.Sequential(ConvTransposeBlock(1024, 512, 3, 2, 1, 1), _res(512), _res(512)),  # 6
            nn.Sequential(ConvTransposeBlock(768, 384, 3, 2, 1, 1), _res(384), _res(384)),  # 12
            nn.Sequential(ConvTransposeBlock(512, 256, 3, 2, 1, 1), _res(256), _res(256)),  # 24
            nn.Sequential(ConvTransposeBlock(320, 128, 3, 2, 1, 1), _res(128), _res(128)),  # 48
            nn.Sequential(ConvTransposeBlock(160, 64, 3, 2, 1, 1), _res(64), _res(64)),  # 96
        ])
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """mel: B x 1 x 80 x 16; face: B x 6 x 96 x 96 in [0, 1] -> B x 3 x 96 x 96 in [0, 1]."""
        x = self.audio_encoder(mel)
        skips = []
        f = face
        for block in self.face_encoder_blocks:
            f = block(f)
            skips.append(f)
        for block in self.face_decoder_blocks:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.output_block(x)


def load_wav2lip(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> Wav2Lip:
    """Load a Wav2Lip checkpoint (``{"state_dict": ...}``, ``module.`` prefixes stripped) strictly."""
    p = Path(path)
    if not p.is_file():
        raise UserInputError(
            f"Wav2Lip weights not found: {p}. This route needs the user-supplied 'wav2lip.pth' from the "
            "Wav2Lip project (not shipped here); pass its path with --wav2lip")
    try:
        ckpt = torch.load(str(p), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserInputError(f"cannot read Wav2Lip checkpoint {p}: {exc}") from exc
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise UserInputError(f"{p} is not a Wav2Lip checkpoint")
    state = {k.replace("module.", "", 1) if k.startswith("module.") else k: v for k, v in state.items()}
    net = Wav2Lip()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"{p} does not match the Wav2Lip layout: {str(exc).splitlines()[0]}") from exc
    return net.to(device).eval()



# ------------------------------------------------------------------- Wav2Lip's own audio front end
MEL_STEP = 16  # mel frames per chunk (0.2 s)
MEL_FPS = 80.0  # mel frames per second (hop 200 at 16 kHz)


def wav2lip_mel(audio, sample_rate: int = 16000):
    """Wav2Lip's mel spectrogram (docs/REFERENCE.md §6.2 step 1): (80, T) float32 in [-4, 4], 80 frames/s.

    Pre-emphasis 0.97; STFT n_fft 800, hop 200, window 800; 80 mel bands 55-7600 Hz on the
    magnitude; dB with ref level 20 and floor -100; symmetric normalisation to [-4, 4].
    audio: (S,) float in [-1, 1] at 16 kHz.
    """
    # Lazy: librosa is heavy and only the Wav2Lip teacher's mel front end needs it.
    import librosa

    y = lfilter([1.0, -0.97], [1.0], np.asarray(audio, np.float64))
    spec = np.abs(librosa.stft(y=y, n_fft=800, hop_length=200, win_length=800))
    mel_basis = librosa.filters.mel(sr=sample_rate, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20.0 * np.log10(np.maximum(1e-5, mel_basis @ spec)) - 20.0
    return np.clip(8.0 * ((db + 100.0) / 100.0) - 4.0, -4.0, 4.0).astype(np.float32)


def mel_chunks(mel, n_frames: int, fps: float = 25.0):
    """One (80, 16) mel chunk per video frame: frame i starts at mel frame int(80 i / fps).

    Returns (n_frames, 80, 16) float32; the last chunks are padded by repeating the final mel
    frame, so every 40 ms of audio gets a frame (the original dropped up to 7 tail frames).
    """
    n = int(n_frames)
    padded = np.concatenate([mel, np.repeat(mel[:, -1:], MEL_STEP, axis=1)], axis=1)
    starts = [int(MEL_FPS * i / fps) for i in range(n)]
    return np.stack([padded[:, s:s + MEL_STEP] for s in starts]).astype(np.float32)


@torch.no_grad()
def render_teacher_frames(net: Wav2Lip, face96, audio, batch_size: int = 8, device: str = "cpu"):
    """Wav2Lip frames of one fixed face speaking ``audio``: list of N 96x96x3 uint8 BGR (N = 25/s).

    face96: 96x96x3 uint8 BGR. Input per frame: the face with its lower half blanked, plus the
    face itself as the reference (6 channels, [0, 1]).
    """
    chunks = mel_chunks(wav2lip_mel(audio), int(np.ceil(len(audio) / 640)))
    ref = torch.from_numpy(face96.astype(np.float32) / 255.0).permute(2, 0, 1)
    masked = ref.clone()
    masked[:, 48:] = 0.0
    face_in = torch.cat([masked, ref], dim=0)[None]
    frames = []
    for s in range(0, len(chunks), batch_size):
        mel = torch.from_numpy(chunks[s:s + batch_size])[:, None].to(device)
        out = net(mel, face_in.expand(len(mel), -1, -1, -1).to(device))
        frames.extend((out.permute(0, 2, 3, 1).cpu().numpy() * 255.0).round().clip(0, 255).astype(np.uint8))
    return frames
