"""DINet_five_Ref, AdaAT, Discriminator and VGG19: layouts of the original, strict loading, maths."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from talkingface.errors import UserInputError
from talkingface.gan_training import training_checkpoint
from talkingface.models.DINet import AdaAT, DINet_five_Ref, load_dinet_state_dict
from talkingface.models.common.Discriminator import Discriminator, lsgan_loss
from talkingface.models.common.VGG19 import PerceptualLoss, Vgg19, ssim


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The original's DINet_five_Ref(6, 30) layout (docs/CHECKPOINTS.md §3), written as blocks:
# (prefix, kind, in, out, kernel). "cbn" = conv + BatchNorm block, "res" = pre-activation ResBlock.
_ORIGINAL_BLOCKS = [
    ("source_in_conv.0", "cbn", 6, 32, 7), ("source_in_conv.1", "cbn", 32, 64, 3),
    ("source_in_conv.2", "cbn", 64, 128, 3),
    ("ref_in_conv.0", "cbn", 30, 64, 7), ("ref_in_conv.1", "cbn", 64, 128, 3),
    ("ref_in_conv.2", "cbn", 128, 256, 3),
    ("trans_conv.0", "cbn", 384, 128, 3), ("trans_conv.1", "cbn", 128, 128, 7),
    ("trans_conv.2", "cbn", 128, 128, 3), ("trans_conv.3", "cbn", 128, 128, 7),
    ("trans_conv.4", "cbn", 128, 128, 3), ("trans_conv.5", "cbn", 128, 128, 3),
    ("trans_conv.6", "cbn", 128, 128, 3), ("trans_conv.7", "cbn", 128, 128, 3),
    ("trans_conv.8", "cbn", 128, 128, 3),
    ("appearance_conv_list.0.0", "res", 256, 256, 3), ("appearance_conv_list.0.1", "res", 256, 256, 3),
    ("appearance_conv_list.1.0", "res", 256, 256, 3), ("appearance_conv_list.1.1", "res", 256, 256, 3),
    ("out_conv.0", "cbn", 384, 128, 3), ("out_conv.1", "cbn", 128, 128, 3),
    ("out_conv.2", "res", 128, 128, 3), ("out_conv.3", "cbn", 128, 128, 3),
]


def _bn(prefix, ch):
    return {f"{prefix}.weight": [ch], f"{prefix}.bias": [ch], f"{prefix}.running_mean": [ch],
            f"{prefix}.running_var": [ch], f"{prefix}.num_batches_tracked": []}


def original_dinet_layout() -> dict:
    """key -> shape of the original's plain state dict (206 keys)."""
    shapes = {}
    for prefix, kind, cin, cout, k in _ORIGINAL_BLOCKS:
        if kind == "cbn":
            shapes[f"{prefix}.conv.weight"] = [cout, cin, k, k]
            shapes[f"{prefix}.conv.bias"] = [cout]
            shapes.update(_bn(f"{prefix}.norm", cout))
        else:
            for n in (1, 2):
                shapes[f"{prefix}.conv{n}.weight"] = [cout, cin if n == 1 else cout, k, k]
                shapes[f"{prefix}.conv{n}.bias"] = [cout]
            shapes.update(_bn(f"{prefix}.norm1", cin))
            shapes.update(_bn(f"{prefix}.norm2", cout))
    for name, out in (("commn_linear", 128), ("scale", 256), ("rotation", 256), ("translation", 512)):
        shapes[f"adaAT.{name}.0.weight"] = [out, 128]
        shapes[f"adaAT.{name}.0.bias"] = [out]
    shapes["out_conv.4.weight"] = [3, 128, 3, 3]
    shapes["out_conv.4.bias"] = [3]
    return shapes


