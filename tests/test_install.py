"""The install tells the truth: supported Python versions and pins agree across pyproject.toml,
requirements.txt and README.md, and a built wheel carries everything the code finds through
talkingface/config/paths.py (checkpoints, meshes, shaders, the sample), so a plain ``pip install .``
works away from the clone."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements() -> set:
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return {ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()}


def test_requires_python_matches_readme_and_this_interpreter():
    spec = _pyproject()["project"]["requires-python"]
    assert spec == ">=3.11,<3.13"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "Python 3.11 or 3.12" in readme
    assert (3, 11) <= sys.version_info[:2] <= (3, 12), "the tests run on a supported Python"
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "(3, 11) <= sys.version_info[:2] <= (3, 12)" in makefile


def test_pyproject_dependencies_are_the_pinned_requirements():
    project = _pyproject()["project"]
    declared = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    assert declared == _requirements()
    assert all("==" in d for d in declared), "every dependency is pinned"


def test_license_files_exist():
    for name in _pyproject()["project"]["license-files"]:
        assert (REPO / name).is_file(), name
    assert "MIT License" in (REPO / "LICENSE").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    env = dict(os.environ, PIP_NO_INDEX="1")  # nothing to download: the build backend is installed
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], cwd=build, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (found,) = out.glob("talkingface-*.whl")
    return found


def test_wheel_carries_every_default_file(wheel, tmp_path):
    """Install the wheel into a bare folder and resolve every default path from there (from /tmp,
    so the clone is not on sys.path)."""
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in ("talkingface/checkpoint/DINet_mini/epoch_40.pth", "talkingface/checkpoint/lstm/lstm_blendshape.pkl",
                "talkingface/checkpoint/audio.pkl", "talkingface/checkpoint/mouth_basis/blendshape_basis.npz",
                "talkingface/assets/sample/avatar_presenter.mp4", "talkingface/assets/sample/NOTICE.md",
                "mini_live/shader/prompt3.vsh", "mini_live/obj/data/bs_table.npz", "demo_mini.py"):
        assert rel in names, rel
    probe = ("import talkingface.config.paths as p, json; print(json.dumps({k: str(getattr(p, k)) for k in "
             "('PACKAGE_DIR', 'CHECKPOINT_DIR', 'CLONE_ROOT', 'DINET_MINI_CHECKPOINT', 'MINI_AUDIO_CHECKPOINT', "
             "'AUDIO_CHECKPOINT', 'BLENDSHAPE_BASIS', 'PIXEL_BASIS', 'MEAN_FACE', 'MESH_DIR', 'SHADER_DIR', "
             "'SAMPLE_AVATAR_VIDEO', 'SAMPLE_SPEECH_EN', 'SAMPLE_SPEECH_ZH')} | {'home': str(p.data_home())}))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TALKINGFACE_HOME")}
    env["PYTHONPATH"] = str(target)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, "-c", probe], cwd="/", env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["CLONE_ROOT"] == "None"
    assert found["home"] == str(tmp_path / "cache" / "talkingface")
    for key, value in found.items():
        if key in ("CLONE_ROOT", "home"):
            continue
        assert value.startswith(str(target)), (key, value)
        assert Path(value).exists(), (key, value)


def test_wheel_carries_every_tracked_data_file(wheel):
    """Every file git tracks in the packages (and in checkpoint/, installed as talkingface/checkpoint)
    that is not Python source is package data of the wheel."""
    proc = subprocess.run(["git", "ls-files", "talkingface", "mini_live", "train", "train_audio", "checkpoint"],
                          cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    expected = {("talkingface/" + f if f.startswith("checkpoint/") else f)
                for f in proc.stdout.split() if not f.endswith(".py")}
    missing = sorted(expected - set(zipfile.ZipFile(wheel).namelist()))
    assert missing == [], f"add these to setup.py package_data: {missing}"


def test_installed_script_runs_from_anywhere(wheel, tmp_path):
    """The console scripts point at functions that exist, the root scripts are importable modules, and
    ``talkingface-demo --help`` (its module) runs from the installed layout."""
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    entry = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist()
                                             if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"talkingface-demo-mini\s*=\s*demo_mini:cli", entry)
    assert re.search(r"talkingface-demo\s*=\s*talkingface.sample_demo:cli", entry)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    probe = ("import importlib.util, sys; names = sys.argv[1:]; "
             "print('\\n'.join(importlib.util.find_spec(n).origin for n in names))")
    modules = ["demo_mini", "demo", "demo_avatar", "data_preparation", "data_preparation_mini", "data_preparation_web",
               "talkingface.sample_demo"]
    proc = subprocess.run([sys.executable, "-c", probe, *modules], cwd="/", env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(str(target)) for line in proc.stdout.split()), proc.stdout
    proc = subprocess.run([sys.executable, "-m", "talkingface.sample_demo", "--help"], cwd="/", env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--wav" in proc.stdout
