"""Timing of the whole pipeline: warm-up, then per-stage and total percentiles; FLOPs per stage."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from synboost_ros.config import PipelineConfig, Size
from synboost_ros.flops import stage_flops


@dataclass
class BenchmarkReport:
    """Percentiles in milliseconds over the timed iterations, and FLOPs of one frame per stage
    (``flops.stage_flops``: 2 per multiply-accumulate) with their ``"total"``."""

    backend: str
    device: str
    precision: str
    preset: str
    size: Size
    iterations: int
    total_ms: dict[str, float]
    stages: dict[str, dict[str, float]]
    flops: dict[str, int]
    layout: str = "nchw"  # memory format the backend ran

    @property
    def fps(self) -> float:
        """Frames per second at the median total time."""
        return 1000.0 / self.total_ms["p50"]

    def to_json(self) -> dict:
        """The JSON object printed by ``synboost bench --json``."""
        return {
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "layout": self.layout,
            "preset": self.preset,
            "size": list(self.size),
            "iterations": self.iterations,
            "fps": round(self.fps, 3),
            "total_ms": self.total_ms,
            "stages": self.stages,
            "flops": self.flops,
        }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 of a list of milliseconds, rounded to microseconds."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(array, 50)), 3),
        "p95": round(float(np.percentile(array, 95)), 3),
    }


def run_benchmark(
    pipelines: list,
    size: Size,
    iterations: int,
    warmup: int = 3,
    seed: int = 0,
    outputs: Collection[str] | None = None,
) -> list[BenchmarkReport]:
    """Time each pipeline on one random camera image of ``size``, after ``warmup`` runs,
    computing the maps in ``outputs`` (None: all).

    Pipelines take turns frame by frame, so a change in machine load during the run
    affects all of them alike and the comparison stays fair.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    for pipeline in pipelines:
        for _ in range(warmup):
            pipeline(image, outputs)
    flops: dict[PipelineConfig, dict[str, int]] = {}
    for pipeline in pipelines:
        if pipeline.config not in flops:
            flops[pipeline.config] = stage_flops(pipeline.config)
    samples: list[dict[str, list[float]]] = [{} for _ in pipelines]
    for _ in tqdm(range(iterations), desc="bench", unit="round"):
        for pipeline, timings in zip(pipelines, samples, strict=True):
            for stage, ms in pipeline(image, outputs).timings_ms.items():
                timings.setdefault(stage, []).append(ms)
    return [
        _report(pipeline, timings, size, iterations, flops[pipeline.config])
        for pipeline, timings in zip(pipelines, samples, strict=True)
    ]


def _report(
    pipeline, timings: dict[str, list[float]], size: Size, iterations: int, flops: dict[str, int]
) -> BenchmarkReport:
    total = timings.pop("total")
    return BenchmarkReport(
        backend=pipeline.backend_name,
        device=pipeline.device,
        precision=pipeline.precision,
        preset=pipeline.config.preset,
        size=size,
        iterations=iterations,
        total_ms=percentiles(total),
        stages={stage: percentiles(values) for stage, values in timings.items()},
        flops=flops,
        layout=pipeline.backend.layout,
    )
