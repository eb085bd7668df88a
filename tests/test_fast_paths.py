"""The fast inference paths equal the eager torch paths: the mini pipeline (cv2.remap warp + ONNX
Runtime window, the exact network skip), I420 frame storage and encoding, and the renderers with
``engine="onnx"`` against ``engine="torch"`` on a real pack. ONNX Runtime tests skip without it."""
import numpy as np
import pytest
import torch

from talkingface.fast.mini import mouth_interior_visible
from talkingface.fast.yuv import FileSpan, I420Frames, even_box, join_parts
from talkingface.models.DINet_mini import PAD_X, PAD_Y, DINet_mini_pipeline
from talkingface.util.media import VideoWriter, read_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def mini(ort):
    from talkingface.export.onnx_export import mini_modules
    from talkingface.fast.mini import FastMiniPipeline

    pipe = mini_modules(None)[0]
    with torch.no_grad():
        feature = pipe.ref_input(torch.rand(1, 12, 72, 72, generator=torch.Generator().manual_seed(0)))
    fast = FastMiniPipeline(pipe, threads=1)
    fast.set_reference(feature)
    return pipe, fast


def _chw(img):
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255.0


def eager_delta(pipe, crop, gl, gl_warp):
    """The plain torch pipeline on one frame, as the renderer ran it: BGR change, float32."""
    src = np.dstack([crop[..., ::-1], np.full(crop.shape[:2], 255, np.uint8)])
    with torch.no_grad():
        out = pipe.interface(_chw(src), _chw(gl), gl_warp=_chw(gl_warp))[0, :3].permute(1, 2, 0).numpy()
    return out[..., ::-1] * 255.0 - crop.astype(np.float32)


def _inputs(seed, mouth_open=True):
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    gl_warp = rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)
    gl_warp[..., :2] = 118 + gl_warp[..., :2] // 12  # displacements up to ~6 px, reaching past the border
    gl = np.full((128, 128, 4), 128, np.uint8)
    gl[50:70, 40:90, :3] = (255, 0, 0)  # an upper lip label
    if mouth_open:
        gl[60:66, 50:80, :3] = (0, 0, 0)  # cavity
        gl[56:60, 50:80, :3] = (0, 255, 0)  # upper teeth
    return crop, gl, gl_warp


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_mini_pipeline_matches_eager(mini, seed):
    pipe, fast = mini
    crop, gl, gl_warp = _inputs(seed)
    before = fast.network_frames
    got = fast.delta(crop, gl, gl_warp)
    assert fast.network_frames == before + 1
    want = eager_delta(pipe, crop, gl, gl_warp)
    assert got.shape == (128, 128, 3) and got.dtype == np.float32
    # of 255: the regrouped warp maps round differently, and cv2.remap snaps them to 1/32 pixel
    assert np.abs(got - want).max() < 5e-3


def test_closed_mouth_skips_network_exactly(mini):
    pipe, fast = mini
    crop, gl, gl_warp = _inputs(2, mouth_open=False)
    assert not mouth_interior_visible(gl)
    before = fast.network_frames
    got = fast.delta(crop, gl, gl_warp)
    assert fast.network_frames == before
    assert np.abs(got - eager_delta(pipe, crop, gl, gl_warp)).max() < 5e-3


def test_interior_test_equals_blend_weight():
    rng = np.random.default_rng(3)
    values = np.array([0, 5, 12, 13, 63, 64, 127, 128, 200, 242, 243, 250, 255], np.uint8)
    for _ in range(40):
        gl = np.full((128, 128, 4), 128, np.uint8)
        y, x = rng.integers(PAD_Y - 4, PAD_Y + 76, 2)
        gl[y, x, 0], gl[y, x, 2] = rng.choice(values), rng.choice(values)
        win = _chw(gl)[:, :, PAD_Y:PAD_Y + 72, PAD_X:PAD_X + 72]
        weight = DINet_mini_pipeline(blend="interior").interior_weight(win)
        assert mouth_interior_visible(gl) == bool((weight > 0).any())


# --------------------------------------------------------------------------------------- I420 frames
@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    rng = np.random.default_rng(4)
    frames = [cv_smooth(rng, 48, 64) for _ in range(5)]
    path = tmp_path_factory.mktemp("yuv") / "v.mp4"
    with VideoWriter(path) as w:
        for f in frames:
            w.write(f)
    return path


def cv_smooth(rng, h, w):
    import cv2

    return cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)


