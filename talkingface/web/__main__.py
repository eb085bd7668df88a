"""``python -m talkingface.web``: the same as ``python serve_web.py``."""
from talkingface.util.cli import run_cli
from talkingface.web.server import main

if __name__ == "__main__":
    run_cli(main)
