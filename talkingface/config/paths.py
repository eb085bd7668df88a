"""Every default location of the project, in one place: shipped checkpoints, meshes, shaders, the
built-in sample, default avatars and the writable home.

Read-only files travel with the package, so the same names work in a clone and after a plain
(non-editable) ``pip install .``:

- :data:`CHECKPOINT_DIR`: the shipped checkpoints. In a clone, the repository's top-level
  ``checkpoint/``; installed, ``<site-packages>/talkingface/checkpoint`` (``setup.py`` maps the
  clone's ``checkpoint/`` into the package as package data).
- :data:`MESH_DIR`, :data:`SHADER_DIR`: the mini renderer's meshes (``mini_live/obj/data``) and GLSL
  shaders (``mini_live/shader``), package data of ``mini_live``.
- :data:`SAMPLE_DIR`: the built-in sample media (``talkingface/assets/sample``, see its NOTICE.md).

Writable defaults (avatars built on first use, user-supplied checkpoints such as ``render.pth``) live
under :data:`DATA_HOME`: ``$TALKINGFACE_HOME`` when set; else the repository root in a clone (so the
original's ``video_data/`` and ``checkpoint/`` layout holds); else, installed,
``$XDG_CACHE_HOME/talkingface`` (default ``~/.cache/talkingface``).

Nothing here creates folders or touches the disk beyond ``is_file``/``is_dir`` checks at import.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]

#: Environment variable naming the writable home (avatars, user checkpoints).
HOME_ENV = "TALKINGFACE_HOME"
#: Environment variable naming the (optional) real sample-data folder used by tests and benchmarks.
DATA_ENV = "TALKINGFACE_DATA"

#: The ``talkingface`` package folder.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: The folder holding the project's top-level packages (talkingface, mini_live, train, train_audio):
#: the repository root in a clone, ``site-packages`` when installed.
PACKAGE_ROOT = PACKAGE_DIR.parent


def _clone_root() -> Optional[Path]:
    """The repository root when running from a clone (or an editable install), else None."""
    root = PACKAGE_ROOT
    if (root / "pyproject.toml").is_file() and (root / "checkpoint").is_dir():
        return root
    return None


#: The repository root in a clone; None when the package is installed (``pip install .``).
CLONE_ROOT: Optional[Path] = _clone_root()

# ------------------------------------------------------------------------- read-only package data
#: Shipped checkpoints: ``talkingface/checkpoint`` when installed, else the clone's ``checkpoint/``.
CHECKPOINT_DIR = (PACKAGE_DIR / "checkpoint") if (PACKAGE_DIR / "checkpoint").is_dir() else \
    (PACKAGE_ROOT / "checkpoint")
#: The folder that names like ``checkpoint/mouth_basis/x.npz`` in model cards are relative to.
CHECKPOINT_PARENT = CHECKPOINT_DIR.parent

#: DINet_mini weights of the mini renderer (demo_mini.py, data_preparation_web.py).
DINET_MINI_CHECKPOINT = CHECKPOINT_DIR / "DINet_mini" / "epoch_40.pth"
#: The blendshape-target audio model that drives the mini mouth, then older names it was shipped under.
MINI_AUDIO_CHECKPOINT = CHECKPOINT_DIR / "lstm" / "lstm_blendshape.pkl"
MINI_AUDIO_CHECKPOINT_CANDIDATES = (
    MINI_AUDIO_CHECKPOINT,
    CHECKPOINT_DIR / "lstm" / "audio_blendshape.pkl",
    CHECKPOINT_DIR / "audio_blendshape.pkl",
)
#: The pixel-target audio model of the 256² DH_live chain (demo.py).
AUDIO_CHECKPOINT = CHECKPOINT_DIR / "audio.pkl"
#: Mouth bases decoding the audio models' 6 coefficients.
MOUTH_BASIS_DIR = CHECKPOINT_DIR / "mouth_basis"
BLENDSHAPE_BASIS = MOUTH_BASIS_DIR / "blendshape_basis.npz"
PIXEL_BASIS = MOUTH_BASIS_DIR / "pixel_basis.npz"

#: Package assets of talkingface (the canonical mean face, the built-in sample).
ASSETS_DIR = PACKAGE_DIR / "assets"
MEAN_FACE = ASSETS_DIR / "mean_face.npz"

#: The mini renderer's meshes and blendshape table, and its GLSL shaders.
MINI_LIVE_DIR = PACKAGE_ROOT / "mini_live"
MESH_DIR = MINI_LIVE_DIR / "obj" / "data"
SHADER_DIR = MINI_LIVE_DIR / "shader"

#: The browser player's static files (package data of talkingface.web).
WEB_STATIC_DIR = PACKAGE_DIR / "web" / "static"
#: onnxruntime-web's runtime files when installed with npm beside a clone.
ORT_WEB_DIR = PACKAGE_ROOT / "node_modules" / "onnxruntime-web" / "dist"

#: The built-in sample (committed; licences in ``SAMPLE_DIR / "NOTICE.md"``).
SAMPLE_DIR = ASSETS_DIR / "sample"
#: 720x1080, 25 fps, 7.16 s, silent: one person facing the camera (the sample avatar's source).
SAMPLE_AVATAR_VIDEO = SAMPLE_DIR / "avatar_presenter.mp4"
#: 9.7 s English read speech, 22.05 kHz mono FLAC (public domain).
SAMPLE_SPEECH_EN = SAMPLE_DIR / "speech_en_LJ001-0001.flac"
#: 4.2 s Mandarin read speech, 16 kHz mono wav (Apache-2.0).
SAMPLE_SPEECH_ZH = SAMPLE_DIR / "speech_zh_BAC009S0764W0121.wav"


# ----------------------------------------------------------------------------- writable defaults
def data_home() -> Path:
    """The writable home: ``$TALKINGFACE_HOME``, else the clone root, else the user cache folder.

    Read at call time, so a test or a caller may set the variable after import."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    if CLONE_ROOT is not None:
        return CLONE_ROOT
    return user_cache_dir()


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/talkingface`` (default ``~/.cache/talkingface``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "talkingface"


def video_data_dir() -> Path:
    """Where default avatars live (the original's ``video_data/``)."""
    return data_home() / "video_data"


def mini_avatar_dir() -> Path:
    """The default mini avatar (built from :data:`SAMPLE_AVATAR_VIDEO` on first use)."""
    return video_data_dir() / "mini"


def dinet_avatar_dir() -> Path:
    """The default DH_live avatar (``video_data/test`` as in the original; made by data_preparation.py)."""
    return video_data_dir() / "test"


def user_checkpoint_dir() -> Path:
    """Where the user puts checkpoints the project does not ship (``render.pth``, ``wav2lip.pth``):
    the clone's ``checkpoint/`` in a clone, ``DATA_HOME/checkpoint`` when installed."""
    return data_home() / "checkpoint"


def render_checkpoint() -> Path:
    """The default DH_live render network: the original's published ``render.pth`` if the user put it there."""
    return user_checkpoint_dir() / "render.pth"


def wav2lip_checkpoint() -> Path:
    """The default Wav2Lip teacher weights (user-supplied) of train_audio/preparation_step0.py."""
    return user_checkpoint_dir() / "wav2lip.pth"


def onnx_cache_dir() -> Path:
    """Where the fast inference path caches the ONNX graphs it exports on first use:
    ``$TALKINGFACE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/talkingface/onnx`` (default ``~/.cache/...``)."""
    env = os.environ.get("TALKINGFACE_ONNX_CACHE")
    return Path(env).expanduser() if env else user_cache_dir() / "onnx"


def shared_data_default() -> Optional[Path]:
    """The conventional location of the optional real sample data, ``../shared/data`` beside a clone
    (None when installed: then only ``$TALKINGFACE_DATA`` names it)."""
    return CLONE_ROOT.parent / "shared" / "data" if CLONE_ROOT is not None else None


def resolve_named_file(name: PathLike, *near: PathLike) -> Optional[Path]:
    """A file a model card or option names: absolute as is; else relative to each folder of ``near``
    (e.g. the checkpoint's own folder), to :data:`CHECKPOINT_PARENT` (so ``checkpoint/...`` names work
    in a clone and installed), to the clone root and to the working directory. None when none exists."""
    name = Path(name)
    if name.is_absolute():
        return name if name.is_file() else None
    bases = [Path(b) for b in near] + [CHECKPOINT_PARENT]
    if CLONE_ROOT is not None:
        bases.append(CLONE_ROOT)
    bases.append(Path.cwd())
    for base in bases:
        path = base / name
        if path.is_file():
            return path
    return None
