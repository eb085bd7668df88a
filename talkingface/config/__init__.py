"""talkingface.config package."""
