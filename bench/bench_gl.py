"""Mini mouth renderer speed: milliseconds per frame for render + read-back (256x256 by default).

The committed wrap template, fitted to the canonical mean face with its lips at rest, is placed in a
mouth crop the way the asset pack places an avatar (``crop_mouth`` box -> size x size) and rendered with
blendshape weights and small landmark offsets that change every frame (so every frame uploads new
uniforms and targets). No sample data needed. Prints wall-clock and process-CPU milliseconds per frame
(on a machine shared with other jobs the wall clock includes waiting for a core).

    python bench/bench_gl.py                 # 250 frames per run, 256x256
    python bench/bench_gl.py --quick --size 512 --backend egl
"""
from __future__ import annotations

import os
import time

import numpy as np

from common import BenchReport, bench_argparser, measure


def main(argv=None) -> int:
    parser = bench_argparser("Mini mouth renderer: render + read-back per frame")
    parser.add_argument("--size", type=int, default=256, help="output size in pixels (default 256)")
    parser.add_argument("--backend", default="auto", choices=["auto", "egl", "glfw"], help="GL backend")
    args = parser.parse_args(argv)
    report = BenchReport("gl", args)

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.data.mouth_crop import crop_mouth
    from mini_live.obj.utils import load_bs_coef_std, load_bs_table, load_neutral_face, load_wrap_template
    from mini_live.obj.wrap_utils import newWrapModel, normalizeLips
    from mini_live.render import MouthRenderer
    from talkingface.run_utils import apply_pose, load_mean_face

    mean = load_mean_face()
    mesh = newWrapModel(load_wrap_template(), normalizeLips(mean, load_neutral_face()))
    x0, y0, x1, _ = crop_mouth(mean)
    scale = args.size / (x1 - x0)
    pose = np.diag([scale, scale, scale, 1.0])
    pose[:2, 3] = [-x0 * scale, -y0 * scale]
    base = apply_pose(pose, mesh.vertices[: mesh.num_targets])[:, :2]
    coef_std = load_bs_coef_std()

    frames = 25 if args.quick else 250
    rng = np.random.default_rng(0)
    t = np.arange(frames)
    weights = np.zeros((frames, len(coef_std)))
    weights[:, 0] = coef_std[0] * 1.5 * (1 + np.sin(t / 3.0))
    weights[:, 1:] = rng.normal(size=(frames, len(coef_std) - 1)) * coef_std[1:] * 0.5
    offsets = rng.normal(scale=1.0, size=(frames,) + base.shape)

    renderer = MouthRenderer(size=args.size, backend=args.backend)
    renderer.set_mesh(mesh)
    renderer.set_blendshapes(load_bs_table())
    out = {}

    cpu = []

    def run() -> None:
        c0 = time.process_time()
        for i in range(frames):
            out["img"] = renderer.render(base + offsets[i], pose, weights[i])
        cpu.append(time.process_time() - c0)

    timing = report.add(measure(run, name=f"render+readback {args.size}x{args.size}", items=frames,
                                runs=args.runs, warmup=args.warmup))
    # CPU time of this process (llvmpipe's rasteriser threads included): on a loaded machine the wall
    # clock also counts waiting for a core, this does not.
    cpu_ms = float(np.median(cpu[-len(timing.runs_s):])) / frames * 1e3
    print(f"render + read-back {args.size}x{args.size}: {timing.ms_per_item:.2f} ms/frame wall (median), "
          f"{cpu_ms:.2f} ms/frame CPU")
    report.note("cpu_ms_per_frame", round(cpu_ms, 3))
    report.note("load_average_1min", round(os.getloadavg()[0], 2))
    gl = renderer._gl
    report.note("renderer", gl.glGetString(gl.GL_RENDERER).decode())
    report.note("backend", renderer.backend)
    report.note("mesh", f"{len(mesh.vertices)} vertices, {len(mesh.faces)} triangles")
    report.note("target", "< 2 ms per frame")
    assert out["img"].shape == (args.size, args.size, 4)
    renderer.close()
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
