"""Packaging logic that pyproject.toml cannot express: the repository's top-level ``checkpoint/``
folder (it must stay there: the original's layout, read by the scripts in a clone) is installed
as package data ``talkingface/checkpoint`` so that a plain ``pip install .`` finds the shipped
checkpoints through the package (see talkingface/config/paths.py). Everything else is in pyproject.toml.
"""
from setuptools import find_namespace_packages, setup

# Namespace discovery also lists the data-only folders (talkingface/assets, mini_live/shader, ...), so
# their files are package data of a listed package, as setuptools wants.
PACKAGES = find_namespace_packages(include=["talkingface", "talkingface.*", "mini_live", "mini_live.*",
                                            "train", "train.*", "train_audio", "train_audio.*",
                                            "train_moda", "train_moda.*"],
                                   exclude=["*.__pycache__"])

#: The command-line scripts at the repository root (``python demo_mini.py ...`` in a clone; installed
#: as modules, so ``python -m demo_mini`` and the console scripts of pyproject.toml work too).
SCRIPTS = ["demo", "demo_mini", "demo_avatar", "demo_moda", "data_preparation", "data_preparation_mini",
           "data_preparation_web", "data_preparation_moda", "serve_web"]

#: checkpoint/ and its sub-folders (DINet_mini, lstm, mouth_basis, ...) as data-only packages.
CHECKPOINT_PACKAGES = ["talkingface.checkpoint"] + [
    "talkingface.checkpoint." + name for name in find_namespace_packages(where="checkpoint")]
CHECKPOINT_FILES = ["*.pkl", "*.pth", "*.json", "*.md", "*.npz", "*.png"]

setup(
    packages=PACKAGES + CHECKPOINT_PACKAGES,
    py_modules=SCRIPTS,
    package_dir={"talkingface.checkpoint": "checkpoint"},
    package_data={
        # The shipped checkpoints, their model cards and the mouth bases.
        **{name: CHECKPOINT_FILES for name in CHECKPOINT_PACKAGES},
        # The canonical mean face and the built-in sample media with its licence notice.
        "talkingface.assets": ["*.npz"],
        "talkingface.assets.sample": ["*.mp4", "*.flac", "*.wav", "*.md"],
        # The mini renderer's meshes / blendshape table and GLSL shaders.
        "mini_live.shader": ["*.vsh", "*.fsh"],
        "mini_live.obj.data": ["*.obj", "*.npz"],
        # The browser player's static files (python -m talkingface.web).
        "talkingface.web.static": ["*.html", "*.css"],
        "talkingface.web.static.js": ["*.js"],
    },
)
