"""How far a head may turn in a mini avatar video: the rendered mouth's response against yaw.

For each real clip (chosen to span frontal to ~45 deg 3/4 views), an avatar is prepared with no yaw
limit, driven by one speech file through the shipped audio model and DINet_mini (as ``demo_mini``
does), and every output frame's mouth opening is measured with the face mesh. Frames are binned by
the source frame's measured |yaw|; per bin: Pearson r of the output opening with the audio model's
opening coefficient, the response slope (output opening per unit of coefficient) relative to the
frontal bin, the output frames in which the mesh still finds the face, r with the source video's
own mouth, and the leak: r of the source's mouth with what the audio leaves unexplained in the output
(``DriveResult.r_leak``). The avatar yaw limit (``MAX_AVATAR_YAW``) is the largest bin whose r and
slope stay within 80 % of the frontal bin's.

Usage: python bench/bench_yaw.py OUT_DIR [--clips A.mp4 B.mp4 ...] [--audio SPEECH] [--frames 125]
Writes OUT_DIR/bench_yaw.tsv (per clip and bin) and prints the binned table.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from talkingface.eval.avatar_drive import DriveResult, drive_pack
from talkingface.eval.metrics import pearson
from talkingface.mediapipe_utils import FaceRules
from talkingface.preparation import PrepConfig, prepare_mini_avatar
from talkingface.mini_pack import write_avatar_pack
from talkingface.util.cli import setup_logging
from talkingface.util.sample_data import sample_path

DEFAULT_CLIPS = ["av/grid/bbaf2n.mpg", "av/mead/M030_front_neutral_level1_001.mp4",
                 "av/voxceleb2/Pose_Source_731200067.mp4", "av/voxceleb2/Input_00098.mp4",
                 "av/voxceleb2/Pose_Source_620900105.mp4", "av/voxceleb2/Audio_Source_00015.mp4",
                 "av_more/CyberSculptor96__talkingface-codebase/0000_050.mp4",
                 "av/voxceleb2/Input_00010.mp4", "av/voxceleb2/Input_00002.mp4"]
DEFAULT_AUDIO = ("dh_live", "video_data", "audio1.wav")  # 12.9 s of speech
BINS = [0, 10, 20, 30, 35, 40, 45, 90]


def main(argv=None) -> int:
    head, _, rest = __doc__.strip().partition("\n\n")
    ap = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--clips", nargs="*", default=None, help="videos (default: a yaw-spanning set of sample clips)")
    ap.add_argument("--audio", type=Path, default=None, help="driving speech (default: a 12.9 s sample)")
    ap.add_argument("--frames", type=int, default=125, help="avatar frames per clip (from its start)")
    args = ap.parse_args(argv)
    setup_logging()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    clips = [Path(c) for c in args.clips] if args.clips else [sample_path(*c.split("/")) for c in DEFAULT_CLIPS]
    audio = args.audio or sample_path(*DEFAULT_AUDIO)
    cfg = PrepConfig(progress=False, max_seconds=args.frames / 25.0, rules=FaceRules(max_yaw=None))
    rows, pooled = [], []
    for clip in clips:
        avatar = args.out_dir / "avatars" / clip.stem
        if not (avatar / "assets").is_dir():
            prepare_mini_avatar(clip, avatar, cfg)
            write_avatar_pack(avatar)
        res = drive_pack(avatar, audio)
        pooled.append(res)
        print(f"{clip.name}: median |yaw| {np.nanmedian(np.abs(res.yaw)):.0f} deg, r_audio {res.r_audio:.2f}, "
              f"r_source {res.r_source:.2f}, r_leak {res.r_leak:.2f}, detected {res.detected:.2f}", flush=True)
        for lo, hi in zip(BINS[:-1], BINS[1:]):
            sel = (np.abs(res.yaw) >= lo) & (np.abs(res.yaw) < hi) & ~np.isnan(res.output)
            if sel.sum() >= 10:
                rows.append({"clip": clip.name, "bin": f"{lo}-{hi}", "frames": int(sel.sum()),
                             "r_audio": round(pearson(res.output[sel], res.driving[sel]), 3),
                             "slope": round(float(np.polyfit(res.driving[sel], res.output[sel], 1)[0]), 5),
                             "r_source": round(pearson(res.output[sel], res.source[sel]), 3),
                             "r_leak": round(DriveResult(res.output[sel], res.driving[sel], res.source[sel],
                                                         res.yaw[sel]).r_leak, 3)})
    with open(args.out_dir / "bench_yaw.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    out = np.concatenate([r.output for r in pooled])
    drv = np.concatenate([r.driving for r in pooled])
    src = np.concatenate([r.source for r in pooled])
    yaw = np.abs(np.concatenate([r.yaw for r in pooled]))
    print("\n| |yaw| bin (deg) | frames | detected | r audio | slope / frontal | r source | r leak |\n"
          "|---|---|---|---|---|---|---|")
    frontal_slope = None
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = (yaw >= lo) & (yaw < hi)
        ok = sel & ~np.isnan(out)
        if ok.sum() < 10:
            continue
        slope = float(np.polyfit(drv[ok], out[ok], 1)[0])
        frontal_slope = frontal_slope or slope
        leak = DriveResult(out[ok], drv[ok], src[ok], yaw[ok]).r_leak
        print(f"| {lo}-{hi} | {int(sel.sum())} | {ok.sum() / sel.sum():.2f} | {pearson(out[ok], drv[ok]):.2f} | "
              f"{slope / frontal_slope:.2f} | {pearson(out[ok], src[ok]):.2f} | {leak:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
