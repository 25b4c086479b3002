"""The common start of every trainer: output layout, resume point, runtime, seed, log, model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from synboost_ros.training.metric_log import MetricLogger
from synboost_ros.training.model_io import StartingPoint, starting_model
from synboost_ros.training.options import RunLayout, TrainOptions
from synboost_ros.training.runtime import Runtime, seed_everything, training_runtime


@dataclass
class TrainingSession:
    """What a trainer needs before its first step."""

    started: float  # time.perf_counter() at the start, for the wall time in provenance
    layout: RunLayout
    resume_from: Path | None
    runtime: Runtime
    logger: MetricLogger
    start: StartingPoint


@contextmanager
def training_session(options: TrainOptions) -> Iterator[TrainingSession]:
    """Refuse to overwrite a run unless resuming, set up the runtime (torchrun aware), seed,
    open the metric log and load the starting model."""
    started = time.perf_counter()
    layout = RunLayout(options.out)
    resume_from = layout.resume_checkpoint(options.resume)
    with training_runtime(options.device, options.amp) as runtime:
        seed_everything(options.seed)
        logger = MetricLogger(layout.state_dir, runtime.is_main)
        yield TrainingSession(
            started, layout, resume_from, runtime, logger, starting_model(options)
        )
