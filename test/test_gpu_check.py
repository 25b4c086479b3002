"""``benchmarks/gpu_check.sh --cpu-tiny``: the GPU script's CPU rehearsal, run as a user would,
and the JSON it leaves; and the bench's device figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synboost_ros.benchmark import BenchmarkReport
from synboost_ros.cli.main import main
from synboost_ros.device_bench import flop_rates

ROOT = Path(__file__).resolve().parent.parent
CELLS = [
    f"bench/{preset}_{precision}_graphs-{graphs}"
    for preset in ("light", "edge")
    for precision in ("fp32", "fp16")
    for graphs in ("off", "on")
]


@pytest.mark.timeout(300)
def test_the_cpu_rehearsal_runs_every_step_and_writes_its_json(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    # Every cell must run: the budget (the GPU run's guard) is lifted past the test's timeout,
    # so that a loaded CI machine cannot skip a cell.
    script = [str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu-tiny", "--budget-s", "1000"]
    done = subprocess.run(
        [*script, "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    environment = json.loads((tmp_path / "environment.json").read_text())
    assert environment["profile"] == "cpu-tiny" and environment["torch"]
    assert "gpu" not in environment and environment["cuda_available"] is False
    tests = json.loads((tmp_path / "cuda_tests.json").read_text())
    assert (tests["failed"], tests["passed"]) == (0, 0) and tests["skipped"] >= 5  # no GPU
    summary = json.loads((tmp_path / "summary.json").read_text())
    sweep = sorted(p.stem for p in (tmp_path / "sweep").glob("*.json"))
    assert len(sweep) == 2
    assert [c["cell"] for c in summary["cells"]] == [*CELLS, *(f"sweep/{s}" for s in sweep)]
    for name in CELLS:
        cell = json.loads((tmp_path / f"{name}.json").read_text())
        assert cell["status"] == "ok", cell
        report = cell["report"]
        preset, precision, graphs = Path(name).name.replace("graphs-", "").split("_")
        assert report["preset"] == preset and report["size"] == [96, 160]
        assert report["requested"] == {"precision": precision, "graphs": graphs}
        # On the CPU fp16 runs fp32 and graphs run eagerly: reported as what ran.
        assert (report["precision"], report["mode"]["graphs"]) == ("fp32", "off")
        assert report["mode"]["device_resident"] is True
        assert report["mode"]["stage_timer"] == "perf_counter"
        assert report["mode"]["weights"].startswith("random" if preset == "light" else "shipped")
        assert report["flops"]["total"] > 0 and report["throughput"]["frame_tflops"] > 0
        assert report["gpu_memory"] is None and report["outputs"] == ["anomaly", "semantic"]
        assert report["stages"]["segmentation"]["p50"] > 0


def test_flop_rates_divide_each_stage_by_its_own_time():
    report = BenchmarkReport(
        backend="torch",
        device="cuda",
        precision="fp16",
        preset="light",
        size=(1024, 2048),
        iterations=1,
        total_ms={"p50": 10.0, "p95": 11.0},
        stages={"segmentation": {"p50": 1.0, "p95": 1.0}, "synthesis": {"p50": 4.0, "p95": 4.0}},
        flops={"segmentation": 2e11, "synthesis": 4e12, "dissimilarity": 5e12, "total": 9.2e12},
    )
    rates = flop_rates(report)
    assert rates["frame_tflops"] == pytest.approx(920.0)
    assert rates["stage_tflops"] == {"segmentation": 200.0, "synthesis": 1000.0}


def test_bench_device_resident_on_a_backend_without_it_is_one_clear_error(capsys):
    argv = ["bench", "--random-weights", "--backend", "onnxruntime", "--device", "cpu"]
    assert main([*argv, "--device-resident", "on", "--iters", "1"]) == 2
    assert "backend onnxruntime cannot keep frames on its device" in capsys.readouterr().err
