"""Lip-sync evaluation (talkingface.eval) on a real GRID clip: metrics, baselines, CLI, self-recon.

Face-mesh tracks are cached per file inside the process, so the real clip is tracked once for the
whole module.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from talkingface.eval.__main__ import main as eval_main
from talkingface.eval.baselines import audio_model_row, energy_baseline, frame_log_energy, neutral_frame_index
from talkingface.eval.metrics import Reference, best_offset, lagged_r, pearson, psnr, ssim
from talkingface.eval.report import ClipResult, load_results, summary_markdown
from talkingface.eval.selfrecon import PipelineOptions, selfrecon
from talkingface.eval.tracking import track_video
from talkingface.util.media import load_audio, read_video, write_video

CLIP = ("av", "grid", "bbaf2n.mpg")


@pytest.fixture(scope="module")
def clip(sample_data):
    return sample_data.joinpath(*CLIP)


@pytest.fixture(scope="module")
def ref(clip):
    return Reference.from_track(track_video(clip, progress=False))


@pytest.fixture(scope="module")
def shifted(clip, tmp_path_factory):
    """The clip delayed by 3 frames (first frame held), same frame count, re-encoded h264."""
    frames = read_video(clip)
    out = tmp_path_factory.mktemp("eval") / "shift3.mp4"
    return write_video(out, [frames[0]] * 3 + frames[:-3])


def _row(capsys, argv):
    assert eval_main(argv) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]


def test_correlation_and_offset_on_real_opening(ref):
    gt = ref.opening
    assert np.isfinite(gt).all() and gt.max() > 0.08  # GRID speech opens the mouth
    assert pearson(gt, gt) == pytest.approx(1.0)
    delayed = np.concatenate([np.full(4, gt[0]), gt[:-4]])
    lag, r = best_offset(delayed, gt)
    assert lag == 4 and r > 0.95
    assert best_offset(gt[4:], gt[:-4])[0] == -4
    assert lagged_r(gt, gt, 0) == pytest.approx(1.0)
    assert math.isnan(pearson(np.ones(10), gt[:10]))  # flat series: undefined, not 0


def test_image_metrics(clip):
    f = read_video(clip, max_frames=2)
    assert psnr(f[0], f[0]) == 100.0 and ssim(f[0], f[0]) == pytest.approx(1.0)
    noisy = np.clip(f[0].astype(int) + np.random.default_rng(0).integers(-20, 21, f[0].shape), 0, 255).astype(np.uint8)
    assert 20 < psnr(noisy, f[0]) < 35 and 0.2 < ssim(noisy, f[0]) < 0.95


def test_compare_self_gives_perfect_scores(clip, capsys, tmp_path):
    out = tmp_path / "self.json"
    rows = _row(capsys, ["compare", "--pred", str(clip), "--gt", str(clip), "--out", str(out)])
    assert len(rows) == 1
    _, method, frames, r, offset, r_off, amp, lmd, p, s, fails = rows[0]
    assert (method, frames, r, offset, r_off, amp, lmd, fails) == ("model", "75", "1.000", "+0", "1.000", "1.00",
                                                                   "0.00", "0/0")
    assert (p, s) == ("100.00", "1.000")
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["r"] == pytest.approx(1.0) and saved["rows"][0]["lmd"] == 0.0
    assert out.with_suffix(".md").read_text().startswith("| clip |")


def test_compare_shifted_clip_finds_offset(clip, shifted, capsys):
    rows = _row(capsys, ["compare", "--pred", str(shifted), "--gt", str(clip), "--baselines"])
    by_method = {r[1]: r for r in rows}
    assert set(by_method) == {"model", "static", "energy"}
    offset = int(by_method["model"][4])
    assert abs(offset - 3) <= 1
    assert float(by_method["model"][5]) > 0.9  # r at the best lag: the same motion, only late
    assert float(by_method["model"][3]) < float(by_method["model"][5])


def test_baselines_are_weak(clip, ref):
    k = neutral_frame_index(ref)
    assert ref.opening[k] == np.nanmin(ref.opening)
    audio = load_audio(clip)
    energy = frame_log_energy(audio, ref.track.n_frames)
    assert energy.shape == (75,) and energy.max() - energy.min() > 3  # speech vs silence, in log power
    row = energy_baseline(ref, audio)
    assert 0.0 < row.r < 0.9 and row.lmd > 0.5 and math.isnan(row.psnr)


def test_audio_model_readout_follows_the_mouth(clip, ref, sample_data):
    """The original's published audio model (read from the sample data): its coefficients track the
    real mouth far better than log energy once the lag is allowed (docs/ARCHITECTURE.md §4 reports r ~0.7)."""
    ckpt = sample_data / "dh_live" / "checkpoint" / "audio.pkl"
    audio = load_audio(clip)
    row = audio_model_row(ref, audio, ckpt)
    assert row.method == "audio-lin" and row.n_frames == 75
    assert row.r_offset > 0.5 and abs(row.offset) <= 5 and math.isnan(row.amp)
    assert row.r_offset > energy_baseline(ref, audio).r_offset


def test_selfrecon_static_pipeline_and_summary(clip, tmp_path):
    res = selfrecon(clip, "static", workdir=tmp_path / "work", options=PipelineOptions(progress=False))
    methods = [r.method for r in res.rows]
    assert methods == ["static", "energy"]
    static = res.rows[0]
    assert static.n_frames == 75 and static.fail_pred == 0
    assert static.amp < 0.2 and static.lmd > 1.0  # a closed mouth does not follow speech
    assert 20 < static.psnr < 60 and 0.5 < static.ssim < 1.0
    res.save(tmp_path / "out" / "a.json")
    ClipResult(clip="b.mpg", kind="selfrecon", gt="b", rows=res.rows).save(tmp_path / "out" / "b.json")
    loaded = load_results(tmp_path / "out")
    assert [c.clip for c in loaded] == ["b.mpg", "bbaf2n.mpg"]
    table = summary_markdown(loaded)
    assert "| static | 2 | 150 |" in table


@pytest.fixture(scope="module")
def short_clip(clip, tmp_path_factory):
    """The first second (25 frames) of the real clip with its own audio, for pipeline runs."""
    from talkingface.util.media import SAMPLES_PER_FRAME, save_wav

    folder = tmp_path_factory.mktemp("short")
    wav = save_wav(folder / "a.wav", load_audio(clip)[:25 * SAMPLES_PER_FRAME])
    return write_video(folder / "bbaf2n_1s.mp4", read_video(clip, max_frames=25), audio=wav)


def test_selfrecon_mini_pipeline_with_shipped_checkpoints(short_clip, tmp_path):
    """The mini product end to end on a held-out clip; runs when the shipped checkpoints exist."""
    from talkingface.audio_loader import find_audio_checkpoint
    from talkingface.mini_pack import DEFAULT_CHECKPOINT
    from talkingface.errors import UserInputError

    try:
        find_audio_checkpoint("blendshape")
    except UserInputError:
        pytest.skip("no shipped blendshape audio model under checkpoint/")
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip(f"no shipped DINet_mini checkpoint at {DEFAULT_CHECKPOINT}")
    res = selfrecon(short_clip, "mini", workdir=tmp_path, options=PipelineOptions(progress=False))
    assert [r.method for r in res.rows][:3] == ["mini", "static", "energy"]
    mini = res.rows[0]
    assert mini.n_frames >= 24 and mini.fail_pred == 0
    assert mini.amp > 0.1 and math.isfinite(mini.lmd) and math.isfinite(mini.psnr)  # the mouth moves
    assert (tmp_path / "mini" / "mini.mp4").is_file()


def test_heldout_clips_exist_and_have_speech(sample_data):
    from talkingface.eval.heldout import HELDOUT_CLIPS, heldout_paths
    from talkingface.util.media import probe_video

    paths = heldout_paths(sample_data)
    assert len(paths) == len(HELDOUT_CLIPS) == len(set(HELDOUT_CLIPS))
    assert all(probe_video(p).has_audio for p in paths)


def test_cli_bad_input_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "talkingface.eval", "compare", "--pred", str(tmp_path / "no.mp4"),
                           "--gt", str(tmp_path / "no.mp4")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "not found" in proc.stderr


def test_shipped_models_never_trained_on_heldout_clips(repo_root):
    """The rule of talkingface/eval/heldout.py: no clip a shipped model trained or validated on is held out
    (read from the model cards' sidecars, which list every file)."""
    import json

    from talkingface.eval.heldout import never_train_on

    held = never_train_on()
    ck = repo_root / "checkpoint"
    audio = json.loads((ck / "lstm" / "lstm_blendshape.json").read_text())["data"]
    used = {"audio model": [c["path"] for c in audio["real_train"] + audio["real_val"]]}
    mini = json.loads((ck / "DINet_mini" / "epoch_40.json").read_text())
    used["DINet_mini"] = mini["train_files"] + mini["val_files"]
    for name in ("moda_lite", "faco"):
        card = json.loads((ck / "moda" / f"{name}.json").read_text())
        used[name] = card["train_records"] + card["val_records"]
    for model, files in used.items():
        assert files, model
        assert not held & set(files), f"{model} trained on held-out clips: {sorted(held & set(files))}"


def test_heldout_av_more_people_follow_their_rule(sample_data):
    """HELDOUT_AV_MORE: clips of >= 8 s with speech whose own picture/sound offset (av_more/SYNC_CHECK.tsv,
    best_lag) is within +-1 frame, one per person; the short language clips are in sync too."""
    from talkingface.eval.crosshalf import MIN_SECONDS
    from talkingface.eval.heldout import HELDOUT_AV_MORE, HELDOUT_SHORT_AV_MORE, heldout_paths, sync_check_lags
    from talkingface.util.media import probe_video

    lag = sync_check_lags(sample_data / "av_more" / "SYNC_CHECK.tsv")
    assert len(HELDOUT_AV_MORE) >= 10 and len(set(HELDOUT_AV_MORE)) == len(HELDOUT_AV_MORE)
    assert len(heldout_paths(sample_data, HELDOUT_AV_MORE)) == len(HELDOUT_AV_MORE)
    for rel in HELDOUT_AV_MORE + HELDOUT_SHORT_AV_MORE:
        assert abs(lag[rel]) <= 1, rel
    for path in heldout_paths(sample_data, HELDOUT_AV_MORE):
        info = probe_video(path)
        assert info.has_audio and info.duration >= MIN_SECONDS, path
