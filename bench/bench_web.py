"""Browser player capacity: ms per frame and frames per second in headless Chromium on this machine.

Starts ``serve_web.py`` on 127.0.0.1 with the sample avatar's pack, opens the player in the system's
headless Chromium (SwiftShader WebGL2, ONNX Runtime Web wasm, 1 thread), plays the sample speech in
file mode and reads the player's own per-frame timings: the whole frame (read the video frame's mouth
rect, crop, two WebGL2 passes, DINet_mini pipeline, paste) and each stage; ``fps capacity`` = 1000 /
median ms per frame; ``fps shown`` = frames composed per second of playback (the video runs at 25).
Target >= 25 fps; reported, not asserted. A second phase composes the frames without drawing them
(``pipeline_only``): on software GL the page's own compositing of the 720x1080 frame shares the GPU
process with the mouth render's read-back, so the two figures bracket what a real GPU changes. ``--shots DIR`` also saves a screenshot and a frame dump
(PNG frames of the canvas while the avatar speaks).

Usage: python bench/bench_web.py [--quick] [--json OUT] [--shots DIR] [--models DIR] [--avatar DIR]
"""
from __future__ import annotations

import base64
import shutil
import tempfile
import time
from pathlib import Path

from common import BenchReport, Timing, bench_argparser

from talkingface.errors import UserInputError

DUMP_JS = """(async () => {
  const blob = await new Promise((r) => __player.canvas.toBlob(r, 'image/png'));
  const buf = new Uint8Array(await blob.arrayBuffer());
  let s = ''; for (let i = 0; i < buf.length; i += 0x8000) s += String.fromCharCode.apply(null, buf.subarray(i, i + 0x8000));
  return {png: btoa(s), row: (__player.frameLog[__player.frameLog.length - 1] || {}).row};
})()"""


def main(argv=None) -> int:
    parser = bench_argparser(__doc__.split("\n", 1)[0])
    parser.add_argument("--models", type=Path, default=None, help="folder of the exported ONNX models (default: export)")
    parser.add_argument("--avatar", type=Path, default=None, help="avatar or pack folder (default: the sample avatar)")
    parser.add_argument("--speech", default="sample-en", help="speech id the server knows (sample-en, sample-zh)")
    parser.add_argument("--shots", type=Path, default=None, help="save a screenshot and a frame dump here")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime Web wasm threads")
    args = parser.parse_args(argv)
    report = BenchReport("web", args)

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.web.cdp import Browser
    from talkingface.web.harness import Server, export_models, missing
    from talkingface.web.packs import PACK_FILES, pack_folder

    reason = missing()
    if reason:
        raise UserInputError(f"cannot run the browser bench: {reason}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_web_"))
    try:
        if args.avatar is None:
            # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
            from talkingface.sample_avatar import ensure_sample_mini_avatar

            args.avatar = ensure_sample_mini_avatar()
        folder = pack_folder(Path(args.avatar))
        if folder is None:
            raise UserInputError(f"{args.avatar} holds no asset pack")
        (tmp / "packs" / "bench").mkdir(parents=True)
        for name in PACK_FILES:
            shutil.copyfile(folder / name, tmp / "packs" / "bench" / name)
        models = args.models or export_models(tmp / "models")
        server = Server(tmp / "packs", tmp / "work", models)
        try:
            with Browser() as page:
                page.navigate(f"{server.url}?pack=bench&threads={args.threads}", wait_for="window.__ready")
                err = page.evaluate("window.__error || null")
                if err:
                    raise UserInputError(f"the player did not start: {err}")
                page.evaluate("__app.loadSelectedPack()")
                page.evaluate("""(async () => {
                  const bytes = await (await fetch('/audio/%s.wav')).arrayBuffer();
                  __player.stats.ms = []; __player.frameLog = [];
                  window.__speech = await __player.playSpeech(bytes);
                })()""" % args.speech)
                seconds = page.evaluate("__speech.duration")
                play = min(seconds, 3.0 if args.quick else seconds)
                dumps = []
                t0 = time.monotonic()
                while time.monotonic() - t0 < play + 0.5:
                    time.sleep(play / 6)
                    if args.shots is not None and len(dumps) < 6:
                        dumps.append(page.evaluate(DUMP_JS))
                if args.shots is not None:
                    args.shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(args.shots / "player.png")
                    for k, d in enumerate(dumps):
                        (args.shots / f"frame_{k}_row{d.get('row')}.png").write_bytes(base64.b64decode(d["png"]))
                summary = page.evaluate("import('/static/js/diagnostics.js').then((m) => m.timingSummary(__player))")
                per_frame = page.evaluate("__player.stats.ms.slice(5)")
                # phase 2: the same frames composed but not drawn (the page's own compositing excluded)
                page.evaluate("__player.headless = true; __player.stats.ms = []; __player.frameLog = []")
                time.sleep(play)
                pipeline = page.evaluate("__player.stats.ms.slice(3)")
                prefetch_ms = page.evaluate("__player.prefetchMs || null")
                gl_info = page.evaluate("__player.renderer.info")
        finally:
            server.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if len(per_frame) < 5:
        raise UserInputError(f"only {len(per_frame)} frames were composed: the machine is too loaded to measure")
    for stage in ("total", "crop", "gl", "network", "paste"):
        report.add(Timing(f"browser_{stage}", [m[stage] / 1000.0 for m in per_frame], items=1, warmup=5))
    if len(pipeline) >= 5:
        report.add(Timing("pipeline_only_total", [m["total"] / 1000.0 for m in pipeline], items=1, warmup=3))
        report.add(Timing("pipeline_only_gl", [m["gl"] / 1000.0 for m in pipeline], items=1, warmup=3))
    if prefetch_ms:
        report.note("mouth_rect_prefetch", f"{prefetch_ms / 1000:.1f} s once per avatar (software decode of 01.mp4)")
    med = summary["median_ms"]["total"]
    report.note("fps_capacity", f"{1000.0 / med:.1f} (target >= 25)")
    report.note("fps_shown", f"{summary['fps_shown']:.1f}" if summary["fps_shown"] else "n/a")
    report.note("frames", f"{summary['frames']} composed, {summary['dropped']} video frames skipped while busy")
    report.note("browser", f"headless Chromium, {gl_info}, ONNX Runtime Web wasm x{args.threads}")
    if args.shots is not None:
        report.note("shots", str(args.shots))
    for key, value in report.notes.items():
        print(f"{key}: {value}")
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
