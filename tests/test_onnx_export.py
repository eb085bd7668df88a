"""ONNX export: planar AdaAT equals the 5-D original; every exported graph matches torch in ONNX
Runtime (max |delta| bounds below); the export command writes files and a manifest and rejects bad
input with one error line. The ORT tests skip cleanly when onnxruntime/onnx are not installed."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from talkingface.export import graphs
from talkingface.models.DINet import AdaAT, DINet_five_Ref, depth_mix_matrix

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("channels,size,batch", [(20, 18, 1), (20, 18, 3), (256, 16, 2)])
def test_planar_adaat_equals_volumetric(channels, size, batch):
    torch.manual_seed(channels + batch)
    ada = AdaAT(channels // 2, channels).eval()
    feat, code = torch.randn(batch, channels, size, size), torch.randn(batch, channels // 2)
    with torch.no_grad():
        ref = ada(feat, code)
        ada.planar = True
        got = ada(feat, code)
    assert got.shape == ref.shape
    # float32 rounding of the depth coordinate: about 1e-7 relative per unit of depth index
    assert (got - ref).abs().max().item() < 2e-6 * channels * feat.abs().max().item()


def test_depth_mix_rows():
    mix = depth_mix_matrix(20, torch.device("cpu"), torch.float64)
    # interior channels blend two neighbours with weights summing to 1; the first/last lose half to padding
    assert mix[0].sum().item() == pytest.approx(0.5) and mix[-1].sum().item() == pytest.approx(0.5)
    assert torch.allclose(mix[1:-1].sum(1), torch.ones(18, dtype=torch.float64))
    assert int((mix > 0).sum(1).max()) == 2


# ------------------------------------------------------------------------------ ONNX Runtime parity
@pytest.fixture(scope="module")
def ort_ready():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from talkingface.export.runtime import OnnxGraph, ort_available

    assert ort_available()
    return OnnxGraph


@pytest.fixture(scope="module")
def mini_pipe():
    from talkingface.export.onnx_export import mini_modules

    return mini_modules(None)[0]


def _run(ort_ready, module, name, inputs):
    from talkingface.export.onnx_export import onnx_bytes

    graph = ort_ready(onnx_bytes(module, name), threads=1)
    return graph(*[t.numpy() for t in inputs])


def test_audio_step_carries_state(ort_ready):
    from talkingface.export.onnx_export import audio_module, onnx_bytes

    net, _ = audio_module(None)
    graph = ort_ready(onnx_bytes(graphs.AudioStepGraph(net), "audio_step"))
    gen = torch.Generator().manual_seed(3)
    fbank = 2.0 * torch.randn(1, 12, 80, generator=gen) + 8.0
    h, c = net.init_state(1)
    hn, cn = h.numpy(), c.numpy()
    with torch.no_grad():
        want, _, _ = net(fbank, h, c)  # six steps in one torch call
    rows = []
    for t in range(6):
        y, hn, cn = graph(fbank[:, 2 * t:2 * t + 2].numpy(), hn, cn)
        assert y.shape == (1, 6) and hn.shape == (2, 1, 192)
        rows.append(y[0])
    assert np.abs(np.stack(rows) - want[0].numpy()).max() < 1e-4


def test_audio_offline_any_length(ort_ready):
    from talkingface.export.onnx_export import audio_module

    net, _ = audio_module(None)
    fbank = 2.0 * torch.randn(1, 74, 80, generator=torch.Generator().manual_seed(4))
    (got,) = _run(ort_ready, graphs.AudioOfflineGraph(net), "audio_offline", [fbank])
    with torch.no_grad():
        want = net(fbank, *net.init_state(1))[0]
    assert got.shape == (1, 37, 6)
    assert np.abs(got - want.numpy()).max() < 1e-4


def test_mini_pipeline_matches_eager(ort_ready, mini_pipe):
    """The exported pipeline (BN folded, planar AdaAT, opset 17) against the plain eager pipeline
    (BatchNorm modules, 5-D grid_sample) at batch 2."""
    torch.manual_seed(5)
    with torch.no_grad():
        ref_feature = mini_pipe.ref_input(torch.rand(1, 12, 72, 72))
    src, gl, gl_warp = (torch.rand(2, 4, 128, 128) for _ in range(3))
    (got,) = _run(ort_ready, graphs.MiniPipelineGraph(mini_pipe), "mini_pipeline", [src, gl, gl_warp, ref_feature])
    with torch.no_grad():
        want = mini_pipe.interface(src, gl, gl_warp=gl_warp)
    assert got.shape == (2, 4, 128, 128)
    assert np.abs(got - want.numpy()).max() < 1e-5


def test_mini_network_and_ref(ort_ready, mini_pipe):
    net = mini_pipe.infer_model
    ref = torch.rand(1, 12, 72, 72, generator=torch.Generator().manual_seed(6))
    (feature,) = _run(ort_ready, graphs.MiniRefGraph(net), "mini_ref", [ref])
    with torch.no_grad():
        want_feature = net.ref_in_conv(ref)
    assert np.abs(feature - want_feature.numpy()).max() < 1e-4
    driving = torch.rand(3, 3, 72, 72, generator=torch.Generator().manual_seed(7))
    (mouth,) = _run(ort_ready, graphs.MiniNetworkGraph(net), "mini_network", [driving, want_feature])
    with torch.no_grad():
        want = net.decode(driving, want_feature)
    assert mouth.shape == (3, 3, 72, 72)
    assert np.abs(mouth - want.numpy()).max() < 1e-5


def test_dinet_matches_eager(ort_ready):
    """DINet_five_Ref (random weights, non-trivial BatchNorm statistics) at a 64x64 crop."""
    torch.manual_seed(8)
    net = DINet_five_Ref(6, 30).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    ref_img = torch.rand(1, 30, 64, 64)
    feats = _run(ort_ready, graphs.DINetRefGraph(net), "dinet_ref", [ref_img])
    src, prompt = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        net.ref_input(ref_img)
        want = net.interface(src, prompt)
    assert np.abs(feats[0] - net.ref_in_feature.numpy()).max() < 1e-4
    (got,) = _run(ort_ready, graphs.DINetGraph(net), "dinet",
                  [src, prompt, net.ref_in_feature, net.ref_trans_feature0])
    assert np.abs(got - want.numpy()).max() < 1e-4


# --------------------------------------------------------------------------------------- command
def test_export_command_writes_manifest(ort_ready, tmp_path, repo_root):
    out = tmp_path / "onnx"
    proc = subprocess.run([sys.executable, "-m", "talkingface.export", "onnx", "--what", "audio_step",
                           "--out", str(out)], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["files"]["audio_step"]
    assert (out / entry["file"]).stat().st_size == entry["bytes"]
    assert entry["inputs"] == {"fbank": [1, 2, 80], "h0": [2, 1, 192], "c0": [2, 1, 192]}
    assert entry["outputs"] == ["coeffs", "h1", "c1"]
    assert len(entry["source"]["sha256"]) == 64 and entry["max_abs_diff_vs_torch"] < 1e-4


def test_export_command_bad_input(tmp_path, repo_root):
    proc = subprocess.run([sys.executable, "-m", "talkingface.export", "onnx", "--what", "dinet", "--out",
                           str(tmp_path / "x"), "--dinet_ckpt", str(tmp_path / "missing.pth")],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
