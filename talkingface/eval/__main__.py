"""Command line of the lip-sync evaluation (docs/EVALUATION.md §1); see docs/EVALUATION.md.

    python -m talkingface.eval compare --pred generated.mp4 --gt real.mp4 [--baselines] [--out r.json]
    python -m talkingface.eval selfrecon --pipeline mini --clip real.mp4 [--clip more/ ...] [--out DIR]
    python -m talkingface.eval selfrecon --pipeline mini --heldout      # the held-out real clips
    python -m talkingface.eval crosshalf --pipeline mini --heldout-av-more   # first half avatar, second half speech
    python -m talkingface.eval summary DIR                              # table over a folder of results
    python -m talkingface.eval moda --heldout [--moda CKPT] [--faco CKPT] --out r.json   # MODA-lite motion
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

from talkingface.errors import UserInputError
from talkingface.util.cli import ScriptParser, resolve_device, run_cli, setup_logging
from talkingface.util.files import check_input_file, check_output_file, read_model_card, write_model_card, write_text

log = logging.getLogger("talkingface.eval")


def build_parser() -> argparse.ArgumentParser:
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.eval.selfrecon import PIPELINES

    parser = ScriptParser(prog="python -m talkingface.eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    cmp_ = sub.add_parser("compare", help="score a generated video against its real counterpart")
    cmp_.add_argument("--pred", type=Path, required=True, help="generated video")
    cmp_.add_argument("--gt", type=Path, required=True, help="real (ground-truth) video, same frame count")
    cmp_.add_argument("--method", default="model", help="name of the generated video's method in the table")
    cmp_.add_argument("--baselines", action="store_true",
                      help="also score the static-mouth and audio-energy baselines of --gt (needs its audio)")
    cmp_.add_argument("--max-lag", type=int, default=5, help="sync offsets searched: -N..N frames")
    cmp_.add_argument("--out", type=Path, default=None, help="write the JSON result here (+ a .md beside it)")

    sr = sub.add_parser("selfrecon", help="re-create real clips from their own audio and score them")
    sr.add_argument("--pipeline", required=True, choices=sorted(PIPELINES),
                    help="; ".join(f"{p.name}: {p.description}" for p in PIPELINES.values()))
    sr.add_argument("--heldout", action="store_true",
                    help="add the held-out clips of talkingface/eval/heldout.py from the sample-data folder")
    sr.add_argument("--out", type=Path, default=Path("output/eval"),
                    help="folder for <clip>.<pipeline>.json/.md and summary.md (default output/eval)")
    sr.add_argument("--workdir", type=Path, default=None,
                    help="keep avatars and generated videos here (default: a temporary folder)")
    sr.add_argument("--avatar-source", choices=["neutral", "clip"], default="neutral",
                    help="build the avatar from the clip with its mouth neutralised (default) or from the raw "
                         "clip (its real mouth can leak into the output; for diagnosis)")
    _add_pipeline_options(sr, "", "also scored as a linear read-out (row audio-lin); default: the pipeline's shipped "
                              "audio model")

    ch = sub.add_parser("crosshalf", help="first half of a clip (no sound) as the avatar, its second half's speech "
                                          "drives the pipeline; scored against the real second half")
    ch.add_argument("--pipeline", default="mini", choices=sorted(PIPELINES), help="default mini")
    ch.add_argument("--heldout-av-more", action="store_true",
                    help="add the held-out av_more people of talkingface/eval/heldout.py (sample-data folder)")
    ch.add_argument("--out", type=Path, default=Path("output/eval/crosshalf"),
                    help="folder for <clip>.crosshalf.<pipeline>.json/.md and summary (default output/eval/crosshalf)")
    ch.add_argument("--workdir", type=Path, default=Path("output/eval/crosshalf_work"),
                    help="per-clip halves, real tracks (cached between runs), avatars and outputs")
    _add_pipeline_options(ch, " >= 8 s", "also scored alone (row audio-ours); default: shipped")
    ch.add_argument("--original", type=Path, default=None,
                    help="the original DH_live audio.pkl, scored alone (row audio-original); default: "
                         "dh_live/checkpoint/audio.pkl of the sample-data folder when present")

    md = sub.add_parser("moda", help="MODA-lite lips, eyes, head pose and FaCo on held-out people (landmarks)")
    md.add_argument("--moda", type=Path, default=None, help="MODA-lite checkpoint (default checkpoint/moda)")
    md.add_argument("--faco", type=Path, default=None, help="FaCo-Net checkpoint (default checkpoint/moda)")
    md.add_argument("--records", type=Path, action="append", default=[],
                    help="folder of *.moda.npz records with audio (data_preparation_moda.py --include_heldout)")
    md.add_argument("--heldout", action="store_true", help="add the held-out clips of talkingface/eval/heldout.py")
    md.add_argument("--cache", type=Path, default=Path("output/eval/moda_cache"), help="face-mesh cache for --heldout")
    md.add_argument("--seeds", type=int, default=3, help="motion samples per clip")
    md.add_argument("--out", type=Path, default=Path("output/eval/moda.json"), help="JSON result (+ .md beside it)")
    md.add_argument("--update_card", action="store_true",
                    help="also record the summary in the MODA checkpoint's card (.json and .md)")

    sm = sub.add_parser("summary", help="table over a folder of evaluation JSON files")
    sm.add_argument("folder", type=Path)
    sm.add_argument("--md", type=Path, default=None, help="also write the table to this markdown file")
    return parser


def _compare(args) -> None:
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.eval.baselines import energy_baseline, write_static_mouth_video
    from talkingface.eval.metrics import Reference, compare_videos
    from talkingface.eval.report import ClipResult
    from talkingface.eval.tracking import track_video
    from talkingface.util.media import load_audio, probe_video

    for path, what in ((args.pred, "generated video"), (args.gt, "real video")):
        probe_video(check_input_file(path, what))  # both readable before the (slow) tracking
    if args.out is not None:
        check_output_file(args.out)
        check_output_file(args.out.with_suffix(".md"))
    ref = Reference.from_track(track_video(args.gt))
    rows = [compare_videos(args.pred, args.gt, method=args.method, max_lag=args.max_lag, ref=ref)]
    if args.baselines:
        with tempfile.TemporaryDirectory(prefix="eval_") as tmp:
            static = write_static_mouth_video(args.gt, ref, Path(tmp) / "static.mp4")
            rows.append(compare_videos(static, args.gt, method="static", max_lag=args.max_lag, ref=ref))
        if probe_video(args.gt).has_audio:
            rows.append(energy_baseline(ref, load_audio(args.gt)))
        else:
            log.warning("%s has no audio track: no energy baseline", args.gt.name)
    result = ClipResult(clip=args.gt.name, kind="compare", gt=str(args.gt), pred=str(args.pred), rows=rows)
    print(result.markdown())
    if args.out is not None:
        result.save(args.out)
        write_text(args.out.with_suffix(".md"), result.markdown() + "\n")
        log.info("wrote %s", args.out)


def _add_pipeline_options(p: argparse.ArgumentParser, clip_length: str, audio_help: str) -> None:
    """--clip, --ckpt, --audio-ckpt and --device of the commands that run a pipeline on real clips
    (selfrecon, crosshalf)."""
    p.add_argument("--clip", type=Path, action="append", default=[],
                   help=f"a real talking clip{clip_length} with audio, or a folder of them (repeatable)")
    p.add_argument("--ckpt", type=Path, default=None, help="the pipeline renderer's checkpoint (default: its own)")
    p.add_argument("--audio-ckpt", type=Path, default=None, help=f"the audio model driving the pipeline, {audio_help}")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="torch device of the pipeline's networks")


def _selfrecon(args) -> None:
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.eval.heldout import heldout_paths
    from talkingface.eval.report import summary_markdown
    from talkingface.eval.selfrecon import PipelineOptions, get_pipeline, list_clips, selfrecon

    sources: List[Path] = list(args.clip)
    if args.heldout:
        sources += heldout_paths()
    if not sources:
        raise UserInputError("give --clip (a file or folder) or --heldout")
    clips = list_clips(sources)
    device = resolve_device(args.device)
    for given in (args.ckpt, args.audio_ckpt):
        if given is not None and not given.is_file():
            raise UserInputError(f"checkpoint not found: {given}")
    options = PipelineOptions(device=device, checkpoint=args.ckpt, audio_checkpoint=args.audio_ckpt)
    readout = args.audio_ckpt or get_pipeline(args.pipeline).audio_default()
    suffix = f".{args.pipeline}" + ("" if args.avatar_source == "neutral" else ".rawavatar")

    def evaluate(clip: Path):
        workdir = args.workdir / clip.stem if args.workdir is not None else None
        return selfrecon(clip, args.pipeline, workdir=workdir, options=options, audio_readout=readout,
                         avatar_source=args.avatar_source)

    _evaluate_clips(clips, evaluate, args.out, suffix, f"summary.{args.pipeline}.md", summary_markdown, 2, "skipped")


def _crosshalf(args) -> None:
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.eval.crosshalf import acceptance_markdown, crosshalf
    from talkingface.eval.heldout import HELDOUT_AV_MORE, heldout_paths
    from talkingface.eval.report import summary_markdown
    from talkingface.eval.selfrecon import PipelineOptions, get_pipeline, list_clips
    from talkingface.audio_loader import load_audio_model
    from talkingface.util.sample_data import ORIGINAL_AUDIO_MODEL, find_sample_data

    sources: List[Path] = list(args.clip)
    if args.heldout_av_more:
        sources += heldout_paths(clips=HELDOUT_AV_MORE)
    if not sources:
        raise UserInputError("give --clip (a file or folder) or --heldout-av-more")
    clips = list_clips(sources)
    for given in (args.ckpt, args.audio_ckpt, args.original):
        if given is not None and not given.is_file():
            raise UserInputError(f"checkpoint not found: {given}")
    ours = args.audio_ckpt or get_pipeline(args.pipeline).audio_default()
    basis = load_audio_model(ours, target="blendshape")[1] if ours is not None else None
    original = args.original
    data = find_sample_data()
    teacher = data.joinpath(*ORIGINAL_AUDIO_MODEL) if data is not None else None
    if original is None and teacher is not None and teacher.is_file():
        original = teacher
    options = PipelineOptions(device=resolve_device(args.device), checkpoint=args.ckpt, audio_checkpoint=args.audio_ckpt,
                              progress=False)
    def evaluate(clip: Path):
        return crosshalf(clip, args.pipeline, args.workdir / clip.stem, options, audio_ours=ours, basis=basis,
                         original=original)

    def summary(results: list) -> str:
        return summary_markdown(results) + "\n\n" + acceptance_markdown(results)

    _evaluate_clips(clips, evaluate, args.out, f".crosshalf.{args.pipeline}",
                    f"summary.crosshalf.{args.pipeline}.md", summary, 1, "refused")


def _evaluate_clips(clips: List[Path], evaluate, out: Path, suffix: str, summary_name: str, summary,
                    min_for_summary: int, refused: str) -> None:
    """Evaluate each clip (``evaluate(clip)`` -> a result with save / markdown / markdown_rows): write
    ``OUT/<clip stem><suffix>.json`` and ``.md``, print its rows; then ``OUT/<summary_name>`` from
    ``summary(results)`` when at least ``min_for_summary`` clips were scored. An unusable clip
    (UserInputError) is logged and the rest go on; the only clip's error, or any refusal at the end,
    is raised."""
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.eval.report import HEADER

    print(HEADER, flush=True)
    results, failed = [], []
    for clip in clips:
        try:
            res = evaluate(clip)
        except UserInputError as exc:
            if len(clips) == 1:
                raise
            log.error("%s: %s: %s", clip.name, refused, exc)  # report every refusal, score the rest
            failed.append(f"{clip.name} ({exc})")
            continue
        res.save(out / f"{clip.stem}{suffix}.json")
        write_text(out / f"{clip.stem}{suffix}.md", res.markdown() + "\n")
        print("\n".join(res.markdown_rows()), flush=True)
        results.append(res)
    if len(results) >= min_for_summary:
        table = summary(results)
        write_text(out / summary_name, table + "\n")
        print()
        print(table.split("\n\n", 1)[1])
    log.info("results in %s", out)
    if failed:
        raise UserInputError(f"{len(failed)} of {len(clips)} clips {refused}: {'; '.join(failed)}")


def _summary(args) -> None:
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.eval.report import load_results, summary_markdown

    table = summary_markdown(load_results(args.folder))
    print(table)
    if args.md is not None:
        write_text(args.md, table + "\n")


def _moda(args) -> None:
    # Lazy: the CLI loads metrics, MediaPipe and torch only for the chosen command (fast --help).
    from talkingface.config.moda import FACO_CHECKPOINT, MODA_CHECKPOINT
    from talkingface.data.moda_clips import load_records, record_from_video, relative_source
    from talkingface.eval.heldout import HELDOUT_AV_MORE, HELDOUT_CLIPS, heldout_paths
    from talkingface.eval.moda_eval import evaluate, markdown
    from talkingface.util.sample_data import sample_data_dir

    records = [r for folder in args.records for r in load_records(folder)]
    if args.heldout:
        root = sample_data_dir()
        for path in heldout_paths(clips=HELDOUT_CLIPS) + heldout_paths(clips=HELDOUT_AV_MORE):
            rel = relative_source(path, root)
            records.append(record_from_video(path, args.cache, "__".join(Path(rel).with_suffix("").parts), rel))
    if not records:
        raise UserInputError("give --records DIR or --heldout")
    if args.seeds < 1:
        raise UserInputError("--seeds must be >= 1")
    faco = args.faco or (FACO_CHECKPOINT if FACO_CHECKPOINT.is_file() else None)
    result = evaluate(records, args.moda or MODA_CHECKPOINT, faco, list(range(args.seeds)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(result, indent=1, default=float))
    text = markdown(result)
    write_text(args.out.with_suffix(".md"), text + "\n")
    print(text)
    if args.update_card:
        ckpt = Path(result["moda"])
        card = read_model_card(ckpt)
        card["heldout_eval"] = {"command": "python -m talkingface.eval moda " + " ".join(sys.argv[2:]),
                                "clips": [c["clip"] for c in result["clips"]], "summary": result["summary"]}
        write_model_card(ckpt, card)
        md_path = ckpt.with_suffix(".md")
        old = md_path.read_text(encoding="utf-8").split("\n## Held-out evaluation")[0] if md_path.is_file() else ""
        write_text(md_path, old.rstrip("\n") + "\n\n## Held-out evaluation\n\n`" + card["heldout_eval"]["command"]
                   + "`\n\n" + text + "\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    {"compare": _compare, "selfrecon": _selfrecon, "crosshalf": _crosshalf, "summary": _summary,
     "moda": _moda}[args.command](args)
    return 0


if __name__ == "__main__":
    run_cli(main)
