"""talkingface.eval package."""
