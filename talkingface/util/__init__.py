"""Small shared helpers: command-line plumbing, media I/O, sample-data location, smoothing."""
