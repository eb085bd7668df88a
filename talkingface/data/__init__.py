"""talkingface.data package."""
