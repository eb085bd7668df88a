"""The `make demo` job: build the sample avatar from the committed sample video and make it speak.

Usage: python scripts/make_demo.py [--out OUT_DIR] [--wav AUDIO] [--avatar AVATAR_DIR]

The same as the installed ``talkingface-demo`` (see :mod:`talkingface.sample_demo`); writes
OUT_DIR/demo.mp4 and OUT_DIR/demo_mouths.png. Needs no external data.
"""
from __future__ import annotations

from talkingface.sample_demo import cli

if __name__ == "__main__":
    cli()
