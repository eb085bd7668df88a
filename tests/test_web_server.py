"""The web server without a browser: headers, JSON errors, path safety, upload limits, the pack's web
extension and the stream websocket (its frames carry the rows AudioModel.interface_wav gives)."""
from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from talkingface.web.app import WebConfig, create_app  # noqa: E402
from talkingface.web.drive import unpack_frame  # noqa: E402
from talkingface.web.pack_web import WEB_PACK_VERSION, check_web_extension, web_extension  # noqa: E402
from talkingface.errors import UserInputError  # noqa: E402

SPEECH = np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000).astype(np.float32) * 0.3  # 1 s


def template_pack_data(ref_checkpoint: str = "0123456789abcdef") -> dict:
    """A pack JSON of the project's wrap template (one frame), as write_asset_pack lays it out."""
    from mini_live.obj.utils import load_wrap_template

    mesh = load_wrap_template()
    return {"uid": "test", "frame_num": 1, "face3D_obj": mesh.obj_lines(), "ref_data": [0.0] * 6480,
            "json_data": [{"rect": [0, 0, 64, 64], "points": [1.0] * 16 + [0.0] * 2 * mesh.num_targets}],
            "authorized": False,
            "talkingface": {"mp_ids": [int(v) for v in mesh.mp_ids], "num_targets": int(mesh.num_targets),
                            "ref_checkpoint": ref_checkpoint}}


@pytest.fixture(scope="module")
def web_data():
    data = template_pack_data()
    data["talkingface"]["web"] = web_extension(data)
    return data


@pytest.fixture(scope="module")
def client(tmp_path_factory, web_data):
    from talkingface.util.media import save_wav

    root = tmp_path_factory.mktemp("web")
    pack = root / "packs" / "tmpl" / "assets"
    pack.mkdir(parents=True)
    with gzip.open(pack / "combined_data.json.gz", "wt") as fh:
        json.dump(web_data, fh)
    (pack / "01.mp4").write_bytes(b"\0" * 64)  # served as bytes only; never decoded here
    save_wav(root / "speech.wav", SPEECH)
    cfg = WebConfig(packs_dir=root / "packs", work_dir=root / "work", models_dir=root / "models",
                    sample_audio={"sample-test": root / "speech.wav"}, max_audio_bytes=200_000)
    with TestClient(create_app(cfg)) as c:
        yield c


def test_web_extension_is_checked(web_data):
    web = web_data["talkingface"]["web"]
    assert web["version"] == WEB_PACK_VERSION
    assert web["bs_table"]["rows"] == 6 and len(web["bs_table"]["data"]) == 6 * web["bs_table"]["columns"] * 3
    assert len(web["warp_labels"]) == len([ln for ln in web_data["face3D_obj"] if ln.startswith("v ")])
    assert max(max(f) for f in web["faces"]) < len(web["warp_labels"])
    assert check_web_extension(web_data, web["models"]) is web
    with pytest.raises(UserInputError, match="made for dinet_mini weights"):
        check_web_extension(web_data, {"dinet_mini": "ffffffffffffffff"})
    old = json.loads(json.dumps(web_data))
    old["talkingface"]["web"]["version"] = 0
    with pytest.raises(UserInputError, match="version 0"):
        check_web_extension(old, {})
    del old["talkingface"]["web"]
    with pytest.raises(UserInputError, match="no web player data"):
        check_web_extension(old, {})


def test_isolation_headers_and_page(client):
    r = client.get("/")
    assert r.status_code == 200 and "<canvas" in r.text
    for path in ("/", "/api/packs", "/static/js/player.js", "/nope"):
        h = client.get(path).headers
        assert h["cross-origin-opener-policy"] == "same-origin"
        assert h["cross-origin-embedder-policy"] == "require-corp"
    assert client.get("/static/js/player.js").headers["content-type"].startswith("text/javascript")


def test_packs_listed_and_served(client):
    packs = client.get("/api/packs").json()["packs"]
    assert packs == [{"name": "tmpl", "frames": 1, "usable": True, "error": None}]
    r = client.get("/packs/tmpl/combined_data.json.gz")
    assert r.status_code == 200 and gzip.decompress(r.content).startswith(b"{")


