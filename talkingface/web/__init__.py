"""The browser player and its server (``serve_web.py`` / ``python -m talkingface.web``).

- :mod:`talkingface.web.pack_web`: the pack's ``talkingface.web`` extension the player reads;
- :mod:`talkingface.web.app`: the FastAPI app (player, packs, models, uploads, jobs, websocket);
- :mod:`talkingface.web.drive`: the websocket that streams speech + mouth coefficients;
- ``static/``: the player (plain HTML + ES modules, no build step), see docs/WEB_PLAYER.md.
"""
