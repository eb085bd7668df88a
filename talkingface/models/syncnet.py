"""SyncNet_color (Wav2Lip's lip-sync expert), built to the original's checkpoint layout.

Defined but unused by the original (docs/CHECKPOINTS.md §7): 217 state-dict keys, 16,435,072
parameters. No code of this project runs it either; it is kept so the original's SyncNet weights
load (strict key match, ``tests/test_audio_train.py``) for anyone who wants to score teacher videos.

forward(mel B x 1 x 80 x 16, faces B x 15 x 48 x 96) -> (audio embedding B x 512, face embedding
B x 512), both L2-normalised; faces are 5 consecutive lower-half crops (RGB stacked) in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkingface.models.wav2lip import ConvBlock, _res, audio_encoder


class SyncNet_color(nn.Module):
    def __init__(self):
        super().__init__()
        self.face_encoder = nn.Sequential(
            ConvBlock(15, 32, 7, 1, 3),
            ConvBlock(32, 64, 5, (1, 2), 1), _res(64), _res(64),
            ConvBlock(64, 128, 3, 2, 1), _res(128), _res(128), _res(128),
            ConvBlock(128, 256, 3, 2, 1), _res(256), _res(256),
            ConvBlock(256, 512, 3, 2, 1), _res(512), _res(512),
            ConvBlock(512, 512, 3, 2, 1), ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),
        )
        self.audio_encoder = audio_encoder(res_at_256=2)

    def forward(self, mel: torch.Tensor, faces: torch.Tensor):
        a = self.audio_encoder(mel).flatten(1)
        f = self.face_encoder(faces).flatten(1)
        return F.normalize(a, p=2, dim=1), F.normalize(f, p=2, dim=1)

    @staticmethod
    def sync_probability(audio_emb: torch.Tensor, face_emb: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of the embeddings (B,), the quantity Wav2Lip's sync loss is built on."""
        return F.cosine_similarity(audio_emb, face_emb)
