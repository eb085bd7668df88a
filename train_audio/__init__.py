"""train_audio package."""
