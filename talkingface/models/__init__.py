"""talkingface.models package."""
