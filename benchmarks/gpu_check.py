"""Driver of ``gpu_check.sh``: environment, CUDA tests, bench matrix and sweep, as JSON files.

Every bench cell is ``synboost bench --json`` run in this process (imports and CUDA start-up
paid once), written to its own file as soon as it ends, so a run stopped early keeps what it
measured. ``light`` runs random weights (no download: timing only, the maps are meaningless;
said in each file's ``mode.weights``), ``edge`` its shipped weights. Cells that would start
after ``--budget-s`` are recorded as skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CUDA_TESTS = "test/test_cuda_pipeline.py"
PRESETS = ("light", "edge")
PRECISIONS = ("fp32", "fp16")
GRAPHS = ("off", "on")


@dataclass(frozen=True)
class Profile:
    """Sizes and counts of one kind of run."""

    name: str
    device: str
    camera: str
    stage_sizes: tuple[str, str] | None  # (segmentation, synthesis); None = the preset's
    iters: int
    warmup: int
    sweep: tuple[tuple[str, str], ...]  # light, fp16, graphs on, at these stage sizes
    sweep_iters: int
    budget_s: float


GPU = Profile(
    name="gpu",
    device="cuda",
    camera="1024x2048",
    stage_sizes=None,
    iters=50,
    warmup=5,
    sweep=(
        ("256x512", "128x256"),
        ("512x1024", "256x512"),
        ("768x1536", "384x768"),
        ("1024x2048", "512x1024"),
    ),
    sweep_iters=20,
    budget_s=420.0,
)
CPU_TINY = Profile(
    name="cpu-tiny",
    device="cpu",
    camera="96x160",
    stage_sizes=("192x192", "64x64"),
    iters=1,
    warmup=1,
    sweep=(("192x192", "64x64"), ("192x256", "64x128")),
    sweep_iters=1,
    budget_s=120.0,
)


def main(argv: list[str] | None = None) -> int:
    """Run every step; 0 when the CUDA tests passed (or were skipped on the CPU) and every
    bench cell ran."""
    parser = argparse.ArgumentParser(prog="gpu_check.sh", description=__doc__)
    parser.add_argument("--cpu-tiny", action="store_true", help="the CPU rehearsal")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--budget-s", type=float, default=None, help="start no cell after")
    args = parser.parse_args(argv)
    profile = CPU_TINY if args.cpu_tiny else GPU
    out = args.out or default_out(profile)
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget_s if args.budget_s is not None else profile.budget_s
    start = time.monotonic()
    write(out / "environment.json", environment(profile))
    tests = cuda_tests(out)
    write(out / "cuda_tests.json", tests)
    cells = []
    for preset in PRESETS:
        for precision in PRECISIONS:
            for graphs in GRAPHS:
                name = f"bench/{preset}_{precision}_graphs-{graphs}"
                flags = cell_flags(profile, preset, precision, graphs, profile.stage_sizes)
                cells.append(run_cell(out, name, flags, profile.iters, profile, start, budget))
    for segmentation, synthesis in profile.sweep:
        name = f"sweep/light_fp16_graphs-on_seg-{segmentation}_syn-{synthesis}"
        flags = cell_flags(profile, "light", "fp16", "on", (segmentation, synthesis))
        cells.append(run_cell(out, name, flags, profile.sweep_iters, profile, start, budget))
    summary = {
        "profile": profile.name,
        "seconds": round(time.monotonic() - start, 1),
        "cuda_tests": {k: tests[k] for k in ("exit_code", "passed", "failed", "skipped")},
        "cells": cells,
    }
    write(out / "summary.json", summary)
    print(json.dumps(summary, indent=1))
    ran = all(cell["status"] == "ok" for cell in cells)
    return 0 if tests["exit_code"] in (0, 5) and tests["failed"] == 0 and ran else 1


def default_out(profile: Profile) -> Path:
    """$OUT, else benchmarks/results/<profile>-<UTC time>."""
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / f"gpu_check-{profile.name}"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return ROOT / "benchmarks" / "results" / f"{profile.name}-{stamp}"


def write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1) + "\n")


def command_output(command: list[str]) -> str | None:
    """A command's stripped stdout, None when it cannot run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def environment(profile: Profile) -> dict[str, Any]:
    """GPU name, driver, torch, CUDA and cuDNN versions, Python, the commit."""
    import torch

    found: dict[str, Any] = {
        "profile": profile.name,
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "commit": command_output(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "driver": command_output(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        ),
    }
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        found.update(
            gpu=properties.name,
            compute_capability=f"{properties.major}.{properties.minor}",
            gpu_memory_mib=round(properties.total_memory / 2**20),
            multiprocessors=properties.multi_processor_count,
        )
    return found


def cuda_tests(out: Path) -> dict[str, Any]:
    """pytest on the CUDA tests (skipped without a GPU), its log and junit XML in ``out``."""
    junit = out / "cuda_tests.xml"
    command = [sys.executable, "-m", "pytest", CUDA_TESTS, "-q", "-rA", "-s"]
    done = subprocess.run(
        [*command, f"--junitxml={junit}"], cwd=ROOT, capture_output=True, text=True
    )
    (out / "cuda_tests.log").write_text(done.stdout + done.stderr)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if junit.exists():
        import xml.etree.ElementTree as ElementTree

        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        total = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        counts = {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}
    return {"command": " ".join(command), "exit_code": done.returncode, **counts}


def cell_flags(
    profile: Profile, preset: str, precision: str, graphs: str, sizes: tuple[str, str] | None
) -> list[str]:
    """``synboost bench`` flags of one cell."""
    flags = ["--preset", preset, "--device", profile.device, "--camera", profile.camera]
    flags += ["--precision", precision, "--graphs", graphs, "--backend", "torch"]
    flags += ["--device-resident", "on", "--outputs", "anomaly", "semantic"]
    if preset == "light":
        flags.append("--random-weights")
    if sizes is not None:
        flags += ["--segmentation-size", sizes[0], "--synthesis-size", sizes[1]]
    return flags


def run_cell(
    out: Path,
    name: str,
    flags: list[str],
    iters: int,
    profile: Profile,
    start: float,
    budget: float,
) -> dict[str, Any]:
    """One ``synboost bench --json`` in this process; its JSON (or error) to ``out/name``."""
    from synboost_ros.cli.main import main as synboost

    record: dict[str, Any] = {"cell": name, "flags": flags}
    if time.monotonic() - start > budget:
        record["status"] = "skipped: time budget"
        write(out / f"{name}.json", record)
        return record
    _reset_gpu_memory()
    argv = ["bench", *flags, "--iters", str(iters), "--warmup", str(profile.warmup), "--json"]
    stdout, stderr = io.StringIO(), io.StringIO()
    began = time.monotonic()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = synboost(argv)
    record["seconds"] = round(time.monotonic() - began, 1)
    if code != 0:
        record.update(status=f"failed: exit {code}", error=stderr.getvalue()[-2000:])
    else:
        report = json.loads(stdout.getvalue().strip().splitlines()[-1])
        record.update(status="ok", report=report)
        print(
            f"{name}: {report['fps']:.1f} fps, {report['precision']}, "
            f"graphs {report['mode']['graphs']}, {report['throughput']['frame_tflops']} TFLOP/s",
            flush=True,
        )
    write(out / f"{name}.json", record)
    return {k: v for k, v in record.items() if k != "report"} | _headline(record)


def _headline(record: dict[str, Any]) -> dict[str, Any]:
    """The figures of a cell for the summary."""
    report = record.get("report")
    if report is None:
        return {}
    return {
        "precision": report["precision"],
        "graphs": report["mode"]["graphs"],
        "fps": report["fps"],
        "total_ms_p50": report["total_ms"]["p50"],
        "frame_tflops": report["throughput"]["frame_tflops"],
        "gpu_memory": report["gpu_memory"],
    }


def _reset_gpu_memory() -> None:
    """Free the previous cell's pipeline and restart the peak-memory counter."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    sys.exit(main())
