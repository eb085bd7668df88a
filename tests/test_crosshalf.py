"""Cross-half protocol: first half (silent) as the avatar, second half's speech drives it."""

import math

import numpy as np
import pytest

from talkingface.errors import UserInputError
from talkingface.util.media import count_frames, load_audio, probe_video

CLIP = "av_more/KwaiVGI__LivePortrait/d11.mp4"  # 9 s, 512x512, Mandarin (a held-out person)


@pytest.fixture(scope="module")
def clip(sample_data):
    path = sample_data / CLIP
    if not path.is_file():
        pytest.skip("av_more not in the sample data")
    return path


def test_split_halves(clip, tmp_path):
    from talkingface.eval.crosshalf import split_clip

    split = split_clip(clip, tmp_path)
    n_total = math.ceil(load_audio(clip).size / 640)
    assert split.n_first == n_total // 2 and split.n_first + split.n_second == min(n_total, count_frames(clip))
    assert not probe_video(split.avatar).has_audio  # the avatar never carries the test half's sound
    assert count_frames(split.avatar) == split.n_first and count_frames(split.real) == split.n_second
    assert abs(load_audio(split.wav).size / 640 - split.n_second) < 1
    again = split_clip(clip, tmp_path)  # reused, not rewritten
    assert (again.n_first, again.n_second) == (split.n_first, split.n_second)


def test_short_clip_refused(sample_data, tmp_path):
    from talkingface.eval.crosshalf import split_clip

    with pytest.raises(UserInputError, match="8 s"):
        split_clip(sample_data / "av" / "grid" / "sbia1a.mpg", tmp_path)


def test_reference_rows_without_rendering(clip, sample_data, repo_root, tmp_path):
    from talkingface.eval.crosshalf import crosshalf
    from talkingface.mouth_basis import BlendshapeBasis

    res = crosshalf(clip, "static", tmp_path, audio_ours=repo_root / "checkpoint" / "lstm" / "lstm_blendshape.pkl",
                    basis=BlendshapeBasis.load(repo_root / "checkpoint" / "mouth_basis" / "blendshape_basis.npz"),
                    original=sample_data / "dh_live" / "checkpoint" / "audio.pkl")
    rows = {r.method: r for r in res.rows}
    assert set(rows) == {"audio-ours", "audio-original", "energy"} and res.kind == "crosshalf"
    ours = rows["audio-ours"]
    assert ours.n_frames == count_frames(tmp_path / "real_second_half.mp4")
    assert -1 <= ours.r <= 1 and abs(ours.offset) <= 5 and ours.amp > 0
    assert np.isnan(rows["audio-original"].amp)  # another basis: no amplitude in our units
    assert (tmp_path / "real_second_half.track.npz").is_file()  # the real track is cached for the next run
    with np.load(tmp_path / "series.static.npz") as kept:  # the scored series, for later readings
        assert set(kept.files) == {"real", "audio-ours", "audio-original"} and len(kept["real"]) == ours.n_frames


def test_shift_real_takes_out_a_late_picture():
    from talkingface.eval.crosshalf import shift_real, shifted_row

    rng = np.random.default_rng(0)
    sound = np.convolve(rng.standard_normal(200), np.ones(5) / 5, mode="same")  # a mouth that follows the sound
    picture = np.concatenate([np.full(3, sound[0]), sound[:-3]])  # the real picture 3 frames late
    moved = shift_real(picture, 3)
    assert np.allclose(moved[:-3], sound[:-3]) and np.isnan(moved[-3:]).all()
    assert np.allclose(shift_real(moved[:-3], -3)[3:], moved[:-6])  # a negative offset moves it later
    row = shifted_row("mini", sound, picture, 3, with_amplitude=True)
    assert row.method == "mini (real shifted +3)" and row.offset == 0 and row.r > 0.999 and row.n_frames == 197
    assert shifted_row("mini", sound, picture, 0, with_amplitude=True).offset == -3  # raw: generated 3 frames early


def test_sync_shift_reading_of_kept_series(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import crosshalf_sync_shift

    rng = np.random.default_rng(1)
    sound = np.convolve(rng.standard_normal(150), np.ones(5) / 5, mode="same")
    (tmp_path / "work" / "clipA").mkdir(parents=True)
    np.savez(tmp_path / "work" / "clipA" / "series.mini.npz", real=np.r_[np.zeros(2), sound[:-2]],  # picture 2 late
             mini=sound, **{"audio-ours": sound, "audio-original": sound})
    (tmp_path / "sync.tsv").write_text("id\tlocal\tbest_lag\ndm1\tsome__repo/clipA.mp4\t2\n")
    assert crosshalf_sync_shift.main([str(tmp_path / "work"), "--sync", str(tmp_path / "sync.tsv"),
                                      "--out", str(tmp_path / "out.md")]) == 0
    text = (tmp_path / "out.md").read_text()
    assert "| clipA | +2 | -2 / -2 / -2 |" in text  # the raw lags: the generated mouth 2 frames early
    assert "| mini (real shifted) | 1 | 1.000 | 1.000 | 100% | +0 | 1.00 |" in text