def test_i420_frames_regions_and_passthrough(small_video, tmp_path):
    frames = I420Frames.from_video(small_video)
    bgr = read_video(small_video)
    assert len(frames) == len(bgr) == 5 and frames.shape == (48, 64, 3)
    assert frames.nbytes == 5 * 48 * 64 * 3 // 2
    # indexing gives BGR close to ffmpeg's own conversion (chroma interpolation differs slightly)
    assert np.abs(frames[2].astype(int) - bgr[2].astype(int)).mean() < 3.0
    box = even_box((11, 7, 40, 33), 64, 48)
    assert box == (10, 6, 40, 34)
    region = frames.region_bgr(2, box)
    assert region.shape == (28, 30, 3)
    assert np.array_equal(region, frames[2][6:34, 10:40])
    # replacing a region by itself changes nothing outside it, and rows outside it are not copied
    joined = np.frombuffer(b"".join(frames.planes_with_region(2, box, region)), np.uint8).reshape(72, 64)
    outside = np.ones((48, 64), bool)
    outside[6:34, 10:40] = False
    assert np.array_equal(joined[:48][outside], frames.data[2][:48][outside])
    # the encoder takes the buffers as they are
    out = tmp_path / "o.mp4"
    with VideoWriter(out) as w:
        for i in range(len(frames)):
            w.write_i420(frames.planes_with_region(i, box, region), 64, 48)
    back = read_video(out)
    assert len(back) == 5 and back[0].shape == (48, 64, 3)


def test_i420_frames_spilled_to_a_file_read_back_equal(small_video, tmp_path):
    in_memory = I420Frames.from_video(small_video)
    spilled = I420Frames.from_video(small_video, spill=True)
    assert len(spilled) == 5 and spilled.nbytes == in_memory.nbytes
    for i in (3, 0, 4, 4):
        assert np.array_equal(spilled.data[i], in_memory.data[i])
    box = even_box((11, 7, 40, 33), 64, 48)
    assert np.array_equal(spilled.region_bgr(1, box), in_memory.region_bgr(1, box))
    region = in_memory.region_bgr(2, box)
    parts = list(spilled.planes_with_region(2, box, region))
    assert any(isinstance(p, FileSpan) for p in parts), "untouched rows come straight from the file"
    assert join_parts(parts) == join_parts(in_memory.planes_with_region(2, box, region))
    # the writer sends file spans (sendfile) and buffers alike: the same video as from memory
    for name, frames in (("spilled", spilled), ("memory", in_memory)):
        with VideoWriter(tmp_path / f"{name}.mp4", threads=1) as w:
            for i in range(len(frames)):
                w.write_i420(frames.planes_with_region(i, box, frames.region_bgr(i, box)), 64, 48)
    back, want = read_video(tmp_path / "spilled.mp4"), read_video(tmp_path / "memory.mp4")
    assert len(back) == len(want) == 5 and all(np.array_equal(a, b) for a, b in zip(back, want))
    head = spilled.truncate(2)
    assert len(head) == 2 and np.array_equal(head.data[1], in_memory.data[1])
    with pytest.raises(IndexError):
        head.data[2]


def test_mini_int8_network_calibrated_and_checked(ort, tmp_path, monkeypatch):
    """int8 DINet_mini (the shipped weights): calibrated on open-mouth frames, within 40 dB of eager on others."""
    from talkingface.export.onnx_export import mini_modules
    from talkingface.fast import psnr_db
    from talkingface.fast.mini import MIN_INT8_PSNR_DB, FastMiniPipeline

    monkeypatch.setenv("TALKINGFACE_ONNX_CACHE", str(tmp_path))
    pipe = mini_modules(None)[0]
    with torch.no_grad():
        feature = pipe.ref_input(torch.rand(1, 12, 72, 72, generator=torch.Generator().manual_seed(5)))
    fast = FastMiniPipeline(pipe, threads=1)
    closed = _inputs(20, mouth_open=False)
    fast.set_reference(feature, calibration=[_inputs(s) for s in (10, 11, 12)] + [closed])
    assert fast.precision == "int8" and fast.int8_psnr_db >= MIN_INT8_PSNR_DB
    assert any(p.name.startswith("int8-") for p in tmp_path.iterdir()), "the int8 graph is cached"
    for seed in (13, 14):
        crop, gl, gl_warp = _inputs(seed)
        got = crop + fast.delta(crop, gl, gl_warp)
        assert psnr_db(got, crop + eager_delta(pipe, crop, gl, gl_warp), peak=255.0) >= MIN_INT8_PSNR_DB
    # closed mouths only: nothing to calibrate on, float32 stays
    fast.set_reference(feature, calibration=[closed])
    assert fast.precision == "float32" and fast.int8_psnr_db is None


