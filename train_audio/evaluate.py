"""Score audio models on real clips: predicted vs measured mouth opening, beside an energy baseline.

    python train_audio/evaluate.py [--model NAME=CKPT ...] [--clips VIDEO_OR_FOLDER ...] [--json OUT.json]

Truth per frame is the first blendshape coefficient (jaw/lips open-closed) measured by the face
mesh on the real video against the clip's own neutral shape. Each model contributes its
coefficient 0 (offline inference); ``energy`` is the log energy of each 40 ms of audio.
Per clip and method: Pearson r at lag 0 and the best r over lags -5..+5. Defaults: the shipped
blendshape model and the held-out clips of ``talkingface/eval/heldout.py``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from talkingface.config.paths import BLENDSHAPE_BASIS, MINI_AUDIO_CHECKPOINT
from talkingface.errors import UserInputError
from talkingface.util.cli import parse_verbose, run_cli, script_parser
from talkingface.util.files import write_text

log = logging.getLogger("evaluate")


def parse_args(argv=None):
    ap = script_parser(__doc__)
    ap.add_argument("--model", action="append", default=[],
                    help="NAME=CHECKPOINT[:SIGN] (coefficient 0, times SIGN=+1/-1); repeatable")
    ap.add_argument("--basis", type=Path, default=BLENDSHAPE_BASIS,
                    help="blendshape basis that defines the truth")
    ap.add_argument("--clips", type=Path, action="append", default=[], help="video or folder (default: held-out)")
    ap.add_argument("--cache", type=Path, default=Path("output/audio_eval_cache"), help="face-mesh cache folder")
    ap.add_argument("--json", type=Path, help="write all rows and the summary here")
    return parse_verbose(ap, argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.av_clips import prepare_clip
    from talkingface.eval.audio_sync import (clip_name, common_lag_scores, energy_predictor, evaluate_clips,
                                             model_predictor, rows_as_dicts, summarize)
    from talkingface.eval.heldout import heldout_paths
    from talkingface.mouth_basis import BlendshapeBasis
    from talkingface.util.media import expand_inputs, list_videos

    videos = expand_inputs(args.clips, list_videos, what="clip") if args.clips else heldout_paths()
    if not videos:
        raise UserInputError("no clips to evaluate")
    models = args.model or [f"ours={MINI_AUDIO_CHECKPOINT}"]
    predictors = {"energy": energy_predictor}
    for spec in models:
        name, _, rest = spec.partition("=")
        path, _, sign = rest.partition(":")
        if not name or not path:
            raise UserInputError(f"--model expects NAME=CHECKPOINT[:SIGN], got {spec!r}")
        predictors[name] = model_predictor(Path(path), 0, float(sign or 1))
    basis = BlendshapeBasis.load(args.basis)
    clips = [prepare_clip(v, args.cache, name=clip_name(v)) for v in videos]
    rows = evaluate_clips(clips, basis, predictors)
    summary = summarize(rows)
    common = common_lag_scores(clips, basis, predictors)
    print(f"{'clip':28s} {'method':10s} {'r@0':>7s} {'lag':>4s} {'r@best':>7s}")
    for r in rows:
        print(f"{r.clip:28s} {r.method:10s} {r.r:7.3f} {r.best_lag:4d} {r.r_best:7.3f}")
    print(f"\n{'method':10s} {'clips':>5s} {'mean r@0':>9s} {'mean r@best':>12s} {'common lag':>11s} {'r@common':>9s}")
    for name, s in summary.items():
        print(f"{name:10s} {s['clips']:5d} {s['r']:9.3f} {s['r_best']:12.3f} {common[name]['lag']:11d} "
              f"{common[name]['r']:9.3f}")
    if args.json:
        write_text(args.json, json.dumps({"rows": rows_as_dicts(rows), "summary": summary, "common_lag": common,
                                          "basis": str(args.basis), "models": models}, indent=1))
    return 0


if __name__ == "__main__":
    run_cli(main)