@pytest.mark.parametrize("path", [
    "/packs/tmpl/../../etc/passwd", "/packs/..%2F..%2Fetc/passwd", "/packs/tmpl/%2e%2e%2fx",
    "/packs/tmpl/data.pkl", "/packs/.hidden/01.mp4", "/static/../app.py", "/static/%2e%2e/app.py",
    "/audio/..%2Fspeech.wav", "/outputs/../x.mp4", "/models/../app.py", "/vendor/ort/package.json", "/nope"])
def test_paths_cannot_escape(client, path):
    r = client.get(path)
    assert 400 <= r.status_code < 500
    assert "error" in r.json() and "Traceback" not in r.text


def test_bad_requests_get_json_errors(client):
    assert client.get("/api/models").status_code == 503  # no ONNX files in this models folder
    assert "error" in client.get("/api/models").json()
    r = client.post("/api/synthesize", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()
    r = client.post("/api/synthesize", json={"pack": "../tmpl", "audio": "x"})
    assert r.status_code == 400
    r = client.post("/api/synthesize", json={"pack": "missing", "audio": "sample-test"})
    assert r.status_code == 404
    assert client.get("/api/jobs/0123456789ab").status_code == 404
    r = client.post("/api/audio", files={"audio": ("a.wav", b"RIFF not really a wav", "audio/wav")})
    assert r.status_code == 400 and "error" in r.json()
    r = client.post("/api/avatars", files={"video": ("a.txt", b"text", "text/plain")}, data={"name": "x1"})
    assert r.status_code == 415
    r = client.post("/api/avatars", data={"name": "../../x"})
    assert r.status_code == 400


def test_oversized_upload_rejected(client):
    big = b"\0" * 300_000
    r = client.post("/api/audio", files={"audio": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_audio_upload_roundtrip(client, tmp_path):
    from talkingface.util.media import save_wav

    save_wav(tmp_path / "s.wav", SPEECH[:8000])
    r = client.post("/api/audio", files={"audio": ("s.wav", (tmp_path / "s.wav").read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["seconds"] == pytest.approx(0.5)
    wav = client.get(info["url"])
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"


def _frames(ws, utt_end: int):
    frames, msgs = [], []
    while True:
        m = ws.receive()
        if m.get("bytes") is not None:
            frames.append(unpack_frame(m["bytes"]))
        else:
            msg = json.loads(m["text"])
            msgs.append(msg)
            if msg["type"] == "end" and msg["utt"] == utt_end:
                return frames, msgs


def test_stream_matches_offline_audio_model(client):
    from talkingface.audio_loader import load_audio_model

    model, _ = load_audio_model(target="blendshape", basis_required=False)
    import soundfile as sf

    wav = client.get("/audio/sample-test.wav").content  # the 16-bit samples the server streams
    stored = sf.read(io.BytesIO(wav), dtype="int16")[0].astype(np.float32) / 32768
    expected = model.interface_wav(stored)
    with client.websocket_connect("/ws/drive") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["coeffs"] == expected.shape[1]
        ws.send_text(json.dumps({"type": "say", "audio": "sample-test"}))
        frames, msgs = _frames(ws, 1)
    assert [m["type"] for m in msgs] == ["start", "end"] and msgs[1]["frames"] == len(expected) == 25
    assert [f[1] for f in frames] == list(range(25))
    coeffs = np.stack([f[2] for f in frames])
    assert np.abs(coeffs - expected).max() < 1e-4
    pcm = np.concatenate([f[3] for f in frames]).astype(np.float32) / 32768
    assert np.abs(pcm - stored).max() < 1e-6


def test_stream_push_clear_and_malformed(client):
    with client.websocket_connect("/ws/drive") as ws:
        ws.receive_json()
        ws.send_text("{not json")
        assert ws.receive_json() == {"type": "error", "error": "message is not JSON"}
        ws.send_text(json.dumps({"type": "dance"}))
        assert ws.receive_json()["type"] == "error"
        ws.send_bytes(b"\x01\x02\x03")  # odd length: not int16
        assert ws.receive_json()["type"] == "error"
        ws.send_text(json.dumps({"type": "say", "audio": "../../etc/passwd"}))
        assert ws.receive_json()["type"] == "error"
        pcm = (SPEECH[:3200] * 32767).astype("<i2").tobytes()  # 0.2 s pushed, then closed
        ws.send_bytes(pcm)
        ws.send_text(json.dumps({"type": "end"}))
        frames, _ = _frames(ws, 1)
        assert len(frames) == 5
        ws.send_text(json.dumps({"type": "say", "audio": "sample-test"}))
        assert ws.receive_json() == {"type": "start", "utt": 2}
        first = ws.receive()
        assert unpack_frame(first["bytes"])[0] == 2
        ws.send_text(json.dumps({"type": "clear"}))
        seen = []
        while True:
            m = ws.receive()
            if m.get("text") and json.loads(m["text"])["type"] == "cleared":
                break
            seen.append(m)
        assert len(seen) < 25  # the rest of the utterance was dropped
        ws.send_text(json.dumps({"type": "ping", "t": 1}))
        m = ws.receive_json()
        while m["type"] != "pong":
            m = ws.receive_json()
        assert m == {"type": "pong", "t": 1}


def test_stream_oversized_message_closes(client):
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/ws/drive") as ws:
        ws.receive_json()
        ws.send_bytes(b"\0" * (70 * 1024))
        assert ws.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
        assert exc.value.code == 1009


def test_frame_wire_format():
    from talkingface.web.drive import pack_frame

    data = pack_frame(7, 3, np.arange(6, dtype=np.float32), np.zeros(640, np.float32))
    assert data[:4] == b"TFAV" and struct.unpack_from("<IIHH", data, 4) == (7, 3, 6, 640)
    assert len(data) == 16 + 24 + 1280


def _wait_job(client, job, timeout_s=600):
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job['id']}").json()
        if job["state"] in ("done", "error"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job['id']} still {job['state']} after {timeout_s} s")


def test_app_builds_an_avatar_and_renders_an_mp4(client, tmp_path):
    """The UI app's flow over HTTP: upload a silent video -> avatar job -> upload speech -> mp4 job -> mp4
    (1.2 s of the built-in sample video and 1 s of the sample speech: real preparation and synthesis)."""
    from talkingface.config.paths import SAMPLE_AVATAR_VIDEO, SAMPLE_SPEECH_ZH
    from talkingface.util.media import count_frames, load_audio, probe_video, run_ffmpeg, save_wav

    clip = tmp_path / "clip.mp4"
    run_ffmpeg(["-i", str(SAMPLE_AVATAR_VIDEO), "-t", "1.2", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-threads", "1", str(clip)], what="cutting the sample")
    save_wav(tmp_path / "speech.wav", load_audio(SAMPLE_SPEECH_ZH)[:16000])
    r = client.post("/api/avatars", files={"video": ("clip.mp4", clip.read_bytes(), "video/mp4")}, data={"name": "clip"})
    assert r.status_code == 202, r.text
    job = _wait_job(client, r.json())
    assert job["state"] == "done", job
    assert job["result"] == {"pack": "clip"}
    packs = {p["name"]: p for p in client.get("/api/packs").json()["packs"]}
    assert packs["clip"]["usable"] and packs["clip"]["frames"] == 30
    assert client.post("/api/avatars", files={"video": ("clip.mp4", b"x", "video/mp4")},
                       data={"name": "clip"}).status_code == 409
    speech = client.post("/api/audio", files={"audio": ("s.wav", (tmp_path / "speech.wav").read_bytes(), "audio/wav")})
    r = client.post("/api/synthesize", json={"pack": "clip", "audio": speech.json()["id"]})
    assert r.status_code == 202, r.text
    job = _wait_job(client, r.json())
    assert job["state"] == "done", job
    video = client.get(job["result"]["video"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(video.content)
    assert count_frames(tmp_path / "out.mp4") == 25 and probe_video(tmp_path / "out.mp4").has_audio
