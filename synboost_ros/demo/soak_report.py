"""The soak run's summary, in plain Python: what was sent, what the node counted, what a
subscriber received, latency as the node and as the subscriber saw it, and the RSS trend.

``SoakRecord`` collects (thread-safe) what ``demo/soak.py`` observes on the graph;
``soak_summary`` turns it into one JSON-ready dict, and ``soak_checks`` into the invariants
the CI soak asserts: every processed frame's outputs arrived, the node's accounting identity
holds, and RSS does not grow faster than a bound.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

COUNTER_KEYS = {
    "in": "frames_in",
    "out": "frames_out",
    "dropped": "frames_dropped",
    "bad": "frames_bad",
    "idle": "frames_idle",
    "lost": "frames_lost",
    "in_progress": "frames_in_progress",
}
DEFAULT_RSS_SLOPE_LIMIT_MB_PER_MIN = 10.0
MISSING_SHOWN = 10
RSS_PERIOD_S = 1.0  # the harness samples RSS this often


def latency_figures(values_ms: Iterable[float]) -> dict[str, float | int | None]:
    """p50 / p95 / p99 / max and the sample count (None without samples)."""
    values = np.asarray(list(values_ms), dtype=float)
    if values.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    p50, p95, p99 = (round(float(np.percentile(values, q)), 2) for q in (50, 95, 99))
    return {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": round(float(values.max()), 2),
        "n": values.size,
    }


def rss_slope_mb_per_min(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope (MB per minute) of ``(seconds, MB)`` samples over the second half of
    the run: the first half holds the start-up growth (allocator pools, first frames, queues
    filling up to their depth). NaN with fewer than 3 samples there."""
    if not samples:
        return math.nan
    start, end = samples[0][0], samples[-1][0]
    tail = [(t, mb) for t, mb in samples if t >= (start + end) / 2]
    if len(tail) < 3:
        return math.nan
    times, values = np.array(tail).T
    slope_per_s = np.polyfit(times - times[0], values, 1)[0]
    return round(float(slope_per_s * 60.0), 3)


@dataclass
class SoakRecord:
    """What the harness saw, by frame stamp (ns); thread-safe."""

    outputs: tuple[str, ...]  # output topics the subscriber reads, without "timing"
    sent: int = 0
    received_ns: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    node_e2e_ms: dict[int, float] = field(default_factory=dict)  # from ~/timing
    message_lost: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    diagnostics: dict[str, str] = field(default_factory=dict)  # the node's latest status
    diagnostics_count: int = 0
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def frame_sent(self) -> None:
        """One camera frame went out."""
        with self._lock:
            self.sent += 1

    def output_received(self, topic: str, stamp_ns: int, received_ns: int) -> None:
        """An output of the frame ``stamp_ns`` arrived at ``received_ns``."""
        with self._lock:
            self.received_ns[topic].setdefault(stamp_ns, received_ns)

    def timing_received(self, stamp_ns: int, e2e_ms: float) -> None:
        """``~/timing`` of a frame: the node's e2e for it."""
        with self._lock:
            self.node_e2e_ms[stamp_ns] = e2e_ms

    def lost(self, topic: str, count: int) -> None:
        """The middleware reports ``count`` samples of ``topic`` lost."""
        with self._lock:
            self.message_lost[topic] += count

    def diagnostics_received(self, values: Mapping[str, str]) -> None:
        """The node's status on /diagnostics."""
        with self._lock:
            self.diagnostics = dict(values)
            self.diagnostics_count += 1

    def rss_sample(self, seconds: float, mb: float) -> None:
        """The node's resident memory at ``seconds`` into the run."""
        with self._lock:
            self.rss_mb.append((seconds, mb))

    def processed_count(self) -> int:
        """Frames whose ``~/timing`` arrived (the node publishes it for every processed one)."""
        with self._lock:
            return len(self.node_e2e_ms)

    def all_outputs_arrived(self) -> bool:
        """Whether every output of every frame whose ``~/timing`` arrived has arrived too."""
        with self._lock:
            return all(
                stamp in self.received_ns[topic]
                for stamp in self.node_e2e_ms
                for topic in self.outputs
            )

    def last_arrival_ns(self) -> int:
        """When the latest output arrived (0 before the first)."""
        with self._lock:
            return max(
                (max(times.values(), default=0) for times in self.received_ns.values()), default=0
            )

    def snapshot(self) -> SoakRecord:
        """A consistent copy."""
        with self._lock:
            return SoakRecord(
                outputs=self.outputs,
                sent=self.sent,
                received_ns=defaultdict(dict, {t: dict(v) for t, v in self.received_ns.items()}),
                node_e2e_ms=dict(self.node_e2e_ms),
                message_lost=defaultdict(int, self.message_lost),
                diagnostics=dict(self.diagnostics),
                diagnostics_count=self.diagnostics_count,
                rss_mb=list(self.rss_mb),
            )


