"""MODA networks: parameter counts against the released configurations, masks, shapes, sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from talkingface.config.moda import MODAConfig, RendererConfig
from talkingface.models.faco import FaCoNet, PointDiscriminator, lsgan_loss
from talkingface.models.moda import (MODANet, PeriodicPositionalEncoding, alignment_mask, count_parameters,
                                     future_mask, kl_divergence, moda_fbank, periodic_alibi_mask)
from talkingface.models.moda_renderer import MultiScalePatchGAN, TPERenderer, temporal_encoding

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_parameter_counts_match_the_reference_configurations():
    mel = MODANet(MODAConfig(audio_head="mel"))
    assert count_parameters(mel) == 2_322_665  # the code's mel head (no wav2vec2)
    assert count_parameters(mel.spec) == 497_664
    assert count_parameters(mel.prob) == 862_464
    assert count_parameters(mel.subject) == 217_216
    assert [count_parameters(h) for h in (mel.lip_head, mel.eye_head, mel.head_head, mel.torso_head)] == \
        [194_168, 178_868, 134_407, 146_486]
    assert count_parameters(MODANet(MODAConfig())) == 2_562_665  # default conv front end
    assert count_parameters(FaCoNet()) == 1_900_442
    assert count_parameters(PointDiscriminator()) == 792_705
    assert count_parameters(TPERenderer(RendererConfig(resolution=512, n_downs=8, ngf=64))) == 76_207_296
    assert count_parameters(MultiScalePatchGAN(22, 64, 4, 3)) == 20_945_475


def test_specattn_masks_and_periodic_encoding():
    m = periodic_alibi_mask(70, 25)
    row = m[65]
    assert torch.all(row[41:66] == 0) and torch.all(row[16:41] == -2.0 ** -8) and torch.all(row[:16] == -2.0 ** -7)
    assert torch.isinf(row[66:]).all()
    a = alignment_mask(5)
    assert a.dtype == torch.bool and not a.diagonal().any() and a.sum() == 20
    f = future_mask(4, causal=False)
    assert f[0, 1] == 1.0 and f[1, 0] == 0.0
    assert torch.isinf(future_mask(4, causal=True)[0, 1])
    ppe = PeriodicPositionalEncoding(128, 25, 200, 0.0)
    out = ppe(torch.zeros(1, 60, 128))
    assert torch.allclose(out[0, 0], out[0, 25]) and torch.allclose(out[0, 7], out[0, 57])
    assert not torch.allclose(out[0, 0], out[0, 1])


def _inputs(b=3, t=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 4 * t, 80, generator=g), torch.randn(b, 1434, generator=g)


def test_moda_shapes_padding_and_kl():
    cfg = MODAConfig(prob_mode="cvae", vae_pe_fix=True, vae_causal=True, no_audio_token=True)
    net = MODANet(cfg).train()
    fb, subj = _inputs()
    valid = torch.ones(3, 30, dtype=torch.bool)
    valid[1, 20:] = False
    out = net(fb, subj, valid, torch.tensor([True, False, True]), torch.randn(3, 30, 241))
    assert out["lip"].shape == (3, 30, 120) and out["eye"].shape == (3, 30, 180)
    assert out["head"].shape == (3, 30, 7) and out["torso"].shape == (3, 30, 54)
    assert torch.isfinite(out["lip"]).all() and torch.all(out["lip"][1, 20:] == 0)
    kl = kl_divergence(out["mu"], out["logvar"], valid)
    assert kl.item() >= 0
    assert kl_divergence(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)).item() == 0


def test_seeds_change_motion_and_lip_from_spec_only_keeps_lips():
    fb, subj = _inputs(b=1)
    for spec_only in (False, True):
        torch.manual_seed(1)
        net = MODANet(MODAConfig(lip_from_spec_only=spec_only)).eval()
        with torch.no_grad():
            a = net(fb, subj, generator=torch.Generator().manual_seed(1))
            b = net(fb, subj, generator=torch.Generator().manual_seed(2))
            c = net(fb, subj, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a["head"], c["head"])  # the seed fixes the sample
        assert not torch.allclose(a["head"], b["head"])
        assert torch.equal(a["lip"], b["lip"]) == spec_only


def test_moda_fbank_framing():
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(16000)).astype(np.float32)  # 1 s = 25 frames
    f = moda_fbank(wav, 25)
    assert f.shape == (100, 80) and abs(f.mean()) < 0.1
    assert moda_fbank(wav, 30).shape == (120, 80)  # short audio padded with its last frame


def test_faco_and_renderer_forward():
    g, d = FaCoNet(), PointDiscriminator()
    lip, eye, subj = torch.randn(2, 5, 120), torch.randn(2, 5, 180), torch.randn(2, 1, 1434)
    dense = g(lip, eye, subj)
    assert dense.shape == (2, 5, 1434)
    score = d(lip, eye, dense, subj)
    assert score.shape == (2, 5, 1)
    assert lsgan_loss(torch.ones(2, 5, 1), True).item() == 0
    assert lsgan_loss(torch.tensor([[0.0], [1.0]]), True, all_samples=False).item() == 0
    cfg = RendererConfig(resolution=64, n_downs=5, ngf=8)
    r = TPERenderer(cfg)
    x = r.make_input(torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64), torch.tensor([0.0, 0.5]))
    assert x.shape == (2, 19, 64, 64)
    y = r(x)
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1
    tpe = temporal_encoding(0.5, 4)
    assert tpe.shape == (13, 4, 4) and tpe[0, 0, 0] == 0.5 and abs(tpe[2, 1, 1] - np.cos(0.5)) < 1e-6
    assert TPERenderer(RendererConfig(resolution=64, n_downs=5, ngf=8, tpe=False)).cfg.in_channels == 6


def test_chunked_cvae_latent_reaches_the_output_and_lips_stay_fixed():
    """latent_chunk pools the posterior per chunk; z_to_query makes the sample change eyes/head at O(1)
    from initialisation (the code's memory-only path barely moves them); lips read SpecAttn only."""
    cfg = MODAConfig(prob_mode="cvae", latent_dim=8, latent_chunk=4, z_to_query=True, vae_pe_fix=True,
                     lip_from_spec_only=True, dropout=0.0)
    torch.manual_seed(0)
    net = MODANet(cfg).eval()
    fb, subj = _inputs(b=2, t=30)
    valid = torch.ones(2, 30, dtype=torch.bool)
    valid[1, 10:] = False
    with torch.no_grad():
        post = net(fb, subj, valid, targets=torch.randn(2, 30, 241))
        assert post["mu"].shape == (2, 8, 8)  # ceil(30 / 4) chunks
        assert post["latent_valid"][0].all() and post["latent_valid"][1].tolist() == [True] * 3 + [False] * 5
        z = net.prob.sample_prior(1, 30, torch.Generator().manual_seed(3))
        assert z.shape == (1, 30, 8)
        assert torch.allclose(z[0, 2:6].diff(dim=0), z[0, 2:6].diff(dim=0)[:1].expand(3, 8), atol=1e-6)  # linear
        a = net(fb[:1], subj[:1], latent=z)
        b = net(fb[:1], subj[:1], latent=net.prob.sample_prior(1, 30, torch.Generator().manual_seed(4)))
        c = net(fb[:1], subj[:1], generator=torch.Generator().manual_seed(5))  # no latent: drawn per call
    assert torch.equal(a["lip"], b["lip"]) and torch.equal(a["lip"], c["lip"])
    assert (a["head"] - b["head"]).abs().mean() > 0.05 * a["head"].abs().mean()
    old = MODANet(MODAConfig(prob_mode="cvae")).eval()
    with torch.no_grad():
        d1 = old(fb[:1], subj[:1], generator=torch.Generator().manual_seed(1))["head"]
        d2 = old(fb[:1], subj[:1], generator=torch.Generator().manual_seed(2))["head"]
    assert (a["head"] - b["head"]).abs().mean() > 5 * (d1 - d2).abs().mean()


def test_kl_free_bits():
    mu, logvar = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert kl_divergence(mu, logvar).item() == 0
    assert kl_divergence(mu, logvar, free_bits=0.5).item() == pytest.approx(0.5)
    mu = torch.zeros(2, 3, 4, requires_grad=True)
    kl_divergence(mu + 0.1, logvar, free_bits=0.5).backward()
    assert torch.all(mu.grad == 0)  # below the free bits: no pull towards the prior
    big = torch.full((2, 3, 4), 2.0)
    assert kl_divergence(big, logvar, free_bits=0.5).item() == pytest.approx(2.0)  # 0.5 * mu^2
    valid = torch.tensor([[True, False, False], [True, False, False]])
    big[:, 1:] = 100.0
    assert kl_divergence(big, logvar, valid).item() == pytest.approx(2.0)
