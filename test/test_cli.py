"""Smoke tests of ``synboost infer``, ``export onnx`` and ``bench`` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from synboost_ros import model_loading
from synboost_ros.backends.tensorrt.api import tensorrt_installed
from synboost_ros.cli.main import main
from synboost_ros.config import MODEL_PARTS, get_preset
from synboost_ros.weights import MANIFEST_NAME, Manifest

ROOT = Path(__file__).resolve().parent.parent
MAPS = ("semantic", "entropy", "distance", "perceptual", "dissimilarity", "anomaly", "overlay")


def test_infer_writes_every_map_at_input_resolution(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "frame.png"), image)
    out = tmp_path / "out"
    code = main(
        [
            "infer",
            str(tmp_path / "frame.png"),
            "--out",
            str(out),
            "--random-weights",
            "--backend",
            "torch",
        ]
    )
    assert code == 0
    for name in (*MAPS, "synthesized"):
        written = cv2.imread(str(out / f"frame_{name}.png"))
        assert written is not None and written.shape == (720, 1280, 3), name


def test_infer_reports_missing_images(tmp_path: Path, capsys) -> None:
    code = main(["infer", str(tmp_path / "absent.png"), "--out", str(tmp_path), "--random-weights"])
    assert code == 2
    assert "absent.png" in capsys.readouterr().err


def test_export_onnx_writes_three_fixed_shape_graphs(tmp_path: Path, capsys) -> None:
    code = main(["export", "onnx", "--out", str(tmp_path), "--random-weights"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"segmentation", "synthesis", "dissimilarity"}
    graph = onnx.load(str(tmp_path / "segmentation.onnx"))
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 256, 512] == summary["segmentation"]["inputs"]["image"]
    outputs = {o.name for o in onnx.load(str(tmp_path / "dissimilarity.onnx")).graph.output}
    assert outputs == {"perceptual", "dissimilarity", "anomaly"}


def test_bench_prints_one_json_object_with_stage_percentiles(capsys) -> None:
    code = main(
        [
            "bench",
            "--random-weights",
            "--backend",
            "onnxruntime",
            "--compare",
            "torch",
            "--size",
            "120x160",
            "--iters",
            "2",
            "--warmup",
            "1",
            "--peak-seconds",
            "0.05",
            "--json",
        ]
    )
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["backend"] == "onnxruntime" and report["preset"] == "edge"
    assert report["size"] == [120, 160] and report["fps"] > 0
    assert set(report["total_ms"]) == {"p50", "p95"}
    for stage in ("segmentation", "synthesis", "dissimilarity"):
        assert report["stages"][stage]["p95"] >= report["stages"][stage]["p50"] > 0
    assert report["compare"]["torch"]["backend"] == "torch"
    assert (report["layout"], report["compare"]["torch"]["layout"]) == ("nchw", "channels_last")
    peaks = report["peak_gflops_per_s"]
    assert set(peaks) == {"fp32", "bf16"} and min(peaks.values()) > 0
    for stage in ("segmentation", "synthesis", "dissimilarity", "total"):
        row = report["efficiency"][stage]
        assert row["gflop"] > 0 and row["gflops_per_s"] > 0
        assert row["peak_share"] == pytest.approx(row["gflops_per_s"] / peaks["fp32"], abs=1e-3)


@pytest.mark.parametrize("size", ["256", "0x5", "axb"])
def test_bench_refuses_bad_sizes(size: str) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--random-weights", "--size", size])


@pytest.mark.parametrize(
    ("flags", "preset", "weights", "random_weights"),
    [
        (["--weights", "{light}"], "light", "{light}", False),  # the weights' preset
        (["--weights", "{light}", "--preset", "edge"], "edge", "{light}", False),
        (["--random-weights"], "edge", None, True),
    ],
)
def test_ablation_takes_the_preset_of_its_weights(
    tmp_path: Path, monkeypatch, capsys, flags, preset, weights, random_weights
) -> None:
    light = tmp_path / "light"
    light.mkdir()
    manifest = Manifest(get_preset("light"), files={part: {} for part in MODEL_PARTS})
    (light / MANIFEST_NAME).write_text(json.dumps(manifest.to_json()))
    asked = []

    def load_or_random_model(*arguments):
        asked.append(arguments)
        raise ValueError("not loaded in this test")

    monkeypatch.setattr(model_loading, "load_or_random_model", load_or_random_model)
    flags = [flag.format(light=light) for flag in flags]
    command = ["ablation", "--data", str(tmp_path), "--format", "folder", "--device", "cpu"]
    assert main([*command, *flags]) == 2
    assert "not loaded in this test" in capsys.readouterr().err
    expected_weights = None if weights is None else weights.format(light=light)
    assert asked == [(preset, expected_weights, random_weights)]


def run_synboost(*args: str) -> subprocess.CompletedProcess:
    """``synboost ARGS`` as its own process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "synboost_ros.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


MISSING = [
    pytest.param(
        ["--device", "cuda"],
        "device 'cuda' requested but torch sees no CUDA device",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without GPU"),
        id="cuda",
    ),
    pytest.param(
        ["--backend", "tensorrt"],
        "backend tensorrt: TensorRT is not installed",
        marks=pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed"),
        id="tensorrt",
    ),
]


@pytest.mark.parametrize(("flags", "message"), MISSING)
def test_a_missing_device_or_backend_is_one_line_and_exit_code_2(tmp_path, flags, message):
    cv2.imwrite(str(tmp_path / "frame.png"), np.zeros((64, 96, 3), dtype=np.uint8))
    args = ["infer", str(tmp_path / "frame.png"), "--out", str(tmp_path / "out"), *flags]

    plain = run_synboost(*args)
    debug = run_synboost("--debug", *args)

    assert plain.returncode == 2
    lines = plain.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("synboost infer: error: "), plain.stderr
    assert message in lines[0] and "Traceback" not in plain.stderr
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "BackendUnavailableError" in debug.stderr and message in debug.stderr
