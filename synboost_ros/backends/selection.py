"""``backend: auto`` on a CPU with bf16 instructions: time the candidate backends on this
machine and keep the fastest.

Each candidate runs one warm-up frame, then ``rounds`` frames, the candidates taking turns so
that a change in load affects them alike; the smallest median time per frame wins. Plain numpy
inputs of the stage shapes (``stage_io``), so no torch is needed here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from synboost_ros.backends.base import Backend
from synboost_ros.config import STAGE_NAMES, PipelineConfig
from synboost_ros.stage_io import stage_specs

PROBE_ROUNDS = 3
StageInputs = dict[str, dict[str, np.ndarray]]


def probe_inputs(config: PipelineConfig, seed: int = 0) -> StageInputs:
    """Inputs of every stage for ``config``: images and maps uniform in [0, 1), class ids
    uniform over the classes, the configuration's ensemble weights."""
    rng = np.random.default_rng(seed)
    inputs: StageInputs = {}
    for stage, spec in stage_specs(config).items():
        feeds = {}
        for tensor in spec.inputs:
            if tensor.name == "ensemble_weights":
                feeds[tensor.name] = np.asarray(config.ensemble_weights, dtype=np.float32)
            elif tensor.dtype == np.int32:
                feeds[tensor.name] = rng.integers(0, config.num_classes, tensor.shape, np.int32)
            else:
                feeds[tensor.name] = rng.random(tensor.shape, dtype=np.float32)
        inputs[stage] = feeds
    return inputs


def label(backend: Backend) -> str:
    """How a candidate is named in the log: backend and precision."""
    return f"{backend.name} {backend.precision}"


def fastest(
    backends: Sequence[Backend],
    inputs: StageInputs,
    rounds: int = PROBE_ROUNDS,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[Backend, dict[str, float]]:
    """The backend with the smallest median seconds per frame, and each one's median."""
    if not backends:
        raise ValueError("no backend to choose from")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    for backend in backends:
        _frame(backend, inputs, clock)
    samples: list[list[float]] = [[] for _ in backends]
    for _ in range(rounds):
        for backend, times in zip(backends, samples, strict=True):
            times.append(_frame(backend, inputs, clock))
    medians = [float(np.median(times)) for times in samples]
    best = int(np.argmin(medians))
    return backends[best], {label(b): m for b, m in zip(backends, medians, strict=True)}


def _frame(backend: Backend, inputs: StageInputs, clock: Callable[[], float]) -> float:
    start = clock()
    for stage in STAGE_NAMES:
        backend.run(stage, inputs[stage])
    return clock() - start
