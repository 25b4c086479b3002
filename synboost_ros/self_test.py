"""Start-up self-test: one generated street frame through the pipeline, outputs checked.

The frame is a street of the procedural world (``synboost_ros.data.world``, scene
``SELF_TEST_SCENE`` with anomalies). It runs twice (the first run warms the backend up; the
second is timed) on a temporal-fusion state of its own, so the camera stream's state is
untouched. Every map must have the frame's size, be finite and lie in its range (scores in
[0, 1], class ids below the number of classes), and the objects and the summary must be
finite. Broken outputs (e.g. weights that load but give NaN) fail the test; a pipeline slower
than the latency budget passes it, with a warning.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from synboost_ros.analysis import AnalysisSettings, analyze
from synboost_ros.classes import NUM_CLASSES
from synboost_ros.pipeline import OUTPUT_NAMES, PipelineResult
from synboost_ros.postprocess.temporal import TemporalFusion

SELF_TEST_SCENE = (0, 0)  # (world seed, scene index)
SELF_TEST_SIZE = (256, 512)
SCORE_MAPS = ("entropy", "distance", "perceptual", "dissimilarity", "anomaly")


@dataclass(frozen=True)
class SelfTestResult:
    """What the self-test found."""

    problems: tuple[str, ...]
    latency_ms: float
    budget_ms: float

    @property
    def passed(self) -> bool:
        """The outputs are all well formed."""
        return not self.problems

    @property
    def within_budget(self) -> bool:
        """The timed run took no longer than the budget."""
        return self.latency_ms <= self.budget_ms

    def describe(self) -> str:
        """One line: passed (and how fast), or failed and why."""
        timing = f"{self.latency_ms:.1f} ms for a {SELF_TEST_SIZE[1]}x{SELF_TEST_SIZE[0]} frame"
        if not self.passed:
            return "failed: " + "; ".join(self.problems)
        if not self.within_budget:
            return f"passed, but slow: {timing} > latency_budget_ms {self.budget_ms:g}"
        return f"passed: {timing} (latency_budget_ms {self.budget_ms:g})"


def self_test_image() -> np.ndarray:
    """The generated street frame (RGB uint8, ``SELF_TEST_SIZE``)."""
    from synboost_ros.data.world import render_scene, sample_scene

    seed, index = SELF_TEST_SCENE
    return render_scene(sample_scene(seed, index, anomalies=True), SELF_TEST_SIZE).image


def output_problems(result: PipelineResult, size: tuple[int, int]) -> list[str]:
    """Every output that is missing, of the wrong size, not finite or out of its range."""
    problems = []
    for name in OUTPUT_NAMES:
        array = getattr(result, name)
        if array is None:
            problems.append(f"{name} is missing")
            continue
        if array.shape[:2] != size:
            problems.append(f"{name} is {array.shape[:2]}, not the frame's {size}")
            continue
        values = np.asarray(array, dtype=np.float64)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            problems.append(f"{name} has {bad} non-finite values of {values.size}")
        elif name in SCORE_MAPS and (values.min() < 0.0 or values.max() > 1.0):
            problems.append(f"{name} leaves [0, 1]: {values.min():.3g}..{values.max():.3g}")
        elif name == "semantic" and values.max() >= NUM_CLASSES:
            problems.append(f"semantic has class id {int(values.max())} >= {NUM_CLASSES}")
    return problems


def analysis_problems(result: PipelineResult, settings: AnalysisSettings) -> list[str]:
    """Problems of the objects and the summary of a well-formed result."""
    analysis = analyze(result, settings)
    values = [analysis.summary.max_score, analysis.summary.anomalous_share]
    for obj in analysis.objects.objects:
        values += [obj.mean_score, obj.max_score]
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        return ["the objects or the summary hold scores outside [0, 1]"]
    return []


def run_self_test(
    pipeline: Any,
    budget_ms: float,
    settings: AnalysisSettings | None = None,
    image: np.ndarray | None = None,
) -> SelfTestResult:
    """Run the self-test on ``pipeline`` (an ``AnomalyPipeline`` or a stand-in)."""
    image = self_test_image() if image is None else image
    settings = settings or AnalysisSettings()
    temporal = TemporalFusion()
    pipeline(image, temporal=temporal)
    start = time.perf_counter()
    result = pipeline(image, temporal=temporal)
    latency_ms = (time.perf_counter() - start) * 1000.0
    problems = output_problems(result, image.shape[:2])
    if not problems:
        problems = analysis_problems(result, settings)
    return SelfTestResult(tuple(problems), latency_ms, budget_ms)
