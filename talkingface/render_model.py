"""RenderModel: the DH_live 256x256 renderer on a prepared avatar.

Docs: docs/REFERENCE.md §1.5 (demo.py), docs/REFERENCE.md §2.1 (the network), docs/REFERENCE.md §3.2 (inputs).

    model = RenderModel(device="auto")
    model.loadModel("checkpoint/render.pth")        # plain state dict or training checkpoint
    model.reset_charactor("video_data/my_avatar")    # circle.mp4 + keypoint_rotate.pkl
    frame = model.interface(mouth_image)             # 15x30x3 BGR mouth -> next full video frame

The avatar loops over ``circle.mp4`` (a palindrome of 2N frames). ``keypoint_rotate.pkl`` may hold
2N rows (``data_preparation.py``) or only the N forward rows (the original's ``video_data/test``);
the second half then mirrors the first. References, masks and prompts are built by the same
functions the training data uses (:mod:`talkingface.data.few_shot_dataset`), in BGR like the
original's weights. The generated face replaces only the jaw region (feathered) of the crop, so the
rest of the frame keeps the source video's pixels.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import List, Optional, Union

import cv2
import numpy as np
import torch

from talkingface.config.paths import render_checkpoint
from talkingface.data.few_shot_dataset import (CropBox, FACE_SIZE, FewShotConfig, face_crop_box, inference_mouth,
                                               jaw_blend_mask, mask_polygon, masked_source, max_lip_extent,
                                               prompt_image, prompt_rect, reference_image, select_ref_index, to_image,
                                               to_tensor, video_geometry)
from talkingface.errors import UserInputError
from talkingface.export.runtime import resolve_engine
from talkingface.fast.dinet import FastDINet
from talkingface.mediapipe_utils import load_keypoints
from talkingface.models.DINet import DINet_five_Ref, load_dinet_state_dict
from talkingface.run_utils import smooth_sequence
from talkingface.util.cli import resolve_device
from talkingface.util.files import read_model_card
from talkingface.util.media import read_video
from talkingface.utils import main_keypoints

log = logging.getLogger(__name__)

RENDER_CHECKPOINT_HELP = (
    "no DH_live render checkpoint: pass --ckpt PATH, or put the original's published render.pth "
    "(DH_live README, Baidu Netdisk code ym7k / Google Drive) at checkpoint/render.pth, or train one "
    "with train/train_render_model.py (its OUT_DIR/render.pth)")
#: Temporal kernel for the crop boxes' keypoints (keeps the pasted crop from jittering).
CROP_SMOOTH_KERNEL = (0.1, 0.2, 0.4, 0.2, 0.1)


def render_face_size(checkpoint: Union[str, os.PathLike]) -> int:
    """The face-crop size a checkpoint was trained at: its sidecar card's ``face_size``, else 256."""
    return int(read_model_card(checkpoint).get("face_size", FACE_SIZE))


