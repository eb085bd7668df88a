"""Start-up jobs of ``serve_web.py``: export the player's ONNX models when they are missing, and make
the sample avatar's pack usable by the player when it is missing or was written without the current
web extension. Both run as background jobs, so the server answers at once and the page reports them."""
from __future__ import annotations

import gzip
import json
import logging
import sys

from talkingface.errors import UserInputError
from talkingface.web.jobs import script
from talkingface.web.pack_web import check_web_extension
from talkingface.web.packs import PACK_FILES, pack_folder

log = logging.getLogger(__name__)

ENSURE_SAMPLE = ("from talkingface.sample_avatar import ensure_sample_mini_avatar as e; "
                 "from talkingface.util.cli import run_cli, setup_logging; setup_logging(); "
                 "run_cli(lambda argv: (e(), 0)[1])")


def sample_pack_needs_work(app) -> bool:
    """True when the sample avatar has no pack, or one the player would refuse."""
    avatar = app.state.cfg.sample_avatar
    folder = pack_folder(avatar)
    if folder is None:
        return True
    try:
        with gzip.open(folder / PACK_FILES[1], "rt", encoding="utf-8") as fh:
            check_web_extension(json.load(fh), app.state.registry.model_ids())
    except (OSError, ValueError, UserInputError) as exc:
        log.info("the sample pack needs rebuilding: %s", exc)
        return True
    return False


def models_need_export(app) -> bool:
    # Lazy: the model registry loads only when start-up checks the exported models.
    from talkingface.web.models import ModelsUnavailable

    try:
        app.state.registry.descriptor()
    except ModelsUnavailable as exc:
        return "onnxruntime-web" not in str(exc)
    return False


def prepare_defaults(app) -> None:
    """Queue the jobs that make the default sample avatar playable (see the module doc)."""
    cfg = app.state.cfg
    registry = app.state.registry
    if models_need_export(app):
        job = app.state.jobs.submit("models", [("exporting the ONNX models (talkingface.export)", [
            sys.executable, "-m", "talkingface.export", "onnx", "--what", "audio_step", "--what", "mini",
            "--out", str(registry.models_dir)])])
        app.state.startup_jobs.append(job.id)
        log.info("exporting the player's ONNX models to %s in the background (job %s)", registry.models_dir, job.id)
    if cfg.sample_avatar is None or not sample_pack_needs_work(app):
        return
    if not (cfg.sample_avatar / "data" / "processed.pkl").is_file():  # the whole avatar, pack included
        steps = [("building the sample avatar (face tracking + pack)", [sys.executable, "-c", ENSURE_SAMPLE])]
    else:
        steps = [("building the sample pack (data_preparation_web.py)",
                  script("data_preparation_web.py", str(cfg.sample_avatar)))]
    job = app.state.jobs.submit("sample", steps, result={"pack": "sample"})
    app.state.startup_jobs.append(job.id)
    log.info("building the sample avatar's pack in the background (job %s)", job.id)