def fake_original_state_dict(seed: int = 0) -> dict:
    """A state dict with the original's keys, shapes and dtypes, filled with random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in original_dinet_layout().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(12345, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def test_original_layout_and_parameter_count():
    model = DINet_five_Ref(6, 30)
    layout = original_dinet_layout()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert len(layout) == 206
    assert ours == layout
    assert sum(p.numel() for p in model.parameters()) == 9_413_411
    enc = sum(p.numel() for p in model.source_in_conv.parameters())
    ref = sum(p.numel() for m in (model.ref_in_conv, model.appearance_conv_list[0]) for p in m.parameters())
    assert (enc, ref) == (102_240, 2_826_432)


def test_layout_matches_checkpoint_keys_doc():
    doc = Path(__file__).resolve().parents[2] / "shared" / "docs" / "checkpoint_keys.md"
    if not doc.is_file():
        pytest.skip("checkpoint_keys.md not available")
    text = doc.read_text(encoding="utf-8")
    section = text.split("### DINet_five_Ref(6, 30)")[1].split("## 4.")[0]
    rows = re.findall(r"^\| \d+ \| `([^`]+)` \| (\[[^\]]*\])", section, flags=re.M)
    documented = {k: eval(s) for k, s in rows}  # noqa: S307 - shapes like [32, 6, 7, 7]
    assert documented == original_dinet_layout()


def test_strict_load_plain_and_training_layouts(tmp_path):
    state = fake_original_state_dict()
    plain = tmp_path / "render.pth"
    torch.save(state, plain)
    model = DINet_five_Ref(6, 30)
    load_dinet_state_dict(model, plain)
    assert torch.equal(model.trans_conv[3].conv.weight, state["trans_conv.3.conv.weight"])
    assert int(model.out_conv[0].norm.num_batches_tracked) == 12345

    net_d = Discriminator(3, 64, 4, 256)
    ckpt = training_checkpoint(model, net_d, torch.optim.Adam(model.parameters()),
                               torch.optim.Adam(net_d.parameters()), epoch=3)
    train_path = tmp_path / "epoch_3.pth"
    torch.save(ckpt, train_path)
    other = DINet_five_Ref(6, 30)
    load_dinet_state_dict(other, train_path)
    assert torch.equal(other.adaAT.translation[0].bias, state["adaAT.translation.0.bias"])

    broken = dict(state)
    broken.pop("out_conv.4.bias")
    with pytest.raises(UserInputError):
        load_dinet_state_dict(DINet_five_Ref(6, 30), broken)
    with pytest.raises(UserInputError):
        load_dinet_state_dict(DINet_five_Ref(6, 30), tmp_path / "missing.pth")


def test_cached_reference_interface_equals_forward():
    torch.manual_seed(0)
    model = DINet_five_Ref(6, 30).eval()
    src, prompt, ref = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.rand(1, 30, 64, 64)
    with torch.no_grad():
        full = model(src, prompt, ref.expand(2, -1, -1, -1))
        model.ref_input(ref)
        cached = model.interface(src, prompt)
    assert full.shape == (2, 3, 64, 64)
    assert 0.0 <= float(full.min()) and float(full.max()) <= 1.0
    torch.testing.assert_close(full, cached, rtol=1e-4, atol=1e-5)


def test_adaat_identity_reproduces_channel_mixing_quirk():
    """Zero parameters give scale 1, angle 0, shift 0: the warp should be the identity, but the
    original's grid convention samples channel c at depth c*d/(d-1) - 1/2 (docs/REFERENCE.md §2.1)."""
    d, h, w = 5, 9, 9
    ada = AdaAT(4, d)
    for p in ada.parameters():
        torch.nn.init.zeros_(p)
    values = torch.arange(1, d + 1, dtype=torch.float32)
    feat = values.view(1, d, 1, 1).expand(1, d, h, w).contiguous()
    with torch.no_grad():
        out = ada(feat, torch.zeros(1, 4))
    for c in range(d):
        pos = c * d / (d - 1) - 0.5
        lo = int(torch.floor(torch.tensor(pos)))
        frac = pos - lo
        at = lambda i: float(values[i]) if 0 <= i < d else 0.0  # noqa: E731
        expected = (1 - frac) * at(lo) + frac * at(lo + 1)
        # Centre pixel: x = 0 maps to the exact centre, so only depth mixing applies.
        assert float(out[0, c, h // 2, w // 2]) == pytest.approx(expected, abs=1e-5)
    # Spatial half-pixel offset: the corner pixel blends with zero padding.
    assert float(out[0, d // 2, 0, 0]) < float(out[0, d // 2, h // 2, w // 2])


def test_adaat_rotation_direction():
    """A quarter-turn code uses the rotation matrix [[cos, -sin], [sin, cos]]: output pixel (x, y)
    samples the input at (-y, x), so a dot at input (x=+1, y=0) lands at output (x=0, y=-1)."""
    d, h, w = 3, 7, 7
    ada = AdaAT(2, d)
    for p in ada.parameters():
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        ada.rotation[0].bias.fill_(float(torch.atanh(torch.tensor(0.5))))  # angle = 0.5 * 3.14159
        feat = torch.zeros(1, d, h, w)
        feat[0, :, 3, 6] = 1.0  # centre row, right-most column: (x=+1, y=0)
        out = ada(feat, torch.zeros(1, 2))
    mid = out[0, 1]
    assert float(mid[0, 3]) > 0.1  # top row, centre column: (x=0, y=-1)
    assert float(mid[6, 3]) < 1e-3  # the opposite turn would put it at the bottom


def test_discriminator_and_vgg_layouts():
    d4 = Discriminator(3, 64, 4, 256)
    assert sum(p.numel() for p in d4.parameters()) == 2_628_737
    feats, logits = d4(torch.rand(1, 3, 256, 256))
    assert logits.shape == (1, 1, 26, 26) and [f.shape[1] for f in feats] == [128, 256, 256, 256]
    assert sum(p.numel() for p in Discriminator(3, 64, 3, 256).parameters()) == 1_579_905
    assert float(lsgan_loss(torch.ones(2, 1, 3, 3), real=True)) == 0.0
    vgg = Vgg19()
    assert len(vgg.state_dict()) == 28 and sum(p.numel() for p in vgg.parameters()) == 12_944_966
    outs = vgg(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8), (512, 4, 4)]


def test_vgg_loads_torchvision_layout_file(tmp_path, monkeypatch):
    src = Vgg19()
    torchvision_like = {}
    for key, value in src.state_dict().items():
        if key.startswith("slice"):
            torchvision_like["features." + key.split(".", 1)[1]] = torch.randn_like(value)
    torchvision_like["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(torchvision_like, path)
    monkeypatch.setenv("TALKINGFACE_VGG19_WEIGHTS", str(path))
    loss = PerceptualLoss(channel_order="bgr")
    assert loss.mode == "vgg19"
    assert torch.equal(getattr(loss.vgg.slice4, "19").weight, torchvision_like["features.19.weight"])
    x = torch.rand(1, 3, 32, 32)
    assert float(loss(x, x)) == 0.0
    assert float(loss(x, torch.rand(1, 3, 32, 32))) > 0.0


def test_fallback_perceptual_loss(monkeypatch, tmp_path):
    monkeypatch.delenv("TALKINGFACE_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    loss = PerceptualLoss()
    assert loss.mode == "l1_ssim"
    x = torch.rand(2, 3, 64, 64)
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    far = float(loss(x, y))
    near = float(loss(x, (x + 0.02 * torch.randn_like(x)).clamp(0, 1)))
    assert far > near > 0.0
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(UserInputError):
        PerceptualLoss(weights=tmp_path / "nope.pth")
