"""talkingface.models.common package."""
