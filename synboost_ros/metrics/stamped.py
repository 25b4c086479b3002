"""Two streams paired by header stamp, and pooled anomaly metrics of score maps and labels.

``StampPairer`` pairs items of two streams that share a stamp (a bag's camera frames and
ground truth; recorded outputs and the frames they came from) in bounded memory: at most
``max_pending`` unpaired items of each side wait, older ones are dropped and counted.
``PooledAnomalyMetrics``: pixel AP / FPR95 / AUROC (``AnomalyMetricAccumulator``) and the
SegmentMeIfYouCan component metrics at the best pixel-F1 score threshold, fed frame by frame.
``StampedAnomalyMetrics`` is the two together. Shared by ``synboost bag process`` and the demo.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, TypeVar

import numpy as np

from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator
from synboost_ros.metrics.components import ComponentMetrics

DEFAULT_MAX_PENDING = 64
A = TypeVar("A")
B = TypeVar("B")


class StampPairer(Generic[A, B]):
    """Pairs ``first`` and ``second`` items by stamp; ``max_pending`` None = unbounded."""

    def __init__(self, max_pending: int | None = DEFAULT_MAX_PENDING) -> None:
        if max_pending is not None and max_pending < 1:
            raise ValueError(f"max_pending must be >= 1 or None, got {max_pending}")
        self._max_pending = max_pending
        self._first: OrderedDict[int, A] = OrderedDict()
        self._second: OrderedDict[int, B] = OrderedDict()
        self._dropped_first = 0
        self._dropped_second = 0

    def add_first(self, stamp: int, item: A) -> tuple[A, B] | None:
        """Add a first-stream item; the pair when the second one of ``stamp`` came already."""
        other = self._second.pop(stamp, None)
        if other is not None:
            return item, other
        self._first[stamp] = item
        if self._max_pending is not None and len(self._first) > self._max_pending:
            self._first.popitem(last=False)
            self._dropped_first += 1
        return None

    def add_second(self, stamp: int, item: B) -> tuple[A, B] | None:
        """Add a second-stream item; the pair when the first one of ``stamp`` came already."""
        other = self._first.pop(stamp, None)
        if other is not None:
            return other, item
        self._second[stamp] = item
        if self._max_pending is not None and len(self._second) > self._max_pending:
            self._second.popitem(last=False)
            self._dropped_second += 1
        return None

    @property
    def unpaired_first(self) -> int:
        """First-stream items without a partner (so far)."""
        return len(self._first) + self._dropped_first

    @property
    def unpaired_second(self) -> int:
        """Second-stream items without a partner (so far)."""
        return len(self._second) + self._dropped_second


class PooledAnomalyMetrics:
    """Pixel and component metrics pooled over every frame fed."""

    def __init__(self) -> None:
        self.pixels = AnomalyMetricAccumulator()
        self.components = ComponentMetrics()

    def update(self, scores: np.ndarray, label: np.ndarray) -> None:
        """Add one frame: HxW float scores and HxW labels (0 normal, 1 anomaly, 255 ignored)."""
        self.pixels.update(scores, label)
        self.components.update(scores, label)

    def result(self) -> dict[str, Any]:
        """AP, FPR95, AUROC, pixel counts and the component metrics; ``ValueError`` when the
        frames lack anomaly or normal pixels."""
        metrics = self.pixels.compute()
        return {
            "ap": metrics.ap,
            "fpr95": metrics.fpr95,
            "auroc": metrics.auroc,
            "pixels": metrics.num_pixels,
            "anomaly_pixels": metrics.num_anomaly_pixels,
            "exact": metrics.exact,
            "components": self.components.compute(self.pixels.threshold_best_f1()).to_json(),
        }


class StampedAnomalyMetrics:
    """Score maps and labels paired by stamp (ns), pooled into ``PooledAnomalyMetrics``."""

    def __init__(self, max_pending: int | None = DEFAULT_MAX_PENDING) -> None:
        self.pooled = PooledAnomalyMetrics()
        self.pairer: StampPairer[np.ndarray, np.ndarray] = StampPairer(max_pending)
        self.frames_scored = 0

    def add_scores(self, stamp: int, scores: np.ndarray) -> None:
        """The score map of ``stamp``; scored now if its labels came already."""
        self._score(stamp, self.pairer.add_first(stamp, scores))

    def add_label(self, stamp: int, label: np.ndarray) -> None:
        """The labels of ``stamp``; scored now if its score map came already."""
        self._score(stamp, self.pairer.add_second(stamp, label))

    def _score(self, stamp: int, pair: tuple[np.ndarray, np.ndarray] | None) -> None:
        if pair is None:
            return
        scores, label = pair
        if scores.shape != label.shape:
            raise ValueError(
                f"anomaly map {scores.shape} and label {label.shape} of stamp {stamp} "
                "differ in size"
            )
        self.pooled.update(scores, label)
        self.frames_scored += 1

    def result(self) -> dict[str, Any]:
        """``frames_scored`` and the pooled metrics; without both kinds of pixels the metrics
        are None and ``note`` says why."""
        result: dict[str, Any] = {"frames_scored": self.frames_scored}
        try:
            return {**result, **self.pooled.result()}
        except ValueError as error:
            return {**result, "ap": None, "fpr95": None, "auroc": None, "note": str(error)}
