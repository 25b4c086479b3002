"""Frame counters, sliding-window latencies and rates, and the health verdicts: a camera's
(``evaluate_health``) and the node's over its cameras (``node_health``).

Plain Python: the clock is injected (``time.monotonic`` by default) so tests can drive it.
All methods of ``PipelineStats`` are thread-safe: the subscription callback, the worker
thread and the diagnostics timer use one instance (per camera) together.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

# Stages reported in diagnostics, in order; "total" is decode + pipeline + objects + publish.
# temporal and gating run only when switched on, objects only when someone uses them (NaN
# until they first run).
STAGES = (
    "decode", "segmentation", "synthesis", "dissimilarity", "temporal", "gating", "objects",
    "publish", "total",
)  # fmt: skip
DEFAULT_WINDOW_FRAMES = 100
DEFAULT_RATE_WINDOW_S = 5.0
# ERROR once this many frames in a row failed.
DEFAULT_FAILURE_LIMIT = 5
# WARN when the input has publishers but no frame came for this long.
DEFAULT_SILENCE_S = 3.0
# Frames of one camera between being counted in and counted out: one waiting in the worker's
# slot, one being processed, one arriving (counted in, not yet counted as dropping the
# waiting one).
MAX_IN_PROGRESS = 3


class Level(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2


class SlidingWindow:
    """The last ``size`` samples, with percentiles and maximum."""

    def __init__(self, size: int = DEFAULT_WINDOW_FRAMES) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size}")
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        """Append a sample, forgetting the oldest when full."""
        self._values.append(float(value))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100, linear interpolation); NaN when empty."""
        return float(np.percentile(self._values, q)) if self._values else math.nan

    def maximum(self) -> float:
        """Largest sample in the window; NaN when empty."""
        return max(self._values) if self._values else math.nan


class RateMeter:
    """Event rate over the last ``window_s`` seconds of a monotonic clock."""

    def __init__(
        self, window_s: float = DEFAULT_RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"rate window must be > 0 s, got {window_s}")
        self._window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()

    def tick(self) -> None:
        """Record one event now."""
        self._times.append(self._clock())
        self._forget_old()

    def rate_hz(self) -> float:
        """Events per second: (n - 1) / (now - oldest); decays to 0 when events stop."""
        self._forget_old()
        if len(self._times) < 2:
            return 0.0
        elapsed = self._clock() - self._times[0]
        return (len(self._times) - 1) / elapsed if elapsed > 0 else 0.0

    def _forget_old(self) -> None:
        horizon = self._clock() - self._window_s
        while self._times and self._times[0] < horizon:
            self._times.popleft()


