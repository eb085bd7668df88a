"""Serve the browser player and its API on 127.0.0.1 (see talkingface/web/server.py and README).

Usage: python serve_web.py [--port 8000] [--host 127.0.0.1] [--packs DIR] [--models DIR]
"""
from talkingface.util.cli import run_cli
from talkingface.web.server import main

if __name__ == "__main__":
    run_cli(main)
