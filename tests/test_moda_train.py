"""Tiny real runs of every MODA stage on real clips: MODA-lite (exact resume), FaCo-Net, the renderer,
the demo and the evaluation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from talkingface.audio_model import AudioModel
from talkingface.config.moda import BASIS_PATH, TEACHER_CHECKPOINT, FaCoTrainConfig, MODAConfig, MODATrainConfig
from talkingface.data.moda_clips import ClipRecord, record_from_speech, record_from_video
from talkingface.data.moda_dataset import prepare
from talkingface.moda_training import (LID_Y, FaCoTrainer, MODATrainer, blink_stat_loss, eye_opening, faco_rows,
                                       motion_stat_loss)
from talkingface.mouth_basis import BlendshapeBasis
from talkingface.util.media import count_frames, load_audio, probe_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLIP = "av/voxceleb2/Input_00002.mp4"  # 126 frames with audio, not held out


@pytest.fixture(scope="module")
def records(sample_data, tmp_path_factory):
    """A real audio-visual record, a silent (MEAD) one, and a speech pseudo-label record."""
    cache = tmp_path_factory.mktemp("moda_cache")
    av = record_from_video(sample_data / CLIP, cache, "vox", CLIP)
    silent = record_from_video(sample_data / "av/mead/M030_front_neutral_level1_001.mp4", cache, "mead")
    speech = record_from_speech(sample_data / "speech/arctic_a0007.wav", AudioModel(TEACHER_CHECKPOINT),
                                BlendshapeBasis.load(BASIS_PATH), "a7")
    return av, silent, speech


def _cfg(**kw):
    model = kw.pop("model", None) or MODAConfig(no_audio_token=True, prob_mode=kw.pop("prob_mode", "moda"))
    return MODATrainConfig(window=24, batch_size=3, max_steps=4, save_every=2, log_every=1, model=model, **kw)


def test_records_round_trip(records, tmp_path):
    av, silent, speech = records
    assert av.has_audio and not silent.has_audio and speech.lip_only
    av.save(tmp_path)
    back = ClipRecord.load(tmp_path / "vox.moda.npz")
    assert np.array_equal(back.dense, av.dense) and back.source == CLIP and back.audio.size == av.audio.size


def test_moda_stage_resume_is_exact(records, tmp_path):
    clips = [prepare(r) for r in records]
    cfg = _cfg(stage="all", kl_weight=0.01, prob_mode="cvae")
    a = MODATrainer(cfg, clips, clips[:1], tmp_path / "a")
    a.run(until=2)
    b = MODATrainer(cfg, clips, clips[:1], tmp_path / "a", resume=True)
    assert b.step == 2
    res = b.run()
    c = MODATrainer(cfg, clips, clips[:1], tmp_path / "c")
    c.run()
    for (k, v1), v2 in zip(b.model.state_dict().items(), c.model.state_dict().values()):
        assert torch.equal(v1, v2), k
    assert res["steps"] == 4 and "mse_eye" in res["val"] and "lip_gap_r" in res["val"]
    assert (tmp_path / "a" / "log").is_dir()


def test_moda_chunked_cvae_free_bits_and_frozen_lip_path(records, tmp_path):
    """The all-heads recipe of docs/MODA.md: chunked cvae latent with free bits, lip path frozen."""
    clips = [prepare(r) for r in records]
    model = MODAConfig(no_audio_token=True, prob_mode="cvae", latent_dim=8, latent_chunk=4, z_to_query=True,
                       vae_pe_fix=True, lip_from_spec_only=True)
    init = MODATrainer(_cfg(stage="lips"), clips, [], tmp_path / "lips")
    init.run()
    init.export(tmp_path / "lips.pth")
    cfg = _cfg(stage="all", kl_weight=0.5, free_bits=0.25, kl_anneal_steps=2, freeze_lip_path=True,
               prior_stat_weight=1.0, model=model)
    t = MODATrainer(cfg, clips, clips[:1], tmp_path / "all", init=tmp_path / "lips.pth")
    frozen = {k: v.clone() for k, v in t.model.state_dict().items() if k.split(".")[0] in ("audio", "subject", "spec")}
    assert any("running_mean" in k for k in frozen)
    head = t.model.head_head.net[0].weight.clone()
    res = t.run()
    assert res["steps"] == 4 and np.isfinite(res["val"]["mse_head"])
    now = t.model.state_dict()
    assert all(torch.equal(now[k], v) for k, v in frozen.items())  # weights and BatchNorm statistics
    assert not torch.equal(t.model.head_head.net[0].weight, head)
    assert t.model.prob.to_mu.out_features == 8  # resized from the lips checkpoint's 128
    parts = t.loss({k: torch.from_numpy(v) for k, v in t.sampler.sample(np.random.default_rng(1), 3).items()}, 4)
    assert "prior_stat" in parts and torch.isfinite(parts["prior_stat"])
    t.cfg.blink_stat_weight = 1.0
    parts = t.loss({k: torch.from_numpy(v) for k, v in t.sampler.sample(np.random.default_rng(1), 3).items()}, 4)
    assert torch.isfinite(parts["blink_stat"]) and parts["blink_stat"].requires_grad


def test_motion_stat_loss_rewards_spread_not_the_mean():
    g = torch.Generator().manual_seed(0)
    tgt = {"eye": torch.randn(2, 40, 6, generator=g), "head": torch.randn(2, 40, 7, generator=g)}
    batch = {**tgt, "valid": torch.ones(2, 40, dtype=torch.bool), "mask_eye": torch.ones(2), "mask_head": torch.ones(2)}
    batch["valid"][1, 30:] = False
    flat = {k: torch.zeros_like(v) for k, v in tgt.items()}
    other = {k: torch.randn(v.shape, generator=g) for k, v in tgt.items()}  # other frames, same statistics
    assert motion_stat_loss(flat, batch) > 1.0
    assert motion_stat_loss(other, batch) < 0.4 * motion_stat_loss(flat, batch)
    assert motion_stat_loss(tgt, batch).item() == pytest.approx(0.0, abs=1e-5)
    batch["mask_head"] = torch.zeros(2)
    assert motion_stat_loss(flat, batch) < motion_stat_loss(flat, {**batch, "mask_head": torch.ones(2)})


def test_moda_lips_stage_learns(records, tmp_path):
    clips = [prepare(r) for r in records]
    cfg = dataclasses.replace(_cfg(stage="lips"), max_steps=30, save_every=30, lr=3e-3)
    t = MODATrainer(cfg, clips[2:], [], tmp_path)  # speech only: overfit one utterance's lips
    batch = t.sampler.sample(np.random.default_rng(0), 3)
    tb = {k: torch.from_numpy(v) for k, v in batch.items()}
    t.model.eval()
    with torch.no_grad():
        before = float(t.loss(tb, 0)["lip"])
    t.run()
    t.model.eval()
    with torch.no_grad():
        after = float(t.loss(tb, 0)["lip"])
    assert after < 0.7 * before


def test_faco_stage(records, tmp_path):
    rows = faco_rows(records[:2])
    assert rows["dense"].shape == (records[0].n_frames + records[1].n_frames, 1434)
    cfg = FaCoTrainConfig(batch_size=16, max_steps=6, save_every=3)
    t = FaCoTrainer(cfg, rows, rows, tmp_path)
    before = t.validate()
    res = t.run()
    assert res["steps"] == 6 and res["val_l1_px"] < before
    t2 = FaCoTrainer(dataclasses.replace(cfg, max_steps=8), rows, rows, tmp_path, resume=True)
    assert t2.step == 6


def test_prep_renderer_demo_and_eval(sample_data, records, tmp_path, repo_root):
    import data_preparation_moda
    import demo_moda
    from train_moda import train_renderer

    person = tmp_path / "person"
    assert data_preparation_moda.main(["--quiet", "--avatar", str(sample_data / CLIP), str(person),
                                       "--cache", str(tmp_path / "cache")]) == 0
    assert (person / "reference.png").is_file() and (person / "subject.npz").is_file()
    assert train_renderer.main([str(person), str(tmp_path / "r"), "--resolution", "32", "--n_downs", "4",
                                "--ngf", "4", "--ndf", "8", "--d_scales", "1", "--max_steps", "2",
                                "--batch_size", "2", "--save_every", "2"]) == 0
    clips = [prepare(r) for r in records]
    m = MODATrainer(_cfg(stage="all"), clips, [], tmp_path / "m")
    m.run()
    m.export(tmp_path / "moda.pth")
    f = FaCoTrainer(FaCoTrainConfig(batch_size=8, max_steps=1, save_every=1), faco_rows(records[:1]),
                    faco_rows(records[:1]), tmp_path / "f")
    f.run()
    f.export(tmp_path / "faco.pth")
    wav = sample_data / "speech/arctic_a0007.wav"
    out = tmp_path / "demo.mp4"
    assert demo_moda.main([str(person), str(wav), str(out), "--moda", str(tmp_path / "moda.pth"), "--faco",
                           str(tmp_path / "faco.pth"), "--renderer", str(tmp_path / "r" / "renderer.pth"),
                           "--debug", "--n_samples", "2"]) == 0
    n = int(np.ceil(load_audio(wav).size / 640))
    assert count_frames(out) == n and probe_video(out).has_audio
    assert (tmp_path / "demo_s1.mp4").is_file()
    from talkingface.eval.moda_eval import evaluate, markdown

    res = evaluate([records[0], records[2]], tmp_path / "moda.pth", tmp_path / "faco.pth", [0, 1])
    assert len(res["clips"]) == 1  # the speech record has no face: skipped
    s = res["summary"]
    assert {"moda-lite", "lstm-basis", "audio-lin", "energy"} <= set(s)
    assert np.isfinite(s["lstm-basis"]["r"]) and s["head_and_seeds"]["diversity_deg"] > 0
    assert "| moda-lite |" in markdown(res)


def _blink_window(t: int, start: int, depth: float) -> torch.Tensor:
    """Standardised eye deltas (t, 180), unit std, whose lids close by ``depth`` px for 4 frames from ``start``."""
    eye = torch.zeros(t, 180)
    upper, lower = LID_Y
    eye[start:start + 4, upper] = depth / 2
    eye[start:start + 4, lower] = -depth / 2
    return eye


def test_blink_stat_loss_asks_for_blinks_not_their_timing():
    std = torch.ones(180)
    target = torch.stack([_blink_window(50, 10, 3.0), _blink_window(50, 30, 2.0)])
    batch = {"eye": target, "valid": torch.ones(2, 50, dtype=torch.bool), "mask_eye": torch.ones(2)}
    batch["valid"][1, 40:] = False
    assert eye_opening(target, std)[0, 10].item() == pytest.approx(-3.0)
    moved = torch.stack([_blink_window(50, 25, 3.0), _blink_window(50, 5, 2.0)])  # same blinks, other frames
    none = torch.zeros_like(target)  # open eyes throughout
    shallow = torch.stack([_blink_window(50, 10, 1.0), _blink_window(50, 30, 0.5)])
    assert blink_stat_loss(moved, batch, std).item() == pytest.approx(0.0, abs=1e-6)
    assert blink_stat_loss(none, batch, std) > blink_stat_loss(shallow, batch, std) > 0.1
    batch["mask_eye"] = torch.tensor([0.0, 1.0])  # only the second window trains the eyes: 4 of 40 frames at 2 px
    assert blink_stat_loss(none, batch, std).item() == pytest.approx(2.0 * 4 / 40)
    batch["mask_eye"] = torch.zeros(2)
    assert blink_stat_loss(none, batch, std).item() == 0.0
