"""Few-shot render data (train and eval paths), the render trainer (steps, checkpoints, resume,
TensorBoard) and the input-validation mosaic, on a real GRID clip prepared by the project's own
train/data_preparation_face.py."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from talkingface.data.few_shot_dataset import (FewShotConfig, Few_Shot_Dataset, data_preparation, face_crop_box,
                                               lip_gap, select_ref_index)
from talkingface.errors import UserInputError
from talkingface.models.DINet import DINet_five_Ref, load_dinet_state_dict

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("/", "_"), REPO / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_dir(sample_data, tmp_path_factory) -> Path:
    from talkingface.preparation import PrepConfig, prepare_training_face

    root = tmp_path_factory.mktemp("dinet_train")
    prepare_training_face(sample_data / "av/grid/bbaf2n.mpg", root / "bbaf2n", PrepConfig(progress=False))
    return root


def test_dataset_train_and_eval_paths(train_dir):
    videos = data_preparation([train_dir], size=128)
    cfg = FewShotConfig(size=128)
    train = Few_Shot_Dataset(videos, cfg, is_train=True, samples_per_video=3)
    assert len(train) == 3
    torch.manual_seed(0)
    item = train[0]
    assert item["source"].shape == (6, 128, 128)
    assert item["ref"].shape == (30, 128, 128)
    assert item["target"].shape == (3, 128, 128)
    for key in ("source", "ref", "target"):
        assert item[key].dtype == torch.float32 and 0.0 <= float(item[key].min()) and float(item[key].max()) <= 1.0

    evalset = Few_Shot_Dataset(videos, cfg, is_train=False)
    assert len(evalset) == len(videos[0]) == 75
    a, b = evalset[10], evalset[10]
    assert torch.equal(a["source"], b["source"]) and torch.equal(a["ref"], b["ref"])  # deterministic

    # BGR kept: the target is the face crop of the PNG exactly as OpenCV reads it (BGR).
    rec = videos[0]
    box = face_crop_box(rec.main[10], 128)
    expected = box.crop(cv2.imread(rec.frames[10]))
    got = (a["target"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1

    # The jaw region of the source is black, the area above the nose is not; the prompt has a mouth.
    src, prompt = a["source"][:3], a["source"][3:]
    lips = box.to_crop(rec.main[10])[[41, 51]].mean(axis=0).round().astype(int)  # inner-lip mid points 14, 13
    assert float(src[:, lips[1], lips[0]].max()) == 0.0
    assert float(src.mean()) > 0.1
    assert float((prompt > 0.05).float().mean()) > 0.02
    # Without augmentation, each reference image is an un-jittered crop of some frame.
    assert float(a["ref"][0:3].mean()) > 0.1 and float(a["ref"][3:6].max()) > 0.5


def test_reference_selection_skips_closed_mouths(train_dir):
    rec = data_preparation([train_dir])[0]
    gaps = lip_gap(rec.main)
    cut = np.sort(gaps)[len(gaps) // 3]
    picked = select_ref_index(rec.main, 50, 1 / 3, np.random.default_rng(0))
    assert all(gaps[i] >= cut - 1e-9 for i in picked)


def test_trainer_steps_checkpoints_resume(train_dir, tmp_path):
    script = _script("train/train_render_model.py")
    out = tmp_path / "run"
    common = ["--train_data", str(train_dir), "--out_dir", str(out), "--batch_size", "1",
              "--samples_per_video", "10", "--face_size", "96", "--eval_frames", "1", "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_info:
        script.run_cli(script.main, common + ["--max_steps", "1"])
    assert exit_info.value.code == 0
    ckpt = torch.load(out / "last.pth", map_location="cpu", weights_only=False)
    assert ckpt["step"] == 1 and set(ckpt["state_dict"]) == {"net_g", "net_d"}
    assert set(ckpt["optimizer"]) == {"net_g", "net_d"}
    assert list((out / "log" / "train").glob("events.out.tfevents.*"))
    net = DINet_five_Ref(6, 30)
    load_dinet_state_dict(net, out / "render.pth")
    assert torch.equal(net.out_conv[4].bias, ckpt["state_dict"]["net_g"]["out_conv.4.bias"])

    with pytest.raises(SystemExit) as exit_info:
        script.run_cli(script.main, common + ["--max_steps", "2", "--resume", str(out / "last.pth")])
    assert exit_info.value.code == 0
    assert torch.load(out / "last.pth", map_location="cpu", weights_only=False)["step"] == 2

    with pytest.raises(SystemExit) as exit_info:
        script.run_cli(script.main, common + ["--resume", str(tmp_path / "missing.pth")])
    assert exit_info.value.code == 2


def test_validation_mosaic(train_dir, tmp_path):
    script = _script("train/train_input_validation_render_model.py")
    out = tmp_path / "validation.png"
    assert script.main([str(train_dir), "--out", str(out), "--rows", "2"]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (2 * 256, 9 * 256, 3)
    with pytest.raises(UserInputError):
        script.main([str(tmp_path / "nothing_here"), "--out", str(out)])
