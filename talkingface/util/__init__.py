"""Infrastructure only: command-line plumbing (cli), atomic files and model cards (files), media I/O and
ffmpeg (media), sample-data location (sample_data). Face geometry lives in named modules
(docs/ARCHITECTURE.md §8)."""
