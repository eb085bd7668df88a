"""Audio model speed: streaming cost per 40 ms chunk and offline real-time factor (CPU by default).

Stages (median of >= 5 runs after a warm-up):
- ``stream_chunk``: ``AudioModel.interface_frame`` over every 640-sample chunk of the speech
  (fbank + one LSTM step with carried state), reported per chunk; target < 1 ms on CPU;
- ``stream_fbank``: the fbank part of that alone;
- ``offline``: ``AudioModel.interface_wav`` on the whole array (real-time factor = time / duration);
- ``offline_file``: the same from the file path (ffmpeg decode included).

Input: ``dh_live/video_data/audio0.wav`` (7.6 s) from the sample data, or ``--wav``; ``--quick``
uses its first 3 s. Model: the shipped ``checkpoint/audio.pkl`` or ``--checkpoint``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from common import BenchReport, bench_argparser, measure

QUICK_SECONDS = 3.0


def main(argv=None) -> int:
    parser = bench_argparser(__doc__.split("\n", 1)[0])
    parser.add_argument("--wav", type=Path, default=None, help="speech file (default: the original's audio0.wav)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="Audio2Feature checkpoint")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    report = BenchReport("audio", args)

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    import torch

    # Lazy: loaded after argument parsing, so --help and argument errors answer at once.
    from talkingface.audio_features import StreamingFbank
    from talkingface.audio_model import AudioModel
    from talkingface.util.media import load_audio
    from talkingface.util.sample_data import sample_path

    torch.set_num_threads(max(1, args.threads))
    wav = args.wav or sample_path("dh_live", "video_data", "audio0.wav")
    audio = load_audio(wav)
    if args.quick:
        audio = audio[: int(QUICK_SECONDS * 16000)]
    n = len(audio) // 640
    chunks = audio[: n * 640].reshape(n, 640)
    seconds = len(audio) / 16000
    model = AudioModel(args.checkpoint, device=report.device)
    report.note("audio", f"{Path(wav).name} ({seconds:.2f} s, {n} chunks)")
    report.note("checkpoint", str(model.checkpoint.name))
    report.note("torch_threads", torch.get_num_threads())
    report.note("streaming_lookahead_frames", model.lookahead_frames)

    def stream():
        model.reset()
        for c in chunks:
            model.interface_frame(c)

    def fbank_only():
        fb = StreamingFbank()
        for c in chunks:
            fb.accept(c)

    report.add(measure(stream, "stream_chunk", items=n, unit="chunk", audio_seconds=n * 0.04,
                       runs=args.runs, warmup=args.warmup))
    cpu = []
    for _ in range(max(args.runs, 5)):
        t0 = time.process_time()
        stream()
        cpu.append((time.process_time() - t0) / n * 1000.0)
    # CPU time is what one chunk costs this process; wall time also counts waiting on a busy machine
    report.note("stream_chunk_cpu_ms_median", round(float(np.median(cpu)), 3))
    report.add(measure(fbank_only, "stream_fbank", items=n, unit="chunk", audio_seconds=n * 0.04,
                       runs=args.runs, warmup=args.warmup))
    report.add(measure(lambda: model.interface_wav(audio), "offline", items=int(np.ceil(len(audio) / 640)),
                       audio_seconds=seconds, runs=args.runs, warmup=args.warmup))
    if not args.quick:
        report.add(measure(lambda: model.interface_wav(wav), "offline_file", items=int(np.ceil(len(audio) / 640)),
                           audio_seconds=seconds, runs=args.runs, warmup=args.warmup))
    return report.finish()


if __name__ == "__main__":
    from talkingface.util.cli import run_cli

    run_cli(main)
