"""mini_live package."""
