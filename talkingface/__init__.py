"""talkingface: audio-driven talking-head video (DH_live, DH_live_mini, MODA-lite), CPU-first and headless.

Where each stage of the data flow lives: docs/ARCHITECTURE.md §1 (a table: stage -> module) and
docs/ARCHITECTURE.md §2 (the layout, one line per module). Entry points: the products registry (:mod:`talkingface.products`),
the scripts at the repository root, ``python -m talkingface.eval``.
"""

__version__ = "0.1.0"
