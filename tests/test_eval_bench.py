"""bench/: the shared timing helper and run_all.py end to end (quick face-mesh benchmark, real clip)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from common import BenchReport, bench_argparser, machine_info, markdown_table, measure  # noqa: E402


def test_measure_takes_median_of_at_least_five_runs():
    a = np.random.default_rng(0).random((300, 300))
    calls = []

    def work():
        calls.append(1)
        np.linalg.svd(a)

    t = measure(work, "svd", runs=3, warmup=2, items=10)
    assert len(t.runs_s) == 5 and len(calls) == 7  # raised to 5 recorded runs, + 2 warm-ups
    assert min(t.runs_s) <= t.median_s <= max(t.runs_s)
    assert t.ms_per_item == pytest.approx(100.0 * t.median_s)
    assert t.rtf is None
    t.audio_seconds = 2.0
    assert t.rtf == pytest.approx(t.median_s / 2.0)


def test_report_writes_json_with_machine_and_memory(tmp_path, capsys):
    args = bench_argparser("test").parse_args(["--quick", "--json", str(tmp_path / "r.json"), "--device", "cpu"])
    report = BenchReport("unit", args)
    report.add(measure(lambda: sorted(range(10000)), "sort", items=1, unit="call"))
    report.note("n", 10000)
    assert report.finish() == 0
    assert "| unit | sort |" in capsys.readouterr().out
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["quick"] is True and res["machine"]["device"] == "cpu"
    assert res["machine"]["cpu_count"] >= 1 and res["machine"]["torch_threads"] >= 1
    assert res["memory"]["peak_rss_mb"] > 10
    assert res["timings"][0]["name"] == "sort" and len(res["timings"][0]["runs_s"]) == 5
    assert "| unit | sort |" in markdown_table([res])
    assert machine_info()["cpu_usable"] >= 1


def test_run_all_quick_preprocess(sample_data, tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--only", "preprocess",
                           "--device", "cpu", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (js,) = tmp_path.glob("*-quick.json")
    (md,) = tmp_path.glob("*-quick.md")
    report = json.loads(js.read_text())
    assert report["quick"] and not report["failed"]
    (pre,) = report["results"]
    stages = {t["name"]: t for t in pre["timings"]}
    assert {"decode", "face_mesh_video", "face_mesh_steady"} <= set(stages)
    assert stages["face_mesh_steady"]["items"] == 30 and stages["face_mesh_steady"]["items_per_s"] > 5
    assert "face_mesh_steady" in md.read_text()
