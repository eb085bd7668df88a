"""Audio model: strict loading of real weights, fbank framing, streaming = offline, bad audio input."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talkingface.audio_features import FbankConfig, StreamingFbank, compute_fbank, fbank_options
from talkingface.audio_model import DEFAULT_CHECKPOINT, AudioModel
from talkingface.errors import UserInputError
from talkingface.models.audio2bs_lstm import Audio2Feature, load_audio2feature
from talkingface.util.media import load_audio

REPO = Path(__file__).resolve().parents[1]


def test_fbank_options_are_the_originals():
    o = fbank_options(FbankConfig())
    assert o.frame_opts.samp_freq == 16000 and o.frame_opts.dither == 0.0
    assert o.frame_opts.frame_length_ms == 50 and o.frame_opts.frame_shift_ms == 20
    assert o.frame_opts.snip_edges is False and o.mel_opts.num_bins == 80
    assert o.frame_opts.window_type == "povey" and o.frame_opts.preemph_coeff == pytest.approx(0.97)


def test_streaming_fbank_gives_2k_minus_1_frames_and_same_values(sample_data):
    audio = load_audio(sample_data / "speech" / "arctic_a0009.wav")[: 640 * 40]
    stream = StreamingFbank()
    counts, parts = [], []
    for k in range(40):
        parts.append(stream.accept(audio[640 * k: 640 * (k + 1)]))
        counts.append(stream.frames_emitted)
    assert counts[:3] == [1, 3, 5] and counts[-1] == 2 * 40 - 1
    np.testing.assert_array_equal(np.concatenate(parts), compute_fbank(audio))


def test_original_audio_pkl_loads_strictly_and_runs(sample_data):
    path = sample_data / "dh_live" / "checkpoint" / "audio.pkl"
    net = load_audio2feature(path)
    assert sum(p.numel() for p in net.parameters()) == 644_166
    assert set(net.state_dict()) == set(torch.load(path, map_location="cpu", weights_only=True))
    model = AudioModel(path)
    wav = sample_data / "speech" / "arctic_a0007.wav"
    rows = model.interface_wav(wav)
    n = int(np.ceil(load_audio(wav).size / 640))
    assert rows.shape == (n, 6) and np.isfinite(rows).all()
    assert rows[:, 0].std() > 10  # coefficient 0 (open/closed) moves with the speech


def test_foreign_state_dict_is_rejected(tmp_path):
    state = Audio2Feature().state_dict()
    state.pop("fc.6.bias")
    torch.save(state, tmp_path / "bad.pkl")
    with pytest.raises(UserInputError, match="does not match"):
        load_audio2feature(tmp_path / "bad.pkl")


@pytest.mark.parametrize("which", ["shipped", "original"])
def test_streaming_matches_offline(sample_data, which):
    ckpt = DEFAULT_CHECKPOINT if which == "shipped" else sample_data / "dh_live" / "checkpoint" / "audio.pkl"
    model = AudioModel(ckpt)
    audio = load_audio(sample_data / "dh_live" / "video_data" / "audio0.wav")
    offline = model.interface_wav(audio)
    n, la = len(offline), model.lookahead_frames
    assert n == int(np.ceil(audio.size / 640)) and la == model.lookahead_steps + 1
    padded = np.zeros((n + la) * 640, np.float32)
    padded[: audio.size] = audio
    model.reset()
    rows = np.stack([model.interface_frame(padded[640 * k: 640 * (k + 1)]) for k in range(n + la)])
    assert np.abs(rows[la:] - offline).max() < 1e-6  # both float64: ~1e-13 in practice
    np.testing.assert_array_equal(rows[0], 0)


def test_shipped_checkpoints_have_cards():
    import json

    for ckpt in (DEFAULT_CHECKPOINT, REPO / "checkpoint" / "lstm" / "lstm_blendshape.pkl"):
        card = json.loads(ckpt.with_suffix(".json").read_text())
        assert card["target"] in ("pixel", "blendshape")
        assert (ckpt.parent / card["basis"]).is_file()
        assert ckpt.with_suffix(".md").is_file() or (ckpt.parent / f"{ckpt.stem}.md").is_file()


def test_interface_frame_rejects_wrong_block():
    model = AudioModel()
    with pytest.raises(UserInputError, match="640"):
        model.interface_frame(np.zeros(320, np.float32))
    with pytest.raises(UserInputError, match="mono"):
        model.interface_wav(np.zeros((2, 6400), np.float32))


@pytest.fixture(scope="module")
def bad_audio(tmp_path_factory, sample_data):
    d = tmp_path_factory.mktemp("bad_audio")
    (d / "empty.wav").write_bytes(b"")
    (d / "noise.wav").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    from talkingface.util.media import ffmpeg_exe, save_wav

    speech = load_audio(sample_data / "speech" / "arctic_a0009.wav")
    save_wav(d / "short.wav", speech[:1600])
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(sample_data / "speech" / "arctic_a0009.wav"),
                    "-ac", "2", "-ar", "8000", str(d / "stereo8k.mp3")], check=True)
    return d, speech.size / 16000


def test_bad_audio_gives_clear_errors_or_converts(bad_audio):
    d, seconds = bad_audio
    model = AudioModel()
    for name in ("empty.wav", "noise.wav"):
        with pytest.raises(UserInputError):
            model.interface_wav(d / name)
    assert model.interface_wav(d / "short.wav").shape == (3, 6)  # 0.1 s = 2.5 frames -> 3 rows
    rows = model.interface_wav(d / "stereo8k.mp3")
    assert abs(len(rows) - seconds * 25) <= 2 and np.isfinite(rows).all()


def test_cli_bad_audio_is_one_line_exit_2(bad_audio, tmp_path):
    d, _ = bad_audio
    proc = subprocess.run([sys.executable, str(REPO / "train_audio" / "test.py"), str(d / "noise.wav"),
                           str(DEFAULT_CHECKPOINT), "--out", str(tmp_path / "x.mp4")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_interface_stream_matches_whole_file():
    """Blockwise inference (memory bounded by one block) gives the whole-file rows, whatever the block size."""
    from talkingface.config.paths import MINI_AUDIO_CHECKPOINT, SAMPLE_SPEECH_ZH
    from talkingface.util.media import iter_audio, load_audio

    model = AudioModel(MINI_AUDIO_CHECKPOINT)
    whole = model.interface_wav(load_audio(SAMPLE_SPEECH_ZH))
    assert len(whole) == int(np.ceil(load_audio(SAMPLE_SPEECH_ZH).size / 640))
    for block in (999, 640, 16000):
        rows = np.concatenate(list(model.interface_stream(iter_audio(SAMPLE_SPEECH_ZH, block=block))))
        assert rows.shape == whole.shape
        np.testing.assert_allclose(rows, whole, atol=1e-9)
