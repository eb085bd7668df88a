"""Clip cache (separate audio files), per-clip sync check and the mixed true-target + distillation recipe."""

import numpy as np
import pytest
import torch

from talkingface.audio_model import AudioModel

BUFFETT = "av_more/CyberSculptor96__talkingface-codebase/0000_000.mp4"  # 24 fps, sound in 0000_000.m4a
VOX = "av/voxceleb2/Input_00002.mp4"


@pytest.fixture(scope="module")
def cache(sample_data, tmp_path_factory):
    from train_audio import cache_clips

    if not (sample_data / BUFFETT).is_file():
        pytest.skip("av_more not in the sample data")
    out = tmp_path_factory.mktemp("clips")
    assert cache_clips.main([str(sample_data), str(out), "--only", BUFFETT, "--only", VOX]) == 0
    return out


def test_cache_takes_sound_from_the_paired_file(cache):
    from talkingface.util.media import load_audio

    rows = [line.split("\t") for line in (cache / "index.tsv").read_text().splitlines()[1:]]
    assert {r[1] for r in rows} == {BUFFETT, VOX}
    buffett = next(r for r in rows if r[1] == BUFFETT)
    assert buffett[2] == "0000_000.m4a" and buffett[4] == "ok"
    name = buffett[0]
    with np.load(cache / f"{name}.clip.npz") as d:
        n = len(d["landmarks"])
    assert 120 <= n <= 127  # 5.04 s at 24 fps, resampled to 25 fps
    audio = load_audio(cache / f"{name}.wav")
    assert abs(audio.size / 640 - n) < 1.0


def test_sync_decisions():
    from train_audio.sync_check import SyncRow, decide

    def row(r_best, late, pool=""):
        r = SyncRow("c", "p", 100, 0.0, r_best, late, 0, 0.0, pool=pool, pool_late=late)
        decide(r)
        return r

    assert row(0.7, 0).decision == "keep" and row(0.7, -1).shift == 0
    shifted = row(0.7, 3)
    assert shifted.decision == "shift" and shifted.shift == 3
    assert row(0.2, 0).decision == "drop"  # probe too weak
    assert row(0.7, 5).decision == "drop"  # at the edge of the search
    assert row(0.2, 2, pool="g").decision == "shift"  # pooled offset: a weaker piece is kept


def test_aligned_pairs_audio_frame_with_shifted_video_frame():
    from train_audio.train_mixed import aligned

    audio = np.repeat(np.arange(10, dtype=np.float32), 640)  # sample value = its frame index
    rows = np.arange(10)[:, None].astype(np.float32)
    a, r = aligned(audio, rows, 2)  # the picture is 2 frames late: audio frame t <-> video frame t + 2
    assert len(r) == 8 and a.size == 8 * 640 and r[0, 0] == 2 and a[0] == 0
    a, r = aligned(audio, rows, -1)
    assert len(r) == 9 and r[0, 0] == 0 and a[0] == 1


def test_sync_check_and_mixed_training(cache, sample_data, repo_root, tmp_path):
    from train_audio import sync_check, train_mixed
    from train_audio.distill import speech_files

    teacher = sample_data / "dh_live" / "checkpoint" / "audio.pkl"
    table = tmp_path / "sync.tsv"
    assert sync_check.main([str(cache), str(table), "--teacher", str(teacher)]) == 0
    rows = sync_check.read_decisions(table)
    assert len(rows) == 2 and all(r.decision in ("keep", "shift", "drop") for r in rows.values())
    for r in rows.values():  # let both train in this tiny run, whatever their measured offset
        r.decision = "keep" if r.decision == "drop" else r.decision
    lines = table.read_text().splitlines()
    table.write_text("\n".join([lines[0]] + [line.replace("\tdrop\t", "\tkeep\t") for line in lines[1:]]) + "\n")
    out = tmp_path / "run"
    args = ["--cache", str(cache), "--sync", str(table), "--teacher", str(teacher),
            "--speech", str(sample_data / "speech_corpus" / "jfk"),
            "--basis", str(repo_root / "checkpoint" / "mouth_basis" / "blendshape_basis.npz"), "--out", str(out),
            "--init", str(repo_root / "checkpoint" / "lstm" / "lstm_blendshape.pkl"), "--max_steps", "6",
            "--save_every", "3", "--batch_size", "4", "--variants", "2", "--val_fraction", "0", "--device", "cpu",
            "--distill_real", "--speeds", "0.9", "1.0"]
    assert train_mixed.main(args) == 0
    assert torch.load(out / "last.pth", weights_only=False)["step"] == 6
    model = AudioModel(out / "lstm_blendshape.pkl")
    assert model.lookahead_steps == 4 and model.card["target"] == "blendshape"
    assert {c["path"] for c in model.card["data"]["real_train"]} == {BUFFETT, VOX}
    # --distill_real: the teacher also labels both real training clips' audio
    n_speech = len(speech_files([sample_data / "speech_corpus" / "jfk"], set()))
    assert model.card["data"]["speech_files"] == n_speech + 2 and "real training clips' audio" in model.card["recipe"]
    # --speeds: every distillation file is labelled as recorded and played at 0.9x (about 1/0.9 as long)
    with np.load(out / "fbank_cache.npz") as d:
        names, lengths = list(d["names"]), d["lengths"]
    assert len(names) == 2 * (n_speech + 2) and names[0].endswith("@0.9") and "@" not in names[1]
    assert abs(lengths[0] / lengths[1] - 1 / 0.9) < 0.02
    y = model.interface_wav(np.zeros(16000, np.float32))
    assert y.shape == (25, 6) and np.isfinite(y).all()


def test_speed_perturbation_scales_tempo_and_pitch_together():
    from talkingface.data.dataset_wav import speed_perturb

    t = np.arange(32000) / 16000.0
    tone = (0.5 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)
    for factor in (0.9, 1.1):
        out = speed_perturb(tone, factor)
        assert out.dtype == np.float32 and abs(out.size - tone.size / factor) <= 1
        spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
        peak_hz = np.argmax(spectrum) * 16000.0 / out.size
        assert abs(peak_hz - 200.0 * factor) < 2.0  # 200 Hz played 1.1x as fast sounds at 220 Hz
    assert np.array_equal(speed_perturb(tone, 1.0), tone)  # 1.0 = as recorded
