"""Lip-sync evaluation (docs/EVALUATION.md §1, docs/EVALUATION.md): ``python -m talkingface.eval``.

Modules:
- :mod:`.tracking` — face-mesh tracks of whole videos (cached per file);
- :mod:`.metrics` — mouth-opening r, sync offset, amplitude, LMD, mouth PSNR/SSIM; ``compare_videos``;
- :mod:`.baselines` — static-mouth video and audio-energy baseline;
- :mod:`.selfrecon` — self-reconstruction runner and the pipeline registry;
- :mod:`.report` — per-clip JSON/markdown and folder summaries;
- :mod:`.heldout` — the held-out real clips.

Submodules are imported on use, so ``import talkingface.eval`` stays light.
"""
