"""The bad-input matrix: every user-facing script, fed missing, empty, truncated, wrong-type,
unreadable and folder-instead-of-file inputs, unwritable or folder outputs, NaN/inf/empty audio and
asset packs of another layout, must exit with status 2, print exactly one stderr line starting with
``error:``, and leave nothing behind (no new file anywhere under the case's folders).

"Unreadable" as root (the test machines run as root, so chmod 000 does not block reads): a FIFO
(opening one for reading would block forever), a folder given as a file, and outputs under
``/proc/sys`` (not writable even for root) or below a regular file.

All cases run in one interpreter (tests/bad_input_runner.py) to keep the matrix fast; the three
defects of issue 11 are the cases ``demo_mini-pack-truncated``, ``demo_mini-out-is-dir`` and
``progress-bar-then-error`` (the latter in tests/test_cli_signals.py, on a real terminal).
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

from talkingface.config.paths import (AUDIO_CHECKPOINT, BLENDSHAPE_BASIS, DINET_MINI_CHECKPOINT, MINI_AUDIO_CHECKPOINT,
                                      SAMPLE_AVATAR_VIDEO, SAMPLE_SPEECH_ZH)
from talkingface.util.media import write_video

REPO = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "bad_input_runner.py"


def _float_wav(path: Path, samples: np.ndarray) -> Path:
    """A 16 kHz mono IEEE-float wav (format 3), written by hand so NaN / inf survive."""
    data = samples.astype("<f4").tobytes()
    header = (b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
              + (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
              + (64000).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
              + b"data" + len(data).to_bytes(4, "little"))
    path.write_bytes(header + data)
    return path


def _gz_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(obj, fh)
    return path


def _pack(root: Path, name: str, json_bytes: bytes) -> Path:
    """An asset-pack folder: the sample video as 01.mp4 + the given combined_data.json.gz bytes."""
    d = root / name
    d.mkdir()
    shutil.copyfile(SAMPLE_AVATAR_VIDEO, d / "01.mp4")
    (d / "combined_data.json.gz").write_bytes(json_bytes)
    return d


def _make_inputs(root: Path) -> Dict[str, str]:
    """The bad (and a few good) inputs every case draws from, under ``root``."""
    f: Dict[str, Path] = {}
    f["missing"] = root / "no_such_file.wav"
    f["missing_dir"] = root / "no_such_dir"
    f["dir"] = root / "a_folder"
    f["dir"].mkdir()
    f["fifo"] = root / "a_fifo.wav"
    os.mkfifo(f["fifo"])
    f["text_file"] = root / "notes.txt"
    f["text_file"].write_text("not a folder\n")
    for suffix in ("wav", "mp4", "pkl", "pth", "json", "npz", "png"):
        f[f"empty_{suffix}"] = root / f"empty.{suffix}"
        f[f"empty_{suffix}"].write_bytes(b"")
        f[f"text_{suffix}"] = root / f"text.{suffix}"
        f[f"text_{suffix}"].write_text("this is plain text, not a media or data file\n" * 20)
    f["good_wav"] = SAMPLE_SPEECH_ZH
    f["good_video"] = SAMPLE_AVATAR_VIDEO
    f["nan_wav"] = _float_wav(root / "nan.wav", np.where(np.arange(16000) % 100 == 0, np.nan, 0.1))
    f["inf_wav"] = _float_wav(root / "inf.wav", np.where(np.arange(16000) % 100 == 0, np.inf, 0.1))
    f["zero_wav"] = _float_wav(root / "zero_samples.wav", np.zeros(0))
    with wave.open(str(root / "silent_video_audio.wav"), "wb") as w:  # valid, used as a good audio elsewhere
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 1600)
    # Truncated copies of real checkpoints and bases.
    for key, src in (("trunc_dinet_mini", DINET_MINI_CHECKPOINT), ("trunc_audio", AUDIO_CHECKPOINT),
                     ("trunc_lstm", MINI_AUDIO_CHECKPOINT), ("trunc_basis", BLENDSHAPE_BASIS)):
        data = src.read_bytes()
        f[key] = root / f"truncated_{src.name}"
        f[key].write_bytes(data[: len(data) // 3])
    f["trunc_video"] = root / "truncated.mp4"
    f["trunc_video"].write_bytes(SAMPLE_AVATAR_VIDEO.read_bytes()[:5000])
    # Pickles: truncated keypoints, a pickle of the wrong type.
    kp = pickle.dumps(np.zeros((20, 478, 3)), protocol=4)
    f["trunc_pkl"] = root / "truncated.pkl"
    f["trunc_pkl"].write_bytes(kp[: len(kp) // 2])
    f["wrong_pkl"] = root / "wrong_type.pkl"
    f["wrong_pkl"].write_bytes(pickle.dumps({"not": "keypoints"}))
    # JSON: truncated, wrong type.
    f["trunc_json"] = root / "truncated.json"
    f["trunc_json"].write_text('{"method": "x", "rows": [1, 2')
    # Asset packs: truncated gzip, empty, a JSON list, another version's layout, a good pack folder
    # whose json entries have another structure.
    good = gzip.compress(json.dumps({"frame_num": 3, "face3D_obj": [], "json_data": [
        {"rect": [0, 0, 10, 10], "points": [0.0] * 18}] * 3}).encode())
    f["pack_truncated"] = _pack(root, "pack_truncated", good[: len(good) // 2])
    f["pack_empty_json"] = _pack(root, "pack_empty_json", b"")
    f["pack_list"] = _pack(root, "pack_list", gzip.compress(b"[1, 2, 3]"))
    f["pack_other_version"] = _pack(root, "pack_other_version", gzip.compress(json.dumps(
        {"version": "9.9", "frames": [{"bbox": [0, 0, 10, 10]}]}).encode()))
    f["pack_other_layout"] = _pack(root, "pack_other_layout", gzip.compress(json.dumps(
        {"frame_num": 2, "face3D_obj": "v 0 0 0", "json_data": [[0, 0, 10, 10], [1, 2]]}).encode()))
    f["pack_not_gzip"] = _pack(root, "pack_not_gzip", b'{"frame_num": 1}')
    f["avatar_pack_trunc"] = root / "avatar_pack_trunc"
    shutil.copytree(f["pack_truncated"], f["avatar_pack_trunc"] / "assets")
    # Prepared mini avatar folders with a broken keypoint pickle / a pickle of the wrong type.
    f["good_pkl"] = root / "keypoints.pkl"
    f["good_pkl"].write_bytes(kp)
    for key, src in (("avatar_trunc_pkl", f["trunc_pkl"]), ("avatar_wrong_pkl", f["wrong_pkl"]),
                     ("avatar_good_pkl", f["good_pkl"])):
        d = root / key / "data"
        d.mkdir(parents=True)
        shutil.copyfile(SAMPLE_AVATAR_VIDEO, d / "processed.mp4")
        shutil.copyfile(src, d / "processed.pkl")
        f[key] = d.parent
    # A DH_live avatar folder with a truncated keypoint_rotate.pkl.
    d = root / "dhlive_trunc"
    d.mkdir()
    shutil.copyfile(SAMPLE_AVATAR_VIDEO, d / "circle.mp4")
    shutil.copyfile(f["trunc_pkl"], d / "keypoint_rotate.pkl")
    f["dhlive_trunc"] = d
    # A training-data folder of the DH_live render model with a truncated keypoint pickle.
    d = root / "render_data" / "clip0"
    (d / "image").mkdir(parents=True)
    shutil.copyfile(BLENDSHAPE_BASIS.with_suffix(".png"), d / "image" / "000000.png")
    shutil.copyfile(f["trunc_pkl"], d / "keypoint_rotate.pkl")
    shutil.copyfile(f["trunc_pkl"], d / "face_mat_mask.pkl")
    f["render_data_trunc"] = d.parent
    # Evaluation JSON folder with a truncated result.
    d = root / "eval_results"
    d.mkdir()
    shutil.copyfile(f["trunc_json"], d / "clip.model.json")
    f["eval_trunc"] = d
    # A folder of prepared mini training data (npz) that is truncated.
    d = root / "mini_train_data"
    d.mkdir()
    (d / "clip.npz").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    f["mini_data_trunc"] = d
    # A speech folder holding only a broken file.
    d = root / "speech_bad"
    d.mkdir()
    shutil.copyfile(f["text_wav"], d / "a.wav")
    f["speech_bad"] = d
    # Audio-model training clips: a good wav whose target file is corrupt.
    d = root / "lstm_bad"
    d.mkdir()
    shutil.copyfile(SAMPLE_SPEECH_ZH, d / "a.wav")
    (d / "a.bs.txt").write_text("0.1 0.2 x\n0.3 0.4\n")
    f["lstm_bad"] = d
    f["good_audio_ckpt"] = AUDIO_CHECKPOINT
    f["good_dinet_mini"] = DINET_MINI_CHECKPOINT
    f["good_basis"] = BLENDSHAPE_BASIS
    f["moda_trunc"] = root / "moda_records"
    f["moda_trunc"].mkdir()
    (f["moda_trunc"] / "clip.moda.npz").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    f["noface_video"] = write_video(root / "no_face.mp4", [np.full((256, 256, 3), 80, np.uint8)] * 40)
    f["videos_text"] = root / "videos_text"  # two "videos" that are text: each skipped, then one error
    f["videos_text"].mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copyfile(f["text_mp4"], f["videos_text"] / name)
    f["cache_empty"] = root / "clip_cache"
    f["cache_empty"].mkdir()
    (f["cache_empty"] / "index.tsv").write_text("name\trel\taudio\tframes\tstatus\n")
    # Outputs: unwritable places (root can't write under /proc/sys) and below a regular file.
    f["unwritable_dir"] = Path("/proc/sys/talkingface_out")
    f["below_file"] = f["text_file"] / "out"
    return {k: str(v) for k, v in f.items()}


#: What the error line must say, by the kind of bad input named in the case id (last match wins).
EXPECT = (
    ("missing", r"not found|missing|no such|no folder|not a folder|no prepared|not a mini avatar|not an asset pack"
                r"|no \S+index\.tsv|no \*\.moda\.npz clip records|not a person folder|not a MODA avatar"),
    ("is-file", r"not a folder|exists and is not|not an asset pack|not a mini avatar"),
    ("empty", r"empty|no audio samples|truncated|corrupt|cannot read"),
    ("text", r"cannot read|invalid data|truncated|corrupt|another format|not a|no usable|could be prepared"),
    ("truncated", r"truncated|corrupt|cannot read|not valid|not a zip"),
    ("corrupt", r"truncated|corrupt|cannot read|NaN"),
    ("wrong-type", r"another format|holds no|not a|expected"),
    ("json-list", r"another format|not a|missing|layout"),
    ("other-version", r"another format|version|layout|missing"),
    ("other-layout", r"another format|version|layout|missing"),
    ("not-gzip", r"gzip|truncated|corrupt|cannot read"),
    ("fifo", r"not a regular file"),
    ("-dir", r"is a folder"),
    ("audio-dir", r"is a folder"),
    ("video-dir", r"is a folder"),
    ("nan", r"NaN or infinite"),
    ("inf", r"NaN or infinite"),
    ("zero-samples", r"no audio samples"),
    ("unwritable", r"not writable"),
    ("below-file", r"not a folder"),
    ("bad-option", r"invalid"),
    ("no-face", r"no face"),
    ("other-model", r"does not hold|does not match|not a|another format"),
)


def expected(case_id: str) -> str:
    """The pattern the error line of ``case_id`` must match (see EXPECT)."""
    found = [pattern for key, pattern in EXPECT if key in case_id]
    assert found, f"no expectation for {case_id}"
    return found[-1]


@dataclass(frozen=True)
class Case:
    id: str
    script: str  # path relative to the repository, or "-m module"
    argv: Tuple[str, ...]  # "{key}" placeholders name inputs of _make_inputs; "{out}" the case's output folder


def _cases() -> List[Case]:
    c: List[Case] = []

    def add(script: str, name: str, *argv: str) -> None:
        stem = Path(script.split()[-1]).stem if not script.startswith("-m") else script.split()[-1].split(".")[-1]
        c.append(Case(f"{stem}-{name}", script, argv))

    # demo_mini.py ASSETS AUDIO OUT
    s = "demo_mini.py"
    add(s, "pack-truncated", "{pack_truncated}", "{good_wav}", "{out}/o.mp4")  # issue 11 defect 1
    add(s, "pack-empty-json", "{pack_empty_json}", "{good_wav}", "{out}/o.mp4")
    add(s, "pack-not-gzip", "{pack_not_gzip}", "{good_wav}", "{out}/o.mp4")
    add(s, "pack-json-list", "{pack_list}", "{good_wav}", "{out}/o.mp4")
    add(s, "pack-other-version", "{pack_other_version}", "{good_wav}", "{out}/o.mp4")
    add(s, "pack-other-layout", "{pack_other_layout}", "{good_wav}", "{out}/o.mp4")
    add(s, "pack-missing", "{missing_dir}", "{good_wav}", "{out}/o.mp4")
    add(s, "pack-is-file", "{text_file}", "{good_wav}", "{out}/o.mp4")
    add(s, "audio-missing", "{pack_truncated}", "{missing}", "{out}/o.mp4")
    add(s, "audio-empty", "{pack_truncated}", "{empty_wav}", "{out}/o.mp4")
    add(s, "audio-text", "{pack_truncated}", "{text_wav}", "{out}/o.mp4")
    add(s, "audio-fifo", "{pack_truncated}", "{fifo}", "{out}/o.mp4")
    add(s, "audio-dir", "{pack_truncated}", "{dir}", "{out}/o.mp4")
    add(s, "audio-nan", "{pack_truncated}", "{nan_wav}", "{out}/o.mp4")
    add(s, "audio-inf", "{pack_truncated}", "{inf_wav}", "{out}/o.mp4")
    add(s, "audio-zero-samples", "{pack_truncated}", "{zero_wav}", "{out}/o.mp4")
    add(s, "out-is-dir", "{pack_truncated}", "{good_wav}", "{out}")  # issue 11 defect 2
    add(s, "out-unwritable", "{pack_truncated}", "{good_wav}", "{unwritable_dir}/o.mp4")
    add(s, "out-below-file", "{pack_truncated}", "{good_wav}", "{below_file}/o.mp4")
    add(s, "mosaic-is-dir", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--mosaic", "{out}")
    add(s, "ckpt-truncated", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--ckpt", "{trunc_dinet_mini}")
    add(s, "ckpt-missing", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--ckpt", "{missing}")
    add(s, "audio-ckpt-truncated", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--audio_ckpt", "{trunc_lstm}")
    add(s, "audio-ckpt-text", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--audio_ckpt", "{text_pkl}")
    add(s, "ckpt-other-model", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--ckpt", "{good_audio_ckpt}")
    add(s, "audio-ckpt-other-model", "{pack_truncated}", "{good_wav}", "{out}/o.mp4",
        "--audio_ckpt", "{good_dinet_mini}")
    add(s, "bad-option", "{pack_truncated}", "{good_wav}", "{out}/o.mp4", "--bs_scale", "lots")
    # data_preparation*.py VIDEO OUT_DIR
    for s in ("data_preparation.py", "data_preparation_mini.py"):
        add(s, "video-missing", "{missing}", "{out}/avatar")
        add(s, "video-empty", "{empty_mp4}", "{out}/avatar")
        add(s, "video-text", "{text_mp4}", "{out}/avatar")
        add(s, "video-truncated", "{trunc_video}", "{out}/avatar")
        add(s, "video-fifo", "{fifo}", "{out}/avatar")
        add(s, "video-dir", "{dir}", "{out}/avatar")
        add(s, "video-no-face", "{noface_video}", "{out}/avatar")
        add(s, "out-is-file", "{good_video}", "{text_file}")
        add(s, "out-unwritable", "{good_video}", "{unwritable_dir}")
    s = "data_preparation_web.py"
    add(s, "avatar-missing", "{missing_dir}")
    add(s, "avatar-is-file", "{text_file}")
    add(s, "keypoints-truncated", "{avatar_trunc_pkl}")
    add(s, "keypoints-wrong-type", "{avatar_wrong_pkl}")
    add(s, "ckpt-truncated", "{avatar_good_pkl}", "--ckpt", "{trunc_dinet_mini}")
    add(s, "ckpt-other-model", "{avatar_good_pkl}", "--ckpt", "{good_audio_ckpt}")
    # demo.py AVATAR AUDIO OUT
    s = "demo.py"
    add(s, "avatar-missing", "{missing_dir}", "{good_wav}", "{out}/o.mp4")
    add(s, "audio-nan", "{dhlive_trunc}", "{nan_wav}", "{out}/o.mp4")
    add(s, "audio-fifo", "{dhlive_trunc}", "{fifo}", "{out}/o.mp4")
    add(s, "out-is-dir", "{dhlive_trunc}", "{good_wav}", "{out}")
    add(s, "ckpt-truncated", "{dhlive_trunc}", "{good_wav}", "{out}/o.mp4", "--ckpt", "{trunc_dinet_mini}")
    add(s, "audio-ckpt-truncated", "{dhlive_trunc}", "{good_wav}", "{out}/o.mp4", "--audio_ckpt", "{trunc_audio}")
    # demo_avatar.py
    s = "demo_avatar.py"
    add(s, "pack-truncated", "--avatar", "{pack_truncated}", "--audio", "{good_wav}", "--out", "{out}/o.mp4")
    add(s, "audio-missing", "--avatar", "{pack_truncated}", "--audio", "{missing}", "--out", "{out}/o.mp4")
    add(s, "audio-nan", "--avatar", "{pack_truncated}", "--audio", "{nan_wav}", "--out", "{out}/o.mp4")
    add(s, "out-is-dir", "--avatar", "{pack_truncated}", "--audio", "{good_wav}", "--out", "{out}")
    add(s, "avatar-missing", "--avatar", "{missing_dir}", "--audio", "{good_wav}", "--out", "{out}/o.mp4")
    # train/
    add("train/data_preparation_face.py", "data-missing", "{missing_dir}")
    add("train/data_preparation_face.py", "data-is-file", "{text_file}")
    add("train/data_preparation_face.py", "videos-text", "{videos_text}")
    add("train/train_input_validation_render_model.py", "data-missing", "{missing_dir}", "--out", "{out}/v.png")
    add("train/train_input_validation_render_model.py", "keypoints-truncated", "{render_data_trunc}",
        "--out", "{out}/v.png")
    add("train/train_input_validation_render_model.py", "out-is-dir", "{render_data_trunc}", "--out", "{out}")
    add("train/train_render_model.py", "data-missing", "--train_data", "{missing_dir}", "--out_dir", "{out}/run")
    add("train/train_render_model.py", "keypoints-truncated", "--train_data", "{render_data_trunc}",
        "--out_dir", "{out}/run", "--max_steps", "1")
    # train_audio/
    add("train_audio/test.py", "audio-nan", "{nan_wav}", "{trunc_audio}", "--out", "{out}/m.mp4")
    add("train_audio/test.py", "ckpt-truncated", "{good_wav}", "{trunc_audio}", "--out", "{out}/m.mp4")
    add("train_audio/test.py", "ckpt-text", "{good_wav}", "{text_pkl}", "--out", "{out}/m.mp4")
    add("train_audio/test.py", "out-is-dir", "{good_wav}", "{trunc_audio}", "--out", "{out}")
    add("train_audio/distill.py", "teacher-truncated", "--teacher", "{trunc_audio}", "--speech", "{speech_bad}",
        "--out", "{out}/run", "--max_steps", "1")
    add("train_audio/distill.py", "speech-missing", "--teacher", "{good_audio_ckpt}", "--speech", "{missing_dir}",
        "--out", "{out}/run")
    add("train_audio/evaluate.py", "model-truncated", "--model", "x={trunc_lstm}", "--clips", "{good_video}",
        "--cache", "{out}/cache")
    add("train_audio/evaluate.py", "basis-truncated", "--basis", "{trunc_basis}", "--clips", "{good_video}",
        "--cache", "{out}/cache")
    add("train_audio/preparation_step0.py", "face-missing", "{missing}", "{dir}", "--wav2lip", "{trunc_audio}")
    add("train_audio/preparation_step0.py", "face-text", "{text_png}", "{dir}", "--wav2lip", "{trunc_audio}")
    add("train_audio/preparation_step1.py", "videos-missing", "{missing_dir}", "{out}/prep")
    add("train_audio/train_lstm.py", "data-missing", "{missing_dir}", "{out}/run")
    add("train_audio/train_lstm.py", "targets-corrupt", "{lstm_bad}", "{out}/run")
    add("train_audio/cache_clips.py", "data-missing", "{missing_dir}", "{out}/cache")
    add("train_audio/cache_clips.py", "cache-is-file", "{dir}", "{text_file}")
    add("train_audio/sync_check.py", "cache-missing", "{missing_dir}", "{out}/sync.tsv", "--teacher", "{good_audio_ckpt}")
    add("train_audio/sync_check.py", "teacher-truncated", "{cache_empty}", "{out}/sync.tsv", "--teacher",
        "{trunc_audio}")
    add("train_audio/sync_check.py", "out-is-dir", "{dir}", "{out}", "--teacher", "{good_audio_ckpt}")
    add("train_audio/train_mixed.py", "teacher-truncated", "--cache", "{dir}", "--sync", "{text_file}", "--teacher",
        "{trunc_audio}", "--speech", "{speech_bad}", "--basis", "{good_basis}", "--out", "{out}/run")
    add("train_audio/train_mixed.py", "basis-truncated", "--cache", "{dir}", "--sync", "{text_file}", "--teacher",
        "{good_audio_ckpt}", "--speech", "{speech_bad}", "--basis", "{trunc_basis}", "--out", "{out}/run")
    add("train_audio/train_mixed.py", "sync-text", "--cache", "{missing_dir}", "--sync", "{text_file}",
        "--teacher", "{good_audio_ckpt}", "--speech", "{speech_bad}", "--basis", "{good_basis}", "--out", "{out}/run")
    # python -m talkingface.export onnx
    add("-m talkingface.export", "audio-ckpt-truncated", "onnx", "--what", "audio_step", "--audio_ckpt", "{trunc_lstm}",
        "--out", "{out}/onnx")
    add("-m talkingface.export", "mini-ckpt-truncated", "onnx", "--what", "mini", "--mini_ckpt", "{trunc_dinet_mini}",
        "--out", "{out}/onnx")
    add("-m talkingface.export", "out-is-file", "onnx", "--what", "audio_step", "--out", "{text_file}")
    # train_moda/
    add("train_moda/train_faco.py", "data-missing", "{missing_dir}", "{out}/run")
    add("train_moda/train_faco.py", "out-is-file", "{dir}", "{text_file}")
    add("train_moda/train_moda.py", "data-missing", "{missing_dir}", "{out}/run")
    add("train_moda/train_moda.py", "data-truncated", "{moda_trunc}", "{out}/run")
    add("train_moda/train_renderer.py", "person-missing", "{missing_dir}", "{out}/run")
    add("train_moda/train_renderer.py", "out-is-file", "{dir}", "{text_file}")
    # mini_live/
    add("mini_live/evaluate.py", "video-missing", "{missing}", "--ckpt", "{trunc_dinet_mini}")
    add("mini_live/evaluate.py", "ckpt-truncated", "{good_video}", "--ckpt", "{trunc_dinet_mini}")
    add("mini_live/export_checkpoint.py", "src-truncated", "{trunc_dinet_mini}", "{out}/x.pth")
    add("mini_live/export_checkpoint.py", "src-missing", "{missing}", "{out}/x.pth")
    add("mini_live/export_checkpoint.py", "dst-is-dir", "{trunc_dinet_mini}", "{out}")
    add("mini_live/generate_fusion_mask.py", "out-is-file", "--out", "{text_file}")
    add("mini_live/generate_fusion_mask.py", "out-unwritable", "--out", "{unwritable_dir}")
    add("mini_live/prepare_training_data.py", "video-missing", "{out}/data", "{missing}")
    add("mini_live/prepare_training_data.py", "video-text", "{out}/data", "{text_mp4}")
    add("mini_live/render.py", "keypoints-truncated", "{avatar_trunc_pkl}", "{out}/p.mp4")
    add("mini_live/render.py", "out-is-dir", "{avatar_trunc_pkl}", "{out}")
    add("mini_live/train.py", "data-missing", "{missing_dir}", "--out", "{out}/run")
    add("mini_live/train.py", "data-truncated", "{mini_data_trunc}", "--out", "{out}/run", "--max_steps", "1")
    add("mini_live/train.py", "resume-truncated", "{mini_data_trunc}", "--out", "{out}/run",
        "--resume", "{trunc_dinet_mini}")
    add("mini_live/train_input_validation.py", "data-missing", "{missing_dir}", "{out}/v.png")
    add("mini_live/train_input_validation.py", "data-truncated", "{mini_data_trunc}", "{out}/v.png")
    add("mini_live/obj/make_assets.py", "basis-truncated", "--basis", "{trunc_basis}", "--out", "{out}/assets")
    add("mini_live/obj/make_assets.py", "out-is-file", "--out", "{text_file}")
    # scripts/
    add("scripts/build_mean_face.py", "input-missing", "{missing}", "--out", "{out}/m.npz")
    add("scripts/build_mean_face.py", "out-is-dir", "{good_video}", "--out", "{out}")
    add("scripts/make_demo.py", "wav-nan", "--wav", "{nan_wav}", "--out", "{out}/demo")
    add("scripts/make_demo.py", "wav-missing", "--wav", "{missing}", "--out", "{out}/demo")
    add("scripts/make_demo.py", "out-is-file", "--out", "{text_file}")
    add("scripts/make_demo.py", "avatar-truncated-pack", "--avatar", "{avatar_pack_trunc}", "--out", "{out}/demo")
    add("scripts/make_demo.py", "avatar-missing", "--avatar", "{missing_dir}", "--out", "{out}/demo")
    # MODA: data_preparation_moda.py INPUTS OUT, demo_moda.py SUBJECT AUDIO OUT
    add("data_preparation_moda.py", "video-missing", "{missing}", "{out}/moda")
    add("data_preparation_moda.py", "out-is-file", "{good_video}", "{text_file}")
    add("data_preparation_moda.py", "video-text", "{text_mp4}", "{out}/moda", "--avatar")
    add("demo_moda.py", "subject-missing", "{missing_dir}", "{good_wav}", "{out}/o.mp4")
    add("demo_moda.py", "audio-nan", "{dir}", "{nan_wav}", "{out}/o.mp4")
    add("demo_moda.py", "out-is-dir", "{dir}", "{good_wav}", "{out}")
    # serve_web.py (checked before any folder is made or the port is opened)
    add("serve_web.py", "packs-is-file", "--packs", "{text_file}", "--work", "{out}/work", "--models", "{out}/models",
        "--no_prepare", "--port", "0")
    add("serve_web.py", "work-unwritable", "--packs", "{out}/packs", "--work", "{unwritable_dir}", "--models",
        "{out}/models", "--no_prepare", "--port", "0")
    # python -m talkingface.eval
    add("-m talkingface.eval", "summary-truncated-json", "summary", "{eval_trunc}")
    add("-m talkingface.eval", "compare-missing", "compare", "--pred", "{missing}", "--gt", "{good_video}")
    add("-m talkingface.eval", "compare-text", "compare", "--pred", "{text_mp4}", "--gt", "{text_mp4}")
    add("-m talkingface.eval", "selfrecon-clip-missing", "selfrecon", "--pipeline", "mini", "--clip", "{missing}",
        "--out", "{out}/eval")
    return c


CASES = _cases()


@pytest.fixture(scope="module")
def matrix_results(tmp_path_factory) -> Dict[str, dict]:
    """Run every case once (one interpreter) and return its result by case id."""
    root = tmp_path_factory.mktemp("bad_input")
    inputs = root / "inputs"
    inputs.mkdir()
    files = _make_inputs(inputs)
    specs = []
    for case in CASES:
        work = root / "cases" / case.id
        (work / "out").mkdir(parents=True)
        argv = [a.format(out=work / "out", **files) for a in case.argv]
        script = case.script if case.script.startswith("-m ") else str(REPO / case.script)
        specs.append({"id": case.id, "script": script, "argv": argv, "cwd": str(work),
                      "watch": [str(inputs), str(work)]})
    (root / "cases.json").write_text(json.dumps(specs), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TALKINGFACE_HOME=str(root / "home"))
    env.pop("TALKINGFACE_DATA", None)
    proc = subprocess.run([sys.executable, str(RUNNER), str(root / "cases.json"), str(root / "results.json")],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["id"]: r for r in json.loads((root / "results.json").read_text(encoding="utf-8"))}
    results["_home"] = {"files": sorted(str(p) for p in (root / "home").rglob("*"))}
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, matrix_results):
    r = matrix_results[case.id]
    lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
    assert r["rc"] == 2, f"exit {r['rc']}, stderr:\n{r['stderr'][-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"stderr is not one error line:\n{r['stderr'][-2000:]}"
    assert not r["new_files"], f"left behind: {r['new_files']}"
    assert re.search(expected(case.id), lines[0], re.IGNORECASE), f"{lines[0]!r} does not match {expected(case.id)!r}"


def test_matrix_leaves_the_writable_home_alone(matrix_results):
    """No case builds a default avatar (or anything else) in the writable home."""
    assert matrix_results["_home"]["files"] == []


def test_every_script_is_in_the_matrix():
    """A new user-facing script must get its rows in this table."""
    scripts = {str(p.relative_to(REPO)) for pattern in ("*.py", "train/*.py", "train_audio/*.py", "train_moda/*.py",
                                                         "mini_live/*.py",
                                                         "mini_live/obj/make_assets.py", "scripts/*.py")
               for p in REPO.glob(pattern)
               if p.name != "__init__.py" and p.name != "setup.py" and "__main__" in p.read_text(encoding="utf-8")}
    covered = {c.script for c in CASES}
    not_scripts = {"mini_live/opengl_render_interface.py"}
    assert sorted(scripts - covered - not_scripts) == []
