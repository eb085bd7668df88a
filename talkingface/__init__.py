"""talkingface: audio-driven talking-head video (DH_live, DH_live_mini, MODA), CPU-first and headless."""

__version__ = "0.1.0"
