"""Self-reconstruction test of the DH_live_mini renderer: the model versus warp-only.

For a real clip of a person the renderer never saw:

1. The face mesh runs on every frame. The evaluated **targets** ``t`` are frames of the clip's
   second half. For each, the **source** frame ``s`` (the avatar frame the product would warp) is
   the most closed mouth among the frames 3..12 away from t, so head pose and lighting are close
   but the mouth differs; the **reference** is frame s plus two teeth references from the clip's
   first half.
2. For each target the wrap mesh is fitted to frame t's own pose-normalised landmarks
   (``newWrapModel``: lips, jaw and teeth where frame t has them) and rendered with frame t's pose,
   while the warp starts from frame s's landmarks, both in frame t's mouth crop. This is exactly
   the GL input the product feeds the network, with the true mouth shape instead of the audio's.
3. **Model (GL labels)**: DINet_mini_pipeline on (frame s crop, GL render) - the product's path,
   whose teeth are the mesh's generic teeth. **Model (true labels)**: the same warp field with the
   mouth labels of frame t itself (lips from its landmarks, teeth/cavity segmented from its pixels
   by :mod:`talkingface.data.teeth_labels`), which isolates the network from the mesh's teeth
   geometry. **Warp-only**: the warp with the mouth labels switched off (lips drawn as skin, no
   teeth), no network. Each model row is also given with the "interior" blend of
   :class:`~talkingface.models.DINet_mini.DINet_mini_pipeline` (network output only inside the
   mouth opening).
4. PSNR and SSIM of both against the real frame t on the **mouth region** (the bounding box of
   frame t's outer-lip landmarks plus 4 px, in the 128 crop), and on the whole 72x72 network window.
5. Mouth sharpness and teeth visibility (:mod:`talkingface.eval.mouth_quality`) of every method's
   128 crops and of the real crops, all measured with frame t's landmarks (so the open-mouth frames
   are the same for all): ``quality[method]`` = {sharpness, teeth_rate, ...} and its ratios to the real.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from mini_live.generate_fusion_mask import load_fusion_masks
from mini_live.obj.utils import fit_avatar, load_wrap_template
from mini_live.obj.wrap_utils import newWrapModel
from mini_live.render import MouthRenderer
from talkingface.data.mouth_crop import standard_image, standard_points, video_mouth_rects
from talkingface.data.teeth_labels import label_colours, mouth_labels
from talkingface.eval import mouth_quality
from talkingface.mediapipe_utils import landmarks_for_video
from talkingface.mini_reference import build_reference, reference_tensor, teeth_references
from talkingface.models.common.VGG19 import ssim
from talkingface.models.DINet_mini import (DINet_mini_pipeline, INPUT_HEIGHT, INPUT_WIDTH, MODEL_SIZE, PAD_X, PAD_Y,
                                           load_dinet_mini_state)
from talkingface.render_model_mini import warp_only_mesh
from talkingface.run_utils import apply_pose
from talkingface.util.media import read_video
from talkingface.utils import MP_LIPS_OUTER, mouth_opening

log = logging.getLogger(__name__)

#: Evaluated outputs: GL labels (the product) or true labels, original or interior blend; the baseline.
METHODS = ("model", "model_interior", "model_true_labels", "model_true_labels_interior", "warp_only")


def _to_tensor(rgba: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgba.transpose(2, 0, 1)))[None].float().div_(255.0).to(device)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """1xCxHxW float in [0, 1] -> HxWx3 uint8 (first three channels, same channel order)."""
    return (x[0, :3].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def _rgba(bgr: np.ndarray) -> np.ndarray:
    return np.dstack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.full(bgr.shape[:2], 255, np.uint8)])


def region_metrics(pred: torch.Tensor, target: torch.Tensor) -> Tuple[float, float]:
    """PSNR (dB) and SSIM of two 1x3xHxW images in [0, 1]."""
    mse = float(((pred - target) ** 2).mean())
    return 10.0 * np.log10(1.0 / max(mse, 1e-10)), float(ssim(pred, target))


def mouth_box(lm_crop: np.ndarray, size: int, margin: int = 4) -> Tuple[slice, slice]:
    """Rows/cols of the outer-lip bounding box (+ margin) of (478, >=2) crop-pixel landmarks."""
    pts = np.asarray(lm_crop)[MP_LIPS_OUTER, :2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + margin + 1
    return slice(max(y0, 0), min(y1, size)), slice(max(x0, 0), min(x1, size))


@torch.no_grad()
def selfrecon_clip(video: Union[str, Path], checkpoint: Union[str, Path], max_targets: int = 30,
                   device: str = "cpu", mosaic_rows: int = 6, landmarks: Optional[np.ndarray] = None) -> Dict:
    """Evaluate one clip; returns {"name", "frames", "source_frames", "model", "model_true_labels",
    "warp_only", ... (each {psnr, ssim, window_psnr, window_ssim}), "quality" (mouth sharpness and teeth per
    method and of the real crops), "mosaic" (RGB rows: source | GL | warp-only | model | model, interior blend |
    true labels | model on true labels | real)}. ``landmarks``: the clip's (N, 478, 3) face mesh when already
    known (e.g. from a clip cache); by default it is computed."""
    frames = read_video(video, max_frames=None if landmarks is None else len(landmarks))
    lm = landmarks_for_video(frames, progress=False) if landmarks is None else np.asarray(landmarks)[:len(frames)]
    n = len(frames)
    # tightly framed clips (MEAD's 256x256 faces): pad the frames so every mouth crop fits
    pad = 64
    frames = [cv2.copyMakeBorder(f, pad, pad, pad, pad, cv2.BORDER_REPLICATE) for f in frames]
    lm = lm + np.array([pad, pad, 0.0])
    h, w = frames[0].shape[:2]
    rects = video_mouth_rects(lm, (w, h))
    std = standard_points(lm, rects, MODEL_SIZE)
    _, mats = fit_avatar(std)
    opening = mouth_opening(lm)
    half = n // 2
    targets = np.arange(half, n)
    if len(targets) > max_targets:
        targets = targets[np.linspace(0, len(targets) - 1, max_targets).round().astype(int)]

    face_mask, mouth_mask = load_fusion_masks()
    pipe = DINet_mini_pipeline(3, 12, face_mask, mouth_mask).to(device).eval()
    pipe.infer_model.load_state_dict(load_dinet_mini_state(checkpoint), strict=True)
    teeth = teeth_references(frames[:half], rects[:half], std[:half])

    template = load_wrap_template()
    win = (slice(None), slice(None), slice(PAD_Y, PAD_Y + INPUT_HEIGHT), slice(PAD_X, PAD_X + INPUT_WIDTH))

    scores: Dict[str, List[Tuple[float, float, float, float]]] = {m: [] for m in METHODS}
    crops: Dict[str, List[np.ndarray]] = {m: [] for m in METHODS + ("real",)}
    rows = []
    with MouthRenderer(size=2 * MODEL_SIZE) as renderer:
        sources = []
        for k, t in enumerate(targets):
            near = [j for j in range(max(0, t - 12), min(n, t + 13)) if abs(j - t) >= 3]
            s = int(near[int(np.argmin(opening[near]))])
            sources.append(s)
            pipe.ref_input(reference_tensor(build_reference(frames[s], rects[s], std[s], teeth)).to(device))
            normalized = apply_pose(np.linalg.inv(mats[t]), std[t])
            mesh = newWrapModel(template, normalized)
            src_pts = standard_points(lm[s][None], rects[t][None], MODEL_SIZE)[0][mesh.target_ids, :2]
            pose = np.diag([2.0, 2.0, 2.0, 1.0]) @ mats[t]
            renderer.set_mesh(mesh)
            gl = renderer.render(src_pts * 2.0, pose, None)[::2, ::2]
            renderer.set_mesh(warp_only_mesh(mesh))
            gl_warp = renderer.render(src_pts * 2.0, pose, None)[::2, ::2]
            src = _to_tensor(_rgba(standard_image(frames[s], rects[t], MODEL_SIZE)), device)
            target_bgr = standard_image(frames[t], rects[t], MODEL_SIZE)
            target = _to_tensor(_rgba(target_bgr), device)
            colour, mask = label_colours(mouth_labels(cv2.cvtColor(target_bgr, cv2.COLOR_BGR2RGB), std[t][:, :2]))
            gl_true = gl_warp.copy()
            gl_true[mask > 0, :3] = np.round(colour[mask > 0] * 255.0 - 0.01).astype(np.uint8)
            outs = {}
            clean = _to_tensor(gl_warp, device)
            for blend in ("original", "interior"):
                pipe.blend = blend
                suffix, extra = ("", None) if blend == "original" else ("_interior", clean)
                outs["model" + suffix] = pipe.interface(src, _to_tensor(gl, device), gl_warp=extra)
                outs["model_true_labels" + suffix] = pipe.interface(src, _to_tensor(gl_true, device), gl_warp=extra)
            pipe.blend = "original"
            model, model_true = outs["model"], outs["model_true_labels"]
            outs["warp_only"] = pipe.interface(src, _to_tensor(gl_warp, device), use_network=False)
            warp = outs["warp_only"]
            rows_m, cols_m = mouth_box(std[t], MODEL_SIZE)
            box = (slice(None), slice(0, 3), rows_m, cols_m)
            crops["real"].append(target_bgr)
            for name, out in outs.items():
                crops[name].append(cv2.cvtColor(_to_uint8(out), cv2.COLOR_RGB2BGR))
                mouth_scores = region_metrics(out[box].cpu(), target[box].cpu())
                window_scores = region_metrics(out[win][:, :3].cpu(), target[win][:, :3].cpu())
                scores[name].append(mouth_scores + window_scores)
            if k < mosaic_rows:
                tiles = [src, _to_tensor(gl, device), warp, model, outs["model_interior"], _to_tensor(gl_true, device),
                         model_true, target]
                rows.append(np.concatenate([_to_uint8(x) for x in tiles], 1))
    result = {"name": Path(video).name, "frames": [int(t) for t in targets], "source_frames": sources}
    for name, vals in scores.items():
        arr = np.asarray(vals)
        result[name] = {"psnr": float(arr[:, 0].mean()), "ssim": float(arr[:, 1].mean()),
                        "window_psnr": float(arr[:, 2].mean()), "window_ssim": float(arr[:, 3].mean())}
    lm_t = std[targets][:, :, :2]
    real_q = mouth_quality.summarize(mouth_quality.measure_frames(crops["real"], lm_t))
    result["quality"] = {"real": real_q}
    for name in METHODS:
        q = mouth_quality.summarize(mouth_quality.measure_frames(crops[name], lm_t))
        result["quality"][name] = dict(q, **mouth_quality.compare(q, real_q))
    result["mosaic"] = np.concatenate(rows, 0) if rows else None
    return result


def summarize(results: List[Dict]) -> Dict[str, Dict[str, float]]:
    """Mean PSNR/SSIM over clips per method, and the mean mouth-quality ratios (NaN-skipping: a clip
    without open-mouth frames or without real teeth has no teeth ratio)."""
    out = {}
    for name in METHODS:
        out[name] = {m: float(np.mean([r[name][m] for r in results]))
                     for m in ("psnr", "ssim", "window_psnr", "window_ssim")}
        for m in ("sharpness_ratio", "teeth_rate", "teeth_rate_real", "teeth_ratio"):
            vals = [r["quality"][name][m] for r in results if "quality" in r]
            vals = [v for v in vals if np.isfinite(v)]
            out[name][m] = float(np.mean(vals)) if vals else float("nan")
    return out


def format_table(results: List[Dict], summary: Optional[Dict] = None) -> str:
    lines = ["| clip | method | mouth PSNR | mouth SSIM | 72x72 window PSNR | window SSIM | sharpness / real | "
             "teeth rate (real) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results + ([dict(name="**mean**", **summary)] if summary else []):
        for name in METHODS:
            m = r[name]
            q = r["quality"][name] if "quality" in r else m
            lines.append(f"| {r['name']} | {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['window_psnr']:.2f} | "
                         f"{m['window_ssim']:.4f} | {q.get('sharpness_ratio', float('nan')):.2f} | "
                         f"{q.get('teeth_rate', float('nan')):.2f} ({q.get('teeth_rate_real', float('nan')):.2f}) |")
    return "\n".join(lines)
