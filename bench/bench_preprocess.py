"""Face-mesh preprocessing speed: decode and 478-point tracking on a real GRID clip (CPU).

Stages (each the median of >= 5 runs after a warm-up, per frame of the clip):
- ``decode``: ffmpeg decode at 25 fps (talkingface.util.media.read_video);
- ``face_mesh_video``: :func:`talkingface.mediapipe_utils.landmarks_for_video` on the decoded frames,
  model start-up included (what data preparation pays per clip);
- ``face_mesh_steady``: one already-started tracking FaceLandmarker over the frames (steady state);
- ``detect+mesh``: :func:`talkingface.mediapipe_utils.checked_landmarks_for_video`, the avatar-source
  route with per-frame face detection and quality rules (full run only).

Input: ``av/grid/bbaf2n.mpg`` (75 frames, 360x288) from the sample-data folder, or ``--clip``;
``--quick`` uses its first 30 frames.
Target on the 2-core development machine: >= 50 frames/s for the face mesh.
"""
from __future__ import annotations

from pathlib import Path

from common import BenchReport, bench_argparser, measure

DEFAULT_CLIP = ("av", "grid", "bbaf2n.mpg")
QUICK_FRAMES = 30


def main(argv=None) -> int:
    parser = bench_argparser(__doc__.split("\n", 1)[0])
    parser.add_argument("--clip", type=Path, default=None, help="video to process (default: a GRID clip)")
    args = parser.parse_args(argv)
    report = BenchReport("preprocess", args)

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.mediapipe_utils import FaceLandmarker, checked_landmarks_for_video, landmarks_for_video
    from talkingface.util.media import read_video
    from talkingface.util.sample_data import sample_path

    clip = args.clip or sample_path(*DEFAULT_CLIP)
    frames = read_video(clip, max_frames=QUICK_FRAMES if args.quick else None)
    n = len(frames)
    h, w = frames[0].shape[:2]
    report.note("clip", Path(clip).name)
    report.note("frames", n)
    report.note("size", f"{w}x{h}")

    report.add(measure(lambda: read_video(clip, max_frames=n), "decode", items=n, runs=args.runs, warmup=args.warmup))
    report.add(measure(lambda: landmarks_for_video(frames, progress=False), "face_mesh_video", items=n,
                       runs=args.runs, warmup=args.warmup))

    with FaceLandmarker(static_image_mode=False) as mesh:
        def steady():
            for f in frames:
                mesh(f)
        report.add(measure(steady, "face_mesh_steady", items=n, runs=args.runs, warmup=args.warmup))

    if not args.quick:
        report.add(measure(lambda: checked_landmarks_for_video(frames, progress=False), "detect+mesh", items=n,
                           runs=args.runs, warmup=args.warmup))
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
