"""Per-stage times of one frame: ``lap(stage)`` closes a stage, ``finish()`` gives them all.

``PerfClock`` reads the host's ``perf_counter``; ``CudaEventClock`` records a CUDA event on
the current stream at each lap, so work that the host only enqueued is timed when the GPU
runs it (``finish`` waits for the last event). Both add ``total``, the first lap's start to
the last lap. torch is imported by ``CudaEventClock`` alone.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

TOTAL = "total"


class StageClock(Protocol):
    """What the pipeline times its stages with."""

    def lap(self, stage: str) -> None:
        """Close ``stage``: its time is from the previous lap (or the start) to now."""

    def finish(self) -> dict[str, float]:
        """Milliseconds per stage in lap order, then ``total``."""


class PerfClock:
    """Host wall-clock laps."""

    def __init__(self) -> None:
        self._start = self._tick = time.perf_counter()
        self._times: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Close ``stage`` now."""
        now = time.perf_counter()
        self._times[stage] = (now - self._tick) * 1000.0
        self._tick = now

    def finish(self) -> dict[str, float]:
        """The stage times and ``total``."""
        return {**self._times, TOTAL: (self._tick - self._start) * 1000.0}


class CudaEventClock:
    """Laps as CUDA events on the current stream of ``device`` (torch's CUDA)."""

    def __init__(self, device: Any) -> None:
        import torch

        self._torch = torch
        self._device = device
        self._start = self._record()
        self._events: list[tuple[str, Any]] = []

    def _record(self) -> Any:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record(self._torch.cuda.current_stream(self._device))
        return event

    def lap(self, stage: str) -> None:
        """Record the end of ``stage`` on the stream."""
        self._events.append((stage, self._record()))

    def finish(self) -> dict[str, float]:
        """Wait for the last event; the times between consecutive events, and ``total``."""
        if not self._events:
            return {TOTAL: 0.0}
        self._events[-1][1].synchronize()
        times, previous = {}, self._start
        for stage, event in self._events:
            times[stage] = float(previous.elapsed_time(event))
            previous = event
        return {**times, TOTAL: float(self._start.elapsed_time(previous))}