@dataclass
class FrameCounters:
    """Totals since start."""

    frames_in: int = 0  # received by the subscription
    frames_out: int = 0  # processed and published
    frames_dropped: int = 0  # replaced by a newer frame before the worker took them
    frames_bad: int = 0  # failed to decode or to run
    frames_idle: int = 0  # decoded but not run: no output had subscribers
    frames_lost: int = 0  # lost before the subscription callback, as the middleware reports

    @property
    def frames_finished(self) -> int:
        """Frames with an outcome: published, dropped, bad or idle."""
        return self.frames_out + self.frames_dropped + self.frames_bad + self.frames_idle

    @property
    def frames_in_progress(self) -> int:
        """Frames received without an outcome yet (waiting or being processed)."""
        return self.frames_in - self.frames_finished

    def accounting_holds(self, cameras: int = 1) -> bool:
        """Whether every received frame has an outcome or is one of the few in progress."""
        return 0 <= self.frames_in_progress <= MAX_IN_PROGRESS * cameras

    def accounting(self, cameras: int = 1) -> str:
        """The identity ``frames_in = out + dropped + bad + idle + in_progress`` with the
        numbers, and whether it holds (in progress between 0 and ``MAX_IN_PROGRESS`` per
        camera)."""
        verdict = "holds" if self.accounting_holds(cameras) else "BROKEN"
        return (
            f"frames_in {self.frames_in} = out {self.frames_out} + dropped "
            f"{self.frames_dropped} + bad {self.frames_bad} + idle {self.frames_idle} + "
            f"in_progress {self.frames_in_progress}: {verdict}"
        )

    def key_values(self, cameras: int = 1) -> list[tuple[str, str]]:
        """Every counter, ``frames_in_progress`` and ``accounting``, as diagnostic pairs."""
        pairs = [(name, str(value)) for name, value in vars(self).items()]
        pairs.append(("frames_in_progress", str(self.frames_in_progress)))
        return [*pairs, ("accounting", self.accounting(cameras))]


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of everything ``PipelineStats`` knows."""

    counters: FrameCounters
    rate_in_hz: float
    rate_out_hz: float
    rate_idle_hz: float
    stage_ms: dict[str, tuple[float, float]]  # stage -> (p50, p95)
    e2e_ms: tuple[float, float, float]  # (p50, p95, max) of the window
    consecutive_failures: int
    last_error: str
    silent_s: float = 0.0  # since the last frame arrived (or since start)
    e2e_max_since_start_ms: float = math.nan

    def key_values(self) -> list[tuple[str, str]]:
        """Diagnostic key/value pairs (numbers as text, NaN when there is no sample yet)."""
        pairs = self.counters.key_values()
        pairs += [("rate_in_hz", _fmt(self.rate_in_hz)), ("rate_out_hz", _fmt(self.rate_out_hz))]
        for stage, (p50, p95) in self.stage_ms.items():
            pairs += [(f"{stage}_ms_p50", _fmt(p50)), (f"{stage}_ms_p95", _fmt(p95))]
        p50, p95, worst = self.e2e_ms
        pairs += [("e2e_ms_p50", _fmt(p50)), ("e2e_ms_p95", _fmt(p95)), ("e2e_ms_max", _fmt(worst))]
        pairs += [("e2e_ms_max_since_start", _fmt(self.e2e_max_since_start_ms))]
        pairs += [("consecutive_failures", str(self.consecutive_failures))]
        pairs += [("last_error", self.last_error)]
        return pairs


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def total_key_values(snapshots: Iterable[StatsSnapshot]) -> list[tuple[str, str]]:
    """Diagnostic key/value pairs of several cameras together: counters and rates summed."""
    snapshots = list(snapshots)
    totals = FrameCounters()
    for snapshot in snapshots:
        for name, value in vars(snapshot.counters).items():
            setattr(totals, name, getattr(totals, name) + value)
    pairs = totals.key_values(len(snapshots))
    for rate in ("rate_in_hz", "rate_out_hz"):
        pairs.append((rate, _fmt(sum(getattr(s, rate) for s in snapshots))))
    return pairs


class PipelineStats:
    """Counts frames and keeps latency windows and rates for diagnostics."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        window_frames: int = DEFAULT_WINDOW_FRAMES,
        rate_window_s: float = DEFAULT_RATE_WINDOW_S,
    ) -> None:
        self._lock = threading.Lock()
        self._counters = FrameCounters()
        self._stage_windows = {stage: SlidingWindow(window_frames) for stage in STAGES}
        self._e2e_window = SlidingWindow(window_frames)
        self._e2e_max = math.nan
        self._rate_in = RateMeter(rate_window_s, clock)
        self._rate_out = RateMeter(rate_window_s, clock)
        self._rate_idle = RateMeter(rate_window_s, clock)
        self._consecutive_failures = 0
        self._last_error = ""
        self._clock = clock
        self._last_in = clock()

    def frame_received(self) -> None:
        """A frame arrived from the subscription."""
        with self._lock:
            self._counters.frames_in += 1
            self._rate_in.tick()
            self._last_in = self._clock()

    def frame_dropped(self) -> None:
        """A waiting frame was replaced by a newer one."""
        with self._lock:
            self._counters.frames_dropped += 1

    def frame_failed(self, error: str) -> None:
        """A frame could not be decoded or processed."""
        with self._lock:
            self._counters.frames_bad += 1
            self._consecutive_failures += 1
            self._last_error = error

    def frames_lost(self, count: int) -> None:
        """The middleware reports ``count`` more frames lost before the callback."""
        with self._lock:
            self._counters.frames_lost += count

    def frame_idle(self) -> None:
        """A good frame was not run because no output has subscribers."""
        with self._lock:
            self._counters.frames_idle += 1
            self._consecutive_failures = 0
            self._rate_idle.tick()

    def frame_published(self, stage_ms: Mapping[str, float], e2e_ms: float) -> None:
        """A frame went through; ``stage_ms`` holds any of ``STAGES``."""
        with self._lock:
            self._counters.frames_out += 1
            self._consecutive_failures = 0
            self._rate_out.tick()
            for stage, value in stage_ms.items():
                if stage in self._stage_windows:
                    self._stage_windows[stage].add(value)
            self._e2e_window.add(e2e_ms)
            self._e2e_max = e2e_ms if math.isnan(self._e2e_max) else max(self._e2e_max, e2e_ms)

    def snapshot(self) -> StatsSnapshot:
        """Copy of the current state."""
        with self._lock:
            e2e = self._e2e_window
            return StatsSnapshot(
                counters=FrameCounters(**vars(self._counters)),
                rate_in_hz=self._rate_in.rate_hz(),
                rate_out_hz=self._rate_out.rate_hz(),
                rate_idle_hz=self._rate_idle.rate_hz(),
                stage_ms={
                    stage: (window.percentile(50), window.percentile(95))
                    for stage, window in self._stage_windows.items()
                },
                e2e_ms=(e2e.percentile(50), e2e.percentile(95), e2e.maximum()),
                consecutive_failures=self._consecutive_failures,
                last_error=self._last_error,
                silent_s=self._clock() - self._last_in,
                e2e_max_since_start_ms=self._e2e_max,
            )


