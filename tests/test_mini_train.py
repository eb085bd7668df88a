"""mini_live/train.py end to end on a few real frames: steps, checkpoint layout, resume, TensorBoard,
validation mosaic, and the input-validation mosaic."""
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import torch

from talkingface.data.DHLive_mini_dataset import prepare_video, save_prepared

REPO = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name.replace("/", "_"), REPO / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def data_dir(sample_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mini_data")
    video = prepare_video(sample_data / "av/grid/swiz3n.mpg", max_frames=12)
    save_prepared(video, out / "train_swiz3n.npz")
    shutil.copy(out / "train_swiz3n.npz", out / "heldout_swiz3n.npz")
    return out


def test_train_resume_and_outputs(data_dir, tmp_path):
    train = _load("mini_live/train")
    out = tmp_path / "ckpt"
    common = [str(data_dir), "--out", str(out), "--val", "heldout", "--batch_size", "2", "--samples_per_epoch", "4",
              "--val_samples", "4", "--val_every", "2", "--workers", "0", "--threads", "1", "--gan_start_step", "1", "--procedural_teeth_p", "0",
              "--lamb_edge", "1", "--renderer_teeth_p", "1", "--renderer_teeth_follow"]
    with pytest.raises(SystemExit) as exc:
        train.run_cli(train.main, common + ["--max_steps", "2"])
    assert exc.value.code == 0
    ckpt = torch.load(out / "epoch_1.pth", weights_only=True)
    assert set(ckpt) == {"epoch", "step", "state_dict", "optimizer"} and ckpt["step"] == 2
    assert set(ckpt["state_dict"]) == {"net_g", "net_d"} and len(ckpt["state_dict"]["net_g"]) == 115
    assert (out / "epoch_1.json").is_file()
    assert list((out / "val").glob("step_000002.png")), "validation mosaic written"
    assert list((out / "log").glob("events.out.tfevents.*")), "TensorBoard log written"
    # resume: continues from step 2 (epoch 1 has 2 steps), trains the discriminator from step 1 on
    with pytest.raises(SystemExit) as exc:
        train.run_cli(train.main, common + ["--max_steps", "3", "--resume", str(out / "epoch_1.pth")])
    assert exc.value.code == 0
    resumed = torch.load(out / "epoch_2.pth", weights_only=True)
    assert resumed["step"] == 3 and resumed["epoch"] == 2
    changed = [k for k, v in resumed["state_dict"]["net_d"].items() if not torch.equal(v, ckpt["state_dict"]["net_d"][k])]
    assert changed, "the discriminator trained"


def test_gradient_l1():
    from talkingface.mini_training import gradient_l1

    img = torch.rand(2, 3, 16, 16)
    assert float(gradient_l1(img, img)) == 0.0
    # a constant offset has the same gradients; a blurred copy does not
    assert float(gradient_l1(img + 0.1, img)) == pytest.approx(0.0, abs=1e-6)
    blurred = torch.nn.functional.avg_pool2d(img, 3, stride=1, padding=1)
    assert float(gradient_l1(blurred, img)) > 0.1


def test_bad_data_dir_is_a_user_error(tmp_path, capsys):
    train = _load("mini_live/train")
    with pytest.raises(SystemExit) as exc:
        train.run_cli(train.main, [str(tmp_path / "missing")])
    assert exc.value.code == 2
    assert "not found" in capsys.readouterr().err


def test_input_validation_mosaic(data_dir, tmp_path):
    tiv = _load("mini_live/train_input_validation")
    out = tmp_path / "inputs.png"
    with pytest.raises(SystemExit) as exc:
        tiv.run_cli(tiv.main, [str(data_dir), str(out), "--samples", "3"])
    assert exc.value.code == 0
    import cv2

    img = cv2.imread(str(out))
    assert img.shape == (3 * 144, 8 * 144, 3)


def test_prepare_with_a_landmark_cache(sample_data, tmp_path):
    """Cached face meshes are used as they are, --keep spreads the frames, held-out clips are skipped."""
    import numpy as np

    from talkingface.data.DHLive_mini_dataset import load_prepared
    from talkingface.mediapipe_utils import landmarks_for_video
    from talkingface.util.media import read_video

    prep = _load("mini_live/prepare_training_data")
    clip = sample_data / "av/grid/swiz3n.mpg"
    lm = landmarks_for_video(read_video(clip, max_frames=20), progress=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    np.savez(cache / "av__grid__swiz3n.clip.npz", landmarks=lm.astype(np.float32))
    args = [str(tmp_path / "out"), str(clip), "--landmarks", str(cache), "--data_root", str(sample_data), "--keep", "5"]
    with pytest.raises(SystemExit) as exc:
        prep.run_cli(prep.main, args)
    assert exc.value.code == 0 and not (tmp_path / "out" / "grid_swiz3n.mpg.npz").exists(), "held out: skipped"
    with pytest.raises(SystemExit) as exc:
        prep.run_cli(prep.main, args + ["--allow_heldout"])
    assert exc.value.code == 0
    video = load_prepared(tmp_path / "out" / "grid_swiz3n.mpg.npz")
    assert list(video.frame_index) == [0, 4, 8, 12, 16]
    assert (tmp_path / "out" / "grid_swiz3n.mpg_labels.png").is_file()