def _counter(values: Mapping[str, str], key: str) -> int | None:
    text = values.get(key)
    return int(text) if text is not None else None


def soak_summary(record: SoakRecord) -> dict:
    """The JSON summary of a run (``record`` a snapshot taken after the node drained)."""
    processed = sorted(record.node_e2e_ms)
    outputs: dict[str, dict] = {}
    last_ns: dict[int, int] = {}
    complete = 0
    for stamp in processed:
        arrivals = [record.received_ns[topic].get(stamp) for topic in record.outputs]
        if all(a is not None for a in arrivals):
            complete += 1
            last_ns[stamp] = max(arrivals)  # type: ignore[type-var]
    for topic in record.outputs:
        received = record.received_ns[topic]
        outputs[topic] = {
            "received": sum(1 for s in processed if s in received),
            "missing": sum(1 for s in processed if s not in received),
            # Where in the run (index among the processed frames), the first few.
            "missing_at": [i for i, s in enumerate(processed) if s not in received][:MISSING_SHOWN],
            "message_lost": record.message_lost[topic],
            "e2e_ms": latency_figures((received[s] - s) / 1e6 for s in processed if s in received),
        }
    diagnostics = record.diagnostics
    frames = {"sent": record.sent}
    frames.update({name: _counter(diagnostics, key) for name, key in COUNTER_KEYS.items()})
    frames["processed_seen"] = len(processed)
    frames["complete"] = complete
    if frames["in"] is not None:
        frames["not_received"] = record.sent - frames["in"]
    subscriber = {s: (t - s) / 1e6 for s, t in last_ns.items()}
    rss = [mb for _, mb in record.rss_mb]
    return {
        "frames": frames,
        "accounting": diagnostics.get("accounting", ""),
        "outputs": outputs,
        "e2e_ms": {
            "node": latency_figures(record.node_e2e_ms.values()),
            "subscriber_last_output": latency_figures(subscriber.values()),
            "subscriber_minus_node": latency_figures(
                subscriber[s] - record.node_e2e_ms[s] for s in subscriber
            ),
            "node_diagnostics": {
                key: _float(diagnostics.get(f"e2e_ms_{key}"))
                for key in ("p50", "p95", "max", "max_since_start")
            },
        },
        "rss_mb": {
            "start": rss[0] if rss else None,
            "end": rss[-1] if rss else None,
            "max": max(rss) if rss else None,
            "slope_mb_per_min": _finite(rss_slope_mb_per_min(record.rss_mb)),
            "samples": len(rss),
            "per_minute": [round(mb, 1) for t, mb in record.rss_mb if t % 60 < RSS_PERIOD_S],
        },
    }


def _float(text: str | None) -> float | None:
    return None if text is None else _finite(float(text))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def soak_checks(
    summary: Mapping, rss_slope_limit: float = DEFAULT_RSS_SLOPE_LIMIT_MB_PER_MIN
) -> dict[str, bool]:
    """The invariants: every processed frame's outputs all arrived (and the subscriber saw every
    frame the node counted out), the accounting identity holds, RSS slope <= the limit."""
    frames = summary["frames"]
    slope = summary["rss_mb"]["slope_mb_per_min"]
    return {
        "no_lost_outputs": frames["processed_seen"] > 0
        and frames["complete"] == frames["processed_seen"] == frames["out"],
        "accounting": summary["accounting"].endswith(": holds") and frames["in_progress"] == 0,
        "rss_slope": slope is not None and slope <= rss_slope_limit,
    }
