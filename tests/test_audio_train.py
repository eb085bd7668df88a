"""Audio-model training: dataset windows and augmentation, train_lstm (+ resume), distillation, Wav2Lip route."""

import numpy as np
import pytest
import torch

from talkingface.data.dataset_wav import AudioVisualDataset, AugmentConfig, WaveAugment
from talkingface.models.audio2bs_lstm import load_audio2feature
from talkingface.util.media import load_audio



@pytest.fixture(scope="module")
def prepared(sample_data, tmp_path_factory):
    """preparation_step1 on one real GRID clip: bases + <name>.wav / .bs.txt / .pixel.txt."""
    from train_audio import preparation_step1

    videos = tmp_path_factory.mktemp("videos")
    (videos / "sbia1a.mpg").symlink_to(sample_data / "av" / "grid" / "sbia1a.mpg")
    out = tmp_path_factory.mktemp("prep")
    assert preparation_step1.main([str(videos), str(out)]) == 0
    return out


def test_dataset_windows_and_targets(sample_data):
    audio = load_audio(sample_data / "speech" / "arctic_a0007.wav")
    n = audio.size // 640
    coefs = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
    ds = AudioVisualDataset([audio], [coefs], seq_len=26, train=False)
    feats, target = ds[1]
    assert feats.shape == (52, 80) and target.shape == (26, 6)
    np.testing.assert_array_equal(target.numpy(), coefs[26:52])
    assert len(ds) == len(range(0, ds.n_windows[0], 26))
    train = AudioVisualDataset([audio], [coefs], seq_len=26, train=True, augment=AugmentConfig(), samples_per_epoch=5)
    assert len(train) == 5 and train[0][0].shape == (52, 80)


def test_noise_augmentation_works_at_float_scale(sample_data):
    audio = load_audio(sample_data / "speech" / "arctic_a0007.wav")[:16000]
    aug = WaveAugment(AugmentConfig(noise_p=1.0, polarity_p=0.0, pitch_p=0.0))
    diffs = [np.std(aug(audio) - audio) for _ in range(5)]
    assert all(0.0008 < d < 0.02 for d in diffs)  # 0.001-0.015 of full scale, not 1e-7 as in the original


def test_train_lstm_runs_and_resumes(prepared, tmp_path):
    from train_audio import train_lstm

    out = tmp_path / "run"
    args = [str(prepared / "clips"), str(out), "--target", "bs", "--batch_size", "4", "--save_every", "10",
            "--device", "cpu"]
    assert train_lstm.main(args + ["--max_steps", "20"]) == 0
    assert torch.load(out / "last.pth", weights_only=False)["step"] == 20
    load_audio2feature(out / "audio.pkl")
    assert list((out / "log" / "train").glob("events.*"))
    assert train_lstm.main(args + ["--max_steps", "25", "--resume"]) == 0
    assert torch.load(out / "last.pth", weights_only=False)["step"] == 25


def test_distill_maps_student_to_both_bases(prepared, sample_data, tmp_path):
    from talkingface.audio_model import AudioModel
    from train_audio import distill

    speech = tmp_path / "speech"
    speech.mkdir()
    for name in ("arctic_a0007.wav", "arctic_a0009.wav"):
        (speech / name).symlink_to(sample_data / "speech" / name)
    out = tmp_path / "distill"
    assert distill.main(["--teacher", str(sample_data / "dh_live" / "checkpoint" / "audio.pkl"),
                         "--speech", str(speech), "--bases", str(prepared), "--out", str(out),
                         "--max_steps", "5", "--variants", "2", "--batch_size", "4", "--save_every", "5",
                         "--val_fraction", "0", "--device", "cpu"]) == 0
    for name, target in (("audio_pixel", "pixel"), ("audio_blendshape", "blendshape")):
        model = AudioModel(out / f"{name}.pkl")
        assert model.card["target"] == target and (out / model.card["basis"]).is_file()
        assert model.interface_wav(sample_data / "speech" / "arctic_a0009.wav").shape[1] == 6


def test_wav2lip_and_syncnet_layouts():
    from talkingface.models.syncnet import SyncNet_color
    from talkingface.models.wav2lip import Wav2Lip

    w, s = Wav2Lip(), SyncNet_color()
    assert len(w.state_dict()) == 352 and sum(p.numel() for p in w.parameters()) == 36_298_035
    assert len(s.state_dict()) == 217 and sum(p.numel() for p in s.parameters()) == 16_435_072
    assert w.state_dict()["face_decoder_blocks.3.0.conv_block.0.weight"].shape == (768, 384, 3, 3)
    assert s.state_dict()["audio_encoder.11.conv_block.0.weight"].shape == (256, 256, 3, 3)


def test_teacher_frames_one_per_40ms(sample_data):
    from talkingface.models.wav2lip import Wav2Lip, mel_chunks, render_teacher_frames, wav2lip_mel

    audio = load_audio(sample_data / "speech" / "arctic_a0009.wav")
    mel = wav2lip_mel(audio[:8000])  # 0.5 s
    assert mel.shape[0] == 80 and -4.0 <= mel.min() and mel.max() <= 4.0
    assert mel_chunks(mel, 13).shape == (13, 80, 16)  # one chunk per 40 ms, the tail included
    torch.manual_seed(0)  # random weights: the real ones are user-supplied; this checks the plumbing
    frames = render_teacher_frames(Wav2Lip().eval(), np.full((96, 96, 3), 128, np.uint8), audio[:3200], batch_size=4)
    assert len(frames) == 5 and frames[0].shape == (96, 96, 3) and frames[0].dtype == np.uint8


def test_step0_without_wav2lip_weights_says_so(sample_data, tmp_path):
    from talkingface.errors import UserInputError
    from train_audio import preparation_step0

    with pytest.raises(UserInputError, match="wav2lip.pth"):
        preparation_step0.main([str(sample_data / "dh_live" / "train_audio" / "face.jpg"), str(sample_data / "speech"),
                                "--wav2lip", str(tmp_path / "wav2lip.pth")])
