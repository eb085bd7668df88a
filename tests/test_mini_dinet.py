"""DINet_mini: the original's checkpoint layout loads strictly; AdaAT keeps the original's sampling
convention at any batch size; the pipeline's warp and paste behave as documented."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkingface.models.DINet import AdaAT
from talkingface.models.DINet_mini import (DINet_mini, DINet_mini_pipeline, INPUT_HEIGHT, INPUT_WIDTH,
                                           MODEL_SIZE, PAD_X, PAD_Y, load_dinet_mini_state)

# The original's epoch_40.pth "net_g" layout (docs/CHECKPOINTS.md §4), in state-dict order:
# (module prefix, kind, conv out, conv in). "cbn" = conv 3x3 + BatchNorm, "res" = pre-activation
# ResBlock (conv1, conv2, norm1, norm2), "lin" = Linear (out, in), "conv" = plain conv 3x3.
ORIGINAL_LAYOUT = [
    ("source_in_conv.0", "cbn", 12, 3), ("source_in_conv.1", "cbn", 12, 12), ("source_in_conv.2", "cbn", 20, 12),
    ("ref_in_conv.0", "cbn", 16, 12), ("ref_in_conv.1", "cbn", 16, 16), ("ref_in_conv.2", "cbn", 16, 16),
    ("ref_in_conv.3", "cbn", 20, 16),
    ("trans_conv.0", "cbn", 20, 40), ("trans_conv.1", "cbn", 20, 20),
    ("appearance_conv.0", "res", 20, 20),
    ("adaAT.commn_linear.0", "lin", 20, 20), ("adaAT.scale.0", "lin", 20, 20),
    ("adaAT.rotation.0", "lin", 20, 20), ("adaAT.translation.0", "lin", 40, 20),
    ("out_conv.0", "cbn", 20, 40), ("out_conv.1", "cbn", 20, 20), ("out_conv.2", "cbn", 16, 20),
    ("out_conv.3", "cbn", 16, 16), ("out_conv.4", "conv", 3, 16),
]


def _bn(prefix, c):
    return [(f"{prefix}.weight", [c]), (f"{prefix}.bias", [c]), (f"{prefix}.running_mean", [c]),
            (f"{prefix}.running_var", [c]), (f"{prefix}.num_batches_tracked", [])]


def original_keys_and_shapes():
    out = []
    for prefix, kind, co, ci in ORIGINAL_LAYOUT:
        if kind == "cbn":
            out += [(f"{prefix}.conv.weight", [co, ci, 3, 3]), (f"{prefix}.conv.bias", [co])] + _bn(f"{prefix}.norm", co)
        elif kind == "res":
            out += [(f"{prefix}.conv1.weight", [co, ci, 3, 3]), (f"{prefix}.conv1.bias", [co]),
                    (f"{prefix}.conv2.weight", [co, co, 3, 3]), (f"{prefix}.conv2.bias", [co])]
            out += _bn(f"{prefix}.norm1", co) + _bn(f"{prefix}.norm2", co)
        elif kind == "lin":
            out += [(f"{prefix}.weight", [co, ci]), (f"{prefix}.bias", [co])]
        else:
            out += [(f"{prefix}.weight", [co, ci, 3, 3]), (f"{prefix}.bias", [co])]
    return out


def test_state_dict_matches_original_layout_and_loads_strictly(tmp_path):
    layout = original_keys_and_shapes()
    assert len(layout) == 115
    model = DINet_mini(3, 12)
    ours = model.state_dict()
    assert [(k, list(v.shape)) for k, v in ours.items()] == layout
    assert sum(p.numel() for p in model.parameters()) == 50307
    assert sum(p.numel() for p in model.ref_in_conv.parameters()) == 9420

    # A file in the original's training layout: {"state_dict": {"net_g", "net_d"}, "optimizer": ...}.
    gen = torch.Generator().manual_seed(0)
    net_g = {k: (torch.tensor(7, dtype=torch.int64) if k.endswith("num_batches_tracked")
                 else torch.randn(shape, generator=gen)) for k, shape in layout}
    path = tmp_path / "epoch_40.pth"
    torch.save({"epoch": 40, "state_dict": {"net_g": net_g, "net_d": {}}, "optimizer": {}}, path)
    fresh = DINet_mini(3, 12)
    fresh.load_state_dict(load_dinet_mini_state(path), strict=True)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, net_g[k]), k

    pipe = DINet_mini_pipeline(3, 12)
    assert list(pipe.state_dict()) == [f"infer_model.{k}" for k, _ in layout]
    # a pipeline-layout file (prefixed keys) reads back too
    torch.save(pipe.state_dict(), tmp_path / "pipe.pth")
    DINet_mini(3, 12).load_state_dict(load_dinet_mini_state(tmp_path / "pipe.pth"), strict=True)


def _adaat_reference(adaat: AdaAT, feature, para):
    """Independent formulation of the original's AdaAT maths: explicit 2x2 rotation matrices,
    a (D,H,W) mesh built with v = 2i/(n-1) - 1, grid_sample with its default align_corners=False."""
    b, d, h, w = feature.shape
    code = adaat.commn_linear(para)
    scale = adaat.scale(code) * 2
    angle = adaat.rotation(code) * 3.14159  # the original's literal
    rot = torch.stack([torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], -1).view(b, d, 2, 2)
    trans = adaat.translation(code).view(b, d, 2)
    lin = lambda n: 2 * (torch.arange(n, dtype=torch.float32) / (n - 1)) - 1  # noqa: E731
    zz, yy, xx = torch.meshgrid(lin(d), lin(h), lin(w), indexing="ij")
    xy = torch.stack([xx, yy], -1)  # D,H,W,2
    out = torch.einsum("bdij,dhwj->bdhwi", rot, xy) * scale[:, :, None, None, None] + trans[:, :, None, None, :]
    grid = torch.cat([out, zz.expand(b, d, h, w).unsqueeze(-1)], -1)
    return F.grid_sample(feature.unsqueeze(1), grid, align_corners=False).squeeze(1)


def test_adaat_matches_original_convention_any_batch():
    torch.manual_seed(1)
    adaat = AdaAT(20, 20)
    feat = torch.randn(3, 20, 18, 18)
    para = torch.randn(3, 20)
    ours = adaat(feat, para)
    ref = _adaat_reference(adaat, feat, para)
    assert ours.shape == (3, 20, 18, 18)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # the convention's signature: identity parameters still blend neighbouring channels
    # (channel c is sampled at depth c*d/(d-1) - 1/2), so AdaAT is not the identity
    assert not torch.allclose(ours, feat, atol=1e-3)


def test_batched_forward_equals_per_sample_forward():
    torch.manual_seed(2)
    model = DINet_mini(3, 12).eval()
    ref = torch.rand(4, 12, 72, 72)
    src = torch.rand(4, 3, 72, 72)
    with torch.no_grad():
        batched = model(ref, src)
        single = torch.cat([model(ref[i:i + 1], src[i:i + 1]) for i in range(4)])
        assert batched.shape == (4, 3, 72, 72)
        torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
        # one cached reference broadcast over a batch of frames (the inference path)
        model.ref_input(ref[:1])
        shared = model.interface(src)
        torch.testing.assert_close(shared[2:3], model(ref[:1], src[2:3]), rtol=1e-4, atol=1e-5)
    assert float(batched.min()) >= 0.0 and float(batched.max()) <= 1.0


def test_pipeline_zero_field_is_identity_and_shift_moves_pixels():
    torch.manual_seed(3)
    face = np.ones((MODEL_SIZE, MODEL_SIZE), np.float32)
    pipe = DINet_mini_pipeline(3, 12, face_fusion_mask=face).eval()
    src = torch.rand(2, 4, MODEL_SIZE, MODEL_SIZE)
    gl = torch.full((2, 4, MODEL_SIZE, MODEL_SIZE), 0.5)  # clear colour: no warp, no mouth
    with torch.no_grad():
        out = pipe.interface(src, gl, use_network=False)
        torch.testing.assert_close(out, src, rtol=0, atol=2e-5)
        # a displacement of +4 px in x (NDC 8/128): pixel p takes source(p - 4)
        gl_shift = gl.clone()
        gl_shift[:, 0] = 0.5 + (8.0 / MODEL_SIZE) / 2
        out = pipe.interface(src, gl_shift, use_network=False)
        torch.testing.assert_close(out[:, :3, :, 10:120], src[:, :3, :, 6:116], rtol=0, atol=2e-5)
        # the network only changes the central 72x72 window; alpha is the source's
        pipe.ref_input(torch.rand(1, 12, INPUT_HEIGHT, INPUT_WIDTH))
        gl_mouth = gl.clone()
        gl_mouth[:, :3, 60:70, 50:80] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # upper-lip label
        full = pipe.interface(src, gl_mouth)
        assert full.shape == (2, 4, MODEL_SIZE, MODEL_SIZE)
        outside = torch.ones(MODEL_SIZE, MODEL_SIZE, dtype=torch.bool)
        outside[PAD_Y:PAD_Y + INPUT_HEIGHT, PAD_X:PAD_X + INPUT_WIDTH] = False
        torch.testing.assert_close(full[:, :3, outside], src[:, :3, outside], rtol=0, atol=2e-5)
        torch.testing.assert_close(full[:, 3], src[:, 3])
        net_in = pipe.network_input(pipe.warp(src, gl_mouth), gl_mouth)
        assert torch.allclose(net_in[:, 0, 60 - PAD_Y, 50 - PAD_X], torch.ones(2))


def test_fused_copy_matches_eval_model():
    torch.manual_seed(4)
    model = DINet_mini(3, 12)
    with torch.no_grad():  # non-trivial BN statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    model.eval()
    ref, src = torch.rand(2, 12, 72, 72), torch.rand(2, 3, 72, 72)
    fused = model.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.source_in_conv.modules())
    with torch.no_grad():
        torch.testing.assert_close(fused(ref, src), model(ref, src), rtol=1e-4, atol=1e-5)
    assert len(model.state_dict()) == 115, "the original module is untouched"


def test_interior_blend_changes_only_the_mouth_opening():
    torch.manual_seed(5)
    pipe = DINet_mini_pipeline(3, 12, blend="interior").eval()
    pipe.ref_input(torch.rand(1, 12, INPUT_HEIGHT, INPUT_WIDTH))
    src = torch.rand(1, 4, MODEL_SIZE, MODEL_SIZE)
    gl_warp = torch.full((1, 4, MODEL_SIZE, MODEL_SIZE), 0.5)
    gl = gl_warp.clone()
    gl[:, :3, 55:75, 45:85] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # upper lip
    gl[:, :3, 62:68, 52:78] = 0.0  # cavity
    with torch.no_grad():
        with pytest.raises(ValueError):
            pipe.interface(src, gl)
        out = pipe.interface(src, gl, gl_warp=gl_warp)
    changed = (out - src).abs().amax(dim=1)[0] > 1e-4
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed.any() and rows.min() >= 62 - 3 and rows.max() <= 67 + 3
    assert cols.min() >= 52 - 3 and cols.max() <= 77 + 3, "lips and skin keep the warped source"
