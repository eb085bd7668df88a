"""demo_moda.py with a per-person renderer on a clip's second half: frame/audio check and mouth tracking.

The clip is split as in the cross-half protocol (talkingface/eval/crosshalf.py ``split_clip``: first
half = the person's footage, second half = test). Prepare the person folder from the first half only and
train its renderer first (see docs/MODA.md, "Per-person renderer on a held-out person"). This script:

1. runs ``demo_moda.py PERSON second_half.wav WORKDIR/moda/moda.mp4 --renderer R --seed S``;
2. checks the mp4: frames == ceil(samples / 640) (25 per second of audio), duration, an audio stream;
3. measures the per-frame mouth opening (inner-lip gap / eye distance, face mesh) of the output, of
   MODA's landmarks (the renderer's condition, before rendering) and of the real second half, and prints
   Pearson r at lag 0, the best lag in -5..+5 (> 0: the first series moves later) and r there, for
   each series against the speech log energy and against the real mouth (and the output against its
   condition: does the renderer follow the landmarks?).

Usage: python bench/moda_person_demo.py CLIP WORKDIR PERSON RENDERER [--seed 0] [--lip_gain 1] [--json OUT.json]

WORKDIR/split/ holds the halves (reused when present). Then
``python bench/crosshalf_mosaic.py WORKDIR /tmp/mosaic.png split --pipeline moda`` tiles real vs generated
mouths. Outputs show a person of the sample data: keep them outside the repository.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from talkingface.eval.metrics import best_offset, pearson
from talkingface.util.cli import run_cli, script_parser


def lag_stats(x: np.ndarray, y: np.ndarray) -> dict:
    """r at lag 0, best lag (-5..+5; > 0: x later than y) and r there, on frames where both are finite."""
    n = min(len(x), len(y))
    x, y = np.asarray(x[:n], np.float64), np.asarray(y[:n], np.float64)
    lag, r_best = best_offset(x, y)
    return {"r0": pearson(x, y), "best_lag": int(lag), "r_best": r_best}


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("clip", type=Path, help="the talking clip (>= 8 s)")
    ap.add_argument("workdir", type=Path, help="work folder (the halves, the demo's output)")
    ap.add_argument("person", type=Path, help="person folder made from the first half only")
    ap.add_argument("renderer", type=Path, help="the person's renderer.pth (train_moda/train_renderer.py)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lip_gain", type=float, default=1.0, help="demo_moda.py --lip_gain")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import demo_moda
    from talkingface.config.moda import FACO_CHECKPOINT, MODA_CHECKPOINT
    from talkingface.errors import UserInputError
    from talkingface.eval.baselines import frame_log_energy
    from talkingface.eval.crosshalf import real_track, split_clip
    from talkingface.eval.tracking import track_video
    from talkingface.moda_pipeline import FaCoPredictor, MODAPredictor, Subject
    from talkingface.util.files import check_input_file
    from talkingface.util.media import load_audio, probe_video, read_video
    from talkingface.utils import mouth_opening

    check_input_file(args.clip, "clip")
    check_input_file(args.renderer, "renderer checkpoint")
    if not (args.person / "subject.npz").is_file():
        raise UserInputError(f"not a person folder (no subject.npz): {args.person}")
    split = split_clip(args.clip, args.workdir / "split")
    out = args.workdir / "split" / "moda" / "moda.mp4"  # the layout bench/crosshalf_mosaic.py reads
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    rc = demo_moda.main([str(args.person), str(split.wav), str(out), "--renderer", str(args.renderer),
                         "--seed", str(args.seed), "--lip_gain", str(args.lip_gain)])
    if rc:
        return rc

    wav = load_audio(split.wav)
    n_expected = int(math.ceil(wav.size / 640))
    info = probe_video(out)
    n_frames = len(read_video(out))
    check = {"frames": n_frames, "expected_frames": n_expected, "audio_s": wav.size / 16000,
             "duration_s": info.duration, "fps": info.source_fps, "has_audio": info.has_audio,
             "size": [info.width, info.height]}

    # the same motion sample as the video (demo_moda's own landmark step, same seed)
    subject = Subject.load(args.person)
    points = demo_moda.sample_landmarks(MODAPredictor(MODA_CHECKPOINT), FaCoPredictor(FACO_CHECKPOINT), wav, subject,
                                  args.seed, n_expected, args.lip_gain)
    real = real_track(split)
    series = {
        "generated": mouth_opening(track_video(out, size=real.size, progress=False).points),
        "moda_landmarks": mouth_opening(points),
        "real": mouth_opening(real.points),
    }
    energy = frame_log_energy(wav, n_expected)
    rows = {}
    for name, s in series.items():
        rows[name] = {"vs_energy": lag_stats(s, energy)}
        if name != "real":
            rows[name]["vs_real"] = lag_stats(s, series["real"])
        if name == "generated":  # does the renderer follow its condition?
            rows[name]["vs_moda_landmarks"] = lag_stats(s, series["moda_landmarks"])
        finite = s[np.isfinite(s)]
        rows[name]["mean_opening"] = float(finite.mean()) if finite.size else math.nan
        rows[name]["std_opening"] = float(finite.std()) if finite.size else math.nan
        rows[name]["no_face_frames"] = int((~np.isfinite(s)).sum())
    result = {"clip": str(args.clip), "video": str(out), "check": check, "rows": rows}
    text = json.dumps(result, indent=1, default=float)
    print(text)
    if args.json:
        args.json.write_text(text)
    ok = n_frames == n_expected and info.has_audio
    return 0 if ok else 1


if __name__ == "__main__":
    run_cli(main)