# ------------------------------------------------------------------------ renderers, both engines
def _psnr(a, b):
    from talkingface.fast import psnr_db

    return psnr_db(a, b, peak=255.0)


def test_render_model_mini_engines_agree(ort, sample_data):
    from talkingface.mini_pack import load_asset_pack
    from talkingface.render_model_mini import RenderModelMini

    pack = load_asset_pack(sample_data / "dh_live/web_assets/assets1", frame_store="i420")
    assert isinstance(pack.frames, I420Frames)
    models = {e: RenderModelMini(engine=e) for e in ("torch", "onnx")}
    try:
        for m in models.values():
            m.reset_charactor(pack)
        assert models["onnx"].fast is not None and models["torch"].fast is None
        for k, bs in ((0, np.zeros(6)), (7, np.array([0.8, 0.2, 0.0, 0.1, 0.0, 0.3]))):
            a, b = models["torch"].interface(k, bs), models["onnx"].interface(k, bs)
            assert _psnr(a, b) > 50.0
            rect = pack.rects[k]
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
            planes = models["onnx"].render_i420(k, bs)
            i420 = np.frombuffer(b"".join(planes), np.uint8).reshape(-1, pack.frames.width)
            import cv2

            via_yuv = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
            x0, y0, x1, y1 = rect
            assert _psnr(via_yuv[y0:y1, x0:x1], b[y0:y1, x0:x1]) > 38.0  # one more 4:2:0 round trip
    finally:
        for m in models.values():
            m.close()


def test_render_model_mini_int8_on_a_real_pack(ort, sample_data):
    """With the audio model's basis the onnx engine calibrates int8 on the avatar's own frames; open
    mouths then stay within 40 dB of the torch engine in the mouth rect."""
    from talkingface.audio_loader import load_audio_model
    from talkingface.mini_pack import load_asset_pack
    from talkingface.render_model_mini import RenderModelMini

    _, basis = load_audio_model(None, "blendshape", device="cpu")
    pack = load_asset_pack(sample_data / "dh_live/web_assets/assets1", frame_store="i420")
    models = {e: RenderModelMini(engine=e) for e in ("torch", "onnx")}
    try:
        for m in models.values():
            m.reset_charactor(pack, basis=basis)
        assert models["onnx"].fast.precision == "int8" and models["onnx"].fast.int8_psnr_db >= 40.0
        rng = np.random.default_rng(1)
        for k in (3, 9, 15):
            bs = rng.normal(0.0, 1.5, 6) * basis.coef_std
            a, b = models["torch"].interface(k, bs), models["onnx"].interface(k, bs)
            x0, y0, x1, y1 = pack.rects[k]
            assert _psnr(a[y0:y1, x0:x1], b[y0:y1, x0:x1]) > 40.0
        assert models["onnx"].fast.network_frames >= 1, "at least one of the random shapes opens the mouth"
    finally:
        for m in models.values():
            m.close()


def test_dinet_int8_fast_path(ort, tmp_path, monkeypatch):
    """int8 DINet (random weights, 64x64 crops): calibrated on two inputs, within 35 dB of eager on a third."""
    from talkingface.fast import psnr_db
    from talkingface.fast.dinet import FastDINet
    from talkingface.models.DINet import DINet_five_Ref

    monkeypatch.setenv("TALKINGFACE_ONNX_CACHE", str(tmp_path))
    gen = torch.Generator().manual_seed(9)
    net = DINet_five_Ref(6, 30).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
    with torch.no_grad():
        net.ref_input(torch.rand(1, 30, 64, 64, generator=gen))
    fast = FastDINet(net, threads=1)
    fast.set_reference(net, [(torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64, generator=gen))
                             for _ in range(2)])
    assert fast.precision == "int8" and fast.int8_psnr_db >= 35.0
    src, prompt = torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64, generator=gen)
    with torch.no_grad():
        want = net.interface(src, prompt)
    got = fast.interface(src, prompt)
    assert got.shape == want.shape
    assert psnr_db(got.numpy(), want.numpy(), peak=1.0) >= 35.0
    assert any(p.name.startswith("int8-") for p in tmp_path.iterdir()), "the int8 graph is cached"
