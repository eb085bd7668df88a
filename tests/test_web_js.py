"""The player's pure-JS parts under node (no browser): the fbank against kaldi-native-fbank, streaming
against one-shot, and the crop/paste against the cv2 calls of the Python pipeline. Skipped without node."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from talkingface.config.paths import PACKAGE_DIR, SAMPLE_SPEECH_ZH

JS = PACKAGE_DIR / "web" / "static" / "js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(script: str, *args: str) -> str:
    out = subprocess.run(["node", "--input-type=module", "-e", script, "--", *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


FBANK_JS = """
import { computeFbank, StreamingFbank } from '%s';
import { readFileSync } from 'fs';
const buf = readFileSync(process.argv[process.argv.length - 1]);
const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
const whole = computeFbank(x);
const s = new StreamingFbank(); let parts = [];
for (let i = 0; i < x.length; i += 999) parts = parts.concat(s.accept(x.subarray(i, i + 999)));
process.stdout.write(JSON.stringify({whole: whole.map((f) => Array.from(f)), parts: parts.map((f) => Array.from(f))}));
"""


def test_fbank_matches_kaldi_native_fbank(tmp_path):
    from talkingface.audio_features import compute_fbank
    from talkingface.util.media import load_audio

    wav = load_audio(SAMPLE_SPEECH_ZH)[:32000]
    wav.astype("<f4").tofile(tmp_path / "w.f32")
    res = json.loads(run_node(FBANK_JS % (JS / "fbank.js").as_uri(), str(tmp_path / "w.f32")))
    ref = compute_fbank(wav)
    whole = np.asarray(res["whole"], np.float32)
    assert whole.shape == ref.shape
    assert np.array_equal(whole, np.asarray(res["parts"], np.float32))  # streaming == one shot
    delta = np.abs(whole - ref).max()
    print(f"fbank max |delta| vs kaldi-native-fbank: {delta:.2e}")
    assert delta < 1e-2 and np.abs(whole - ref).mean() < 1e-4


IMAGE_JS = """
import { cropTo128, pasteDelta } from '%s';
import { readFileSync, writeFileSync } from 'fs';
const [dir, w, h] = process.argv.slice(-3);
const rgba = new Uint8ClampedArray(readFileSync(dir + '/rect.u8'));
const out = new Float32Array(readFileSync(dir + '/out.f32').buffer.slice(0));
const crop = cropTo128(rgba, +w, +h);
writeFileSync(dir + '/crop.u8', crop);
pasteDelta(rgba, +w, +h, crop, out);
writeFileSync(dir + '/paste.u8', rgba);
"""


@pytest.mark.parametrize("size", [200, 96])  # INTER_AREA (rect wider than 128) and INTER_LINEAR
def test_crop_and_paste_match_cv2(tmp_path, size):
    import cv2

    from talkingface.data.mouth_crop import standard_image
    from talkingface.render_model_mini import crop_change, paste_change

    rng = np.random.default_rng(size)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), (5, 5), 0)
    rect = (37, 41, 37 + size, 41 + size)
    x0, y0, x1, y1 = rect
    rgba = np.dstack([cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[y0:y1, x0:x1], np.full((size, size), 255, np.uint8)])
    rgba.tofile(tmp_path / "rect.u8")
    out = rng.random((4, 128, 128)).astype(np.float32)
    out.tofile(tmp_path / "out.f32")
    run_node(IMAGE_JS % (JS / "imageops.js").as_uri(), str(tmp_path), str(size), str(size))
    crop_py = cv2.cvtColor(standard_image(frame, rect), cv2.COLOR_BGR2RGB)
    crop_js = np.fromfile(tmp_path / "crop.u8", np.uint8).reshape(128, 128, 3)
    assert np.abs(crop_py.astype(int) - crop_js).max() <= 1
    paste_py = paste_change(frame, rect, crop_change(crop_py, out[:3].transpose(1, 2, 0)))[y0:y1, x0:x1][..., ::-1]
    paste_js = np.fromfile(tmp_path / "paste.u8", np.uint8).reshape(size, size, 4)[..., :3]
    assert np.abs(paste_py.astype(int) - paste_js).max() <= 1
    # INTER_AREA is matched exactly; cv2's uint8 INTER_LINEAR uses 11-bit fixed-point weights, the page
    # float ones: off by one on a share of the pixels
    assert (paste_py != paste_js).mean() < (0.01 if size > 128 else 0.25)
