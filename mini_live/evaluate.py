"""Held-out self-reconstruction of DINet_mini versus warp-only (mouth-window PSNR/SSIM).

    python mini_live/evaluate.py --ckpt checkpoint/DINet_mini/epoch_40.pth VIDEO [VIDEO ...] [--json OUT.json]
    python mini_live/evaluate.py --heldout --landmarks CACHE --max_targets 24     # the held-out av_more people

See talkingface.eval.mini_selfrecon for the protocol. Prints a markdown table; ``--mosaic DIR`` writes
one PNG per clip (rows: source crop | GL input | warp-only | model | model with the interior blend |
true labels | model on true labels | real frame). The table adds mouth sharpness (generated / real) and the
teeth rate of open-mouth frames (generated and real) of talkingface.eval.mouth_quality.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2

from talkingface.config.paths import DINET_MINI_CHECKPOINT
from talkingface.errors import UserInputError
from talkingface.util.cli import resolve_device, run_cli, script_parser, setup_logging
from talkingface.util.files import check_input_file, check_output_dir, check_output_file, write_image, write_text

log = logging.getLogger("mini_live.evaluate")


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("videos", type=Path, nargs="*", help="held-out clips (one person each)")
    parser.add_argument("--heldout", action="store_true",
                        help="add the held-out av_more people of talkingface/eval/heldout.py (HELDOUT_AV_MORE)")
    parser.add_argument("--ckpt", type=Path, default=DINET_MINI_CHECKPOINT)
    parser.add_argument("--max_targets", type=int, default=30, help="evaluated frames per clip")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument("--mosaic", type=Path, default=None, help="folder for per-clip mosaic PNGs")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda")
    parser.add_argument("--landmarks", type=Path, default=None,
                        help="face-mesh cache of train_audio/cache_clips.py (clips below the sample-data folder)")
    args = parser.parse_args(argv)
    setup_logging()
    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.av_clips import cached_landmarks
    from talkingface.eval.heldout import HELDOUT_AV_MORE, heldout_paths
    from talkingface.eval.mini_selfrecon import METHODS, format_table, selfrecon_clip, summarize
    from talkingface.models.DINet_mini import load_dinet_mini_state
    from talkingface.util.sample_data import find_sample_data

    if args.heldout:
        if find_sample_data() is None:
            raise UserInputError("--heldout needs the sample-data folder ($TALKINGFACE_DATA or ../shared/data)")
        args.videos += heldout_paths(clips=HELDOUT_AV_MORE)
    if not args.videos:
        raise UserInputError("no videos given (list some or use --heldout)")
    for v in args.videos:
        check_input_file(v, "video")
    if args.landmarks is not None and not args.landmarks.is_dir():
        raise UserInputError(f"landmark cache not found: {args.landmarks}")
    load_dinet_mini_state(args.ckpt)  # a bad checkpoint fails before the clips are tracked
    if args.json is not None:
        check_output_file(args.json)
    if args.mosaic is not None:
        check_output_dir(args.mosaic)
    device = resolve_device(args.device)
    results = []
    for v in args.videos:
        lms = cached_landmarks(v, find_sample_data(), args.landmarks)
        r = selfrecon_clip(v, args.ckpt, max_targets=args.max_targets, device=device, landmarks=lms)
        mosaic = r.pop("mosaic")
        if args.mosaic is not None and mosaic is not None:
            write_image(args.mosaic / f"{v.stem}.png", cv2.cvtColor(mosaic, cv2.COLOR_RGB2BGR))
        results.append(r)
        log.info("%s: mouth PSNR/SSIM %s", v.name, ", ".join(f"{k} {r[k]['psnr']:.2f} / {r[k]['ssim']:.4f}"
                                                              for k in METHODS))
    summary = summarize(results)
    print(format_table(results, summary))
    if args.json is not None:
        write_text(args.json, json.dumps({"checkpoint": str(args.ckpt), "clips": results, "mean": summary}, indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main)