class RenderModel:
    """DINet_five_Ref inference on one avatar at a time (the original's class and method names)."""

    def __init__(self, device: str = "auto", n_ref: int = 5, face_size: Optional[int] = None, seed: int = 0,
                 engine: str = "auto", threads: Optional[int] = None):
        """``engine``: ``auto`` (ONNX Runtime on CPU when installed, else torch), ``onnx`` or ``torch``;
        ``threads``: the ONNX Runtime session's intra-op threads (default: torch's thread count)."""
        self.device = torch.device(resolve_device(device))
        self.engine = resolve_engine(engine) if self.device.type == "cpu" else "torch"
        self.threads = threads
        self.fast = None  # talkingface.fast.dinet.FastDINet when the engine is onnx
        self.n_ref = n_ref
        self.face_size = face_size
        self.seed = seed
        self.net: Optional[DINet_five_Ref] = None
        self.cfg = FewShotConfig(n_ref=n_ref, size=face_size or FACE_SIZE)
        self.frames: List[np.ndarray] = []
        self.frame_index = 0

    # ------------------------------------------------------------------------------------ model
    def loadModel(self, checkpoint: Union[str, os.PathLike, None] = None) -> None:
        """Load weights (plain state dict or ``{"state_dict": {"net_g": ...}}``), mapped to this
        device, so GPU-saved files load on CPU. Raises UserInputError naming where to get one."""
        path = Path(checkpoint) if checkpoint is not None else render_checkpoint()
        if not path.is_file():
            raise UserInputError(f"{path} not found; {RENDER_CHECKPOINT_HELP}")
        if self.face_size is None:
            self.face_size = render_face_size(path)
            self.cfg = FewShotConfig(n_ref=self.n_ref, size=self.face_size)
        net = DINet_five_Ref(6, 6 * self.n_ref)
        load_dinet_state_dict(net, path, map_location="cpu")
        self.net = net.to(self.device).eval()
        if self.engine == "onnx":
            self.fast = FastDINet(self.net, threads=self.threads or torch.get_num_threads())
        log.info("render model %s on %s (face %d px, %s)", path, self.device, self.face_size, self.engine)

    # ---------------------------------------------------------------------------------- avatar
    def reset_charactor(self, avatar_dir: Union[str, os.PathLike]) -> None:
        """Load an avatar (``circle.mp4`` + ``keypoint_rotate.pkl`` of (2N|N, 478, 3)), build its
        geometry and encode its 5 references; the frame counter restarts at 0."""
        if self.net is None:
            raise RuntimeError("call loadModel before reset_charactor")
        avatar_dir = Path(avatar_dir)
        video, kp_path = avatar_dir / "circle.mp4", avatar_dir / "keypoint_rotate.pkl"
        if not video.is_file() or not kp_path.is_file():
            raise UserInputError(f"{avatar_dir} is not a DH_live avatar (needs circle.mp4 and keypoint_rotate.pkl; "
                                 "make one with data_preparation.py)")
        frames = read_video(video)
        kps = load_keypoints(kp_path, point_counts=(478, 141))
        n_video = len(frames)
        if len(kps) == n_video:
            rows, order = kps, list(range(n_video))
        elif 2 * len(kps) == n_video:  # forward rows only: the second half of the loop mirrors them
            rows, order = kps, [i if i < len(kps) else n_video - 1 - i for i in range(n_video)]
        else:
            raise UserInputError(f"{avatar_dir}: {n_video} video frames but {len(kps)} keypoint rows "
                                 "(expected the same number or half)")
        if rows.shape[1] != 478 or rows.shape[2] != 3:
            raise UserInputError(f"{kp_path}: expected (N, 478, 3) keypoints, got {rows.shape}")
        main = main_keypoints(rows)[..., :2]
        self.frames = frames
        self.main = main[order]
        self.contours = video_geometry(rows).contours[order]
        self.boxes: List[CropBox] = [face_crop_box(m, self.cfg.size)
                                     for m in smooth_sequence(main, CROP_SMOOTH_KERNEL)[order]]
        self.lip_w, self.lip_h = max_lip_extent(main, self.cfg.size)
        rng = np.random.default_rng(self.seed)
        self.ref_index = select_ref_index(main, self.n_ref, self.cfg.ref_drop_infer, rng)
        refs = [to_tensor(reference_image(frames[r], main[r], face_crop_box(main[r], self.cfg.size)))
                for r in self.ref_index]
        with torch.no_grad():
            self.net.ref_input(torch.cat(refs, dim=0).unsqueeze(0).to(self.device))
        if self.fast is not None:
            self.fast.set_reference(self.net, self.calibration_inputs())
        self.frame_index = 0
        log.info("avatar %s: %d frames, reference frames %s", avatar_dir, n_video, self.ref_index)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    # ----------------------------------------------------------------------------------- frames
    def prepare_inputs(self, index: int, mouth_frame: np.ndarray):
        """Inputs for avatar frame ``index`` driven by ``mouth_frame`` (15x30x3 BGR uint8):
        (source 1x3xSxS, prompt 1x3xSxS tensors, crop box, crop HxWx3, jaw polygon)."""
        box = self.boxes[index]
        crop = box.crop(self.frames[index])
        main_crop = box.to_crop(self.main[index])
        polygon = mask_polygon(main_crop, box.to_crop(self.contours[index]))
        source = masked_source(crop, polygon)
        rect = prompt_rect(main_crop, self.lip_w, self.lip_h)
        prompt = prompt_image(main_crop, rect, inference_mouth(mouth_frame, rect[2], rect[3], self.cfg), self.cfg.size)
        return (to_tensor(source).unsqueeze(0).to(self.device), to_tensor(prompt).unsqueeze(0).to(self.device),
                box, crop, polygon)

    def calibration_inputs(self, count: int = 4):
        """(source, prompt) network inputs of ``count`` evenly spaced avatar frames, each prompted with
        its own mouth (the int8 fast path calibrates and checks itself on them)."""
        pairs = []
        for index in np.linspace(0, len(self.frames) - 1, min(count, len(self.frames))).round().astype(int):
            box = self.boxes[index]
            crop = box.crop(self.frames[index])
            x, y, w, h = prompt_rect(box.to_crop(self.main[index]), self.lip_w, self.lip_h)
            mouth = crop[max(y, 0):max(y + h, 1), max(x, 0):max(x + w, 1)]
            mouth = cv2.resize(mouth, (30, 15), interpolation=cv2.INTER_AREA) if mouth.size else np.zeros((15, 30, 3), np.uint8)
            pairs.append(self.prepare_inputs(int(index), mouth)[:2])
        return pairs

    @torch.no_grad()
    def interface(self, mouth_frame: np.ndarray) -> np.ndarray:
        """Render the next avatar frame with the given mouth image; returns the full HxWx3 BGR frame."""
        if not self.frames:
            raise RuntimeError("call reset_charactor before interface")
        index = self.frame_index
        self.frame_index = (self.frame_index + 1) % len(self.frames)
        source, prompt, box, _, polygon = self.prepare_inputs(index, mouth_frame)
        face = to_image((self.fast or self.net).interface(source, prompt)[0])
        feather = max(3, self.cfg.size // 28)
        return box.paste(self.frames[index], face, blend=jaw_blend_mask(polygon, self.cfg.size, feather))
