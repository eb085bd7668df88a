"""Media I/O on real files: fps resampling, audio decoding, atomic writing, clear errors."""
import subprocess
import sys

import numpy as np
import pytest

from talkingface.errors import MediaError, UserInputError
from talkingface.util import media


def test_read_grid_clip_at_25fps(sample_data):
    frames = media.read_video(sample_data / "av/grid/bbaf2n.mpg")
    assert len(frames) == 75
    assert frames[0].shape == (288, 360, 3) and frames[0].dtype == np.uint8


def test_30fps_input_resampled_to_25(sample_data):
    path = sample_data / "dh_live/video_data/000001/video.mp4"
    info = media.probe_video(path)
    assert info.source_fps == pytest.approx(30.0)
    n = sum(1 for _ in media.iter_video_frames(path))
    assert abs(n - 105) <= 1


def test_load_audio_any_rate_is_16k_mono_float(sample_data):
    audio48 = media.load_audio(sample_data / "speech/Front_Center.wav")  # 48 kHz source
    assert audio48.dtype == np.float32 and audio48.ndim == 1
    assert abs(audio48.size / 16000 - 1.43) < 0.05
    # int16 16 kHz input maps to x / 32768 exactly
    import soundfile as sf

    path = sample_data / "speech/arctic_a0007.wav"
    ref, sr = sf.read(str(path), dtype="int16")
    assert sr == 16000
    got = media.load_audio(path)
    np.testing.assert_array_equal(got, ref.astype(np.float32) / 32768.0)


def test_write_video_with_audio_roundtrip(sample_data, tmp_path):
    frames = media.read_video(sample_data / "av/grid/bbaf2n.mpg", max_frames=20)
    out = tmp_path / "out.mp4"
    media.write_video(out, frames, audio=sample_data / "speech/arctic_a0007.wav")
    info = media.probe_video(out)
    assert info.has_audio and (info.width, info.height) == (360, 288)
    assert media.count_frames(out) == 20
    assert not list(tmp_path.glob(".tmp_*"))


def test_odd_size_frames_are_padded(tmp_path):
    frames = [np.full((31, 45, 3), i * 10, np.uint8) for i in range(5)]
    out = media.write_video(tmp_path / "odd.mp4", frames)
    info = media.probe_video(out)
    assert (info.width, info.height) == (46, 32)


def test_errors_are_clear(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        media.load_audio(tmp_path / "missing.wav")
    bogus = tmp_path / "fake.mp4"
    bogus.write_text("this is not a video")
    with pytest.raises(MediaError):
        media.probe_video(bogus)
    with pytest.raises(MediaError):
        media.load_audio(bogus)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        media.load_audio(empty)


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "never.mp4"
    with pytest.raises(RuntimeError):
        with media.VideoWriter(out) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))
            raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())