@dataclass(frozen=True)
class HealthLimits:
    """Thresholds of the health verdict."""

    min_rate_hz: float = 0.0  # 0 disables the rate check
    latency_budget_ms: float = math.inf
    failure_limit: int = DEFAULT_FAILURE_LIMIT
    silence_s: float = DEFAULT_SILENCE_S


@dataclass(frozen=True)
class Health:
    """Level and a message saying why."""

    level: Level
    message: str


def starved(snapshot: StatsSnapshot, limits: HealthLimits, publishers: int) -> bool:
    """Whether the input has publishers but no frame came for ``silence_s``."""
    return publishers > 0 and snapshot.silent_s >= limits.silence_s


def evaluate_health(
    snapshot: StatsSnapshot, limits: HealthLimits, publishers: int = 0, hint: str = ""
) -> Health:
    """A camera's verdict. ERROR: its last ``failure_limit`` frames failed; WARN: ``publishers``
    publish on the input but no frame arrives (``hint`` says what to set), or too slow or
    late."""
    if snapshot.consecutive_failures >= limits.failure_limit:
        return Health(
            Level.ERROR,
            f"last {snapshot.consecutive_failures} frames all failed: {snapshot.last_error}",
        )
    reasons = []
    if starved(snapshot, limits, publishers):
        reasons.append(
            f"no frame for {snapshot.silent_s:.0f} s from {publishers} publisher(s) on the input"
            + (f": {hint}" if hint else "")
        )
    idle = snapshot.rate_idle_hz > 0 and snapshot.rate_out_hz == 0
    if limits.min_rate_hz > 0 and snapshot.rate_out_hz < limits.min_rate_hz and not idle:
        reasons.append(
            f"output rate {snapshot.rate_out_hz:.1f} Hz < min_rate_hz {limits.min_rate_hz:g} "
            f"(input {snapshot.rate_in_hz:.1f} Hz)"
        )
    e2e_p95 = snapshot.e2e_ms[1]
    if e2e_p95 > limits.latency_budget_ms:
        reasons.append(
            f"e2e latency p95 {e2e_p95:.1f} ms > latency_budget_ms {limits.latency_budget_ms:g}"
        )
    if reasons:
        return Health(Level.WARN, "; ".join(reasons))
    if idle:
        return Health(Level.OK, "idle: no output topic has subscribers")
    return Health(
        Level.OK, f"running at {snapshot.rate_out_hz:.1f} Hz, e2e latency p95 {e2e_p95:.1f} ms"
    )


def node_health(cameras: Mapping[str, Health], load_error: str = "") -> Health:
    """The node's verdict. ERROR while the pipeline failed to load; else the worst level of its
    cameras, with the message of a single camera as it is and of several each after its name."""
    if load_error:
        return Health(Level.ERROR, f"pipeline failed to load: {load_error}")
    if not cameras:
        return Health(Level.OK, "starting")
    level = max(health.level for health in cameras.values())
    if len(cameras) == 1:
        (health,) = cameras.values()
        return Health(level, health.message)
    return Health(level, "; ".join(f"{name}: {health.message}" for name, health in cameras.items()))
