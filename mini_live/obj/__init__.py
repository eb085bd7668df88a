"""mini_live.obj package."""
