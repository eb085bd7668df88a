"""DINet_five_Ref speed: the per-frame cached-reference ``interface`` at 256x256 (CPU, or CUDA).

Stages (median of >= 5 runs after a warm-up, batch 1, float32, random weights and inputs: the
arithmetic does not depend on the values):
- ``ref_input``: encode the 5 references (once per avatar; 18.3 GMACs);
- ``interface``: one frame with the references cached (36.1 GMACs; what every output frame pays);
- ``forward``: both (54.4 GMACs, the README's "55,046 MFLOPs");
- ``render_frame`` (with ``--avatar``): RenderModel.interface on a prepared avatar, i.e. crop, mask,
  prompt, network and paste.

``--quick`` measures only ``interface`` and ``ref_input``. ``--face-size`` changes the crop side.
"""
from __future__ import annotations

from pathlib import Path

from common import BenchReport, bench_argparser, measure

GMACS = {"ref_input": 18.291, "interface": 36.102, "forward": 54.394}  # thop, docs/CHECKPOINTS.md §1


def main(argv=None) -> int:
    parser = bench_argparser(__doc__.split("\n", 1)[0])
    parser.add_argument("--face-size", type=int, default=256, help="face crop side (default 256)")
    parser.add_argument("--avatar", type=Path, default=None, help="DH_live avatar for the render_frame stage")
    args = parser.parse_args(argv)
    report = BenchReport("dinet", args)

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import numpy as np
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.models.DINet import DINet_five_Ref

    device = report.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    size = args.face_size
    torch.manual_seed(0)
    net = DINet_five_Ref(6, 30).to(device).eval()
    src = torch.rand(1, 3, size, size, device=device)
    prompt = torch.rand(1, 3, size, size, device=device)
    ref = torch.rand(1, 30, size, size, device=device)
    report.note("face_size", size)
    report.note("parameters", sum(p.numel() for p in net.parameters()))
    report.note("torch_threads", torch.get_num_threads())
    scale = (size / 256) ** 2
    report.note("gmacs_per_call", {k: round(v * scale, 2) for k, v in GMACS.items()})

    with torch.no_grad():
        net.ref_input(ref)
        t = report.add(measure(lambda: net.interface(src, prompt), "interface", runs=args.runs,
                               warmup=args.warmup, sync=sync))
        report.note("interface_gmacs_per_s", round(GMACS["interface"] * scale / t.median_s, 1))
        report.add(measure(lambda: net.ref_input(ref), "ref_input", runs=args.runs, warmup=args.warmup, sync=sync))
        if not report.quick:
            report.add(measure(lambda: net(src, prompt, ref), "forward", runs=args.runs, warmup=args.warmup,
                               sync=sync))

    if args.avatar is not None and not report.quick:
        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        import tempfile

        # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
        from talkingface.render_model import RenderModel

        with tempfile.TemporaryDirectory() as tmp:
            ckpt = Path(tmp) / "render.pth"
            torch.save(net.state_dict(), ckpt)
            model = RenderModel(device=device, face_size=size)
            model.loadModel(ckpt)
            model.reset_charactor(args.avatar)
        mouth = np.full((15, 30, 3), 128, np.uint8)
        report.add(measure(lambda: model.interface(mouth), "render_frame", runs=args.runs, warmup=args.warmup,
                           sync=sync))
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
