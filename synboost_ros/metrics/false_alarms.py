"""Where an anomaly map raises false alarms: normal pixels flagged, by ground-truth class.

At one operating point (by default the FPR95 threshold, where 95 % of the anomaly pixels are
flagged), each normal pixel scored at or above the threshold is a false alarm. Grouping them
by the semantic ground truth of the frame tells which parts of the scene the detector confuses
with anomalies. Each class keeps its own table of distinct scores (``AnomalyMetricAccumulator``),
so the counts are exact unless a table had to be coarsened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.metrics.anomaly import (
    DEFAULT_MAX_DISTINCT,
    NORMAL_LABEL,
    AnomalyMetricAccumulator,
)

UNLABELLED = "unlabelled"  # normal pixels whose semantic ground truth is the ignore id
_CLASS_TABLE_DISTINCT = DEFAULT_MAX_DISTINCT // 16


@dataclass(frozen=True)
class ClassFalseAlarms:
    """False alarms among the normal pixels of one ground-truth class."""

    name: str
    normal_pixels: int
    false_alarms: int
    rate: float | None  # false_alarms / normal_pixels; None without normal pixels
    share: float | None  # false_alarms / all false alarms; None when there are none


@dataclass(frozen=True)
class FalseAlarmBreakdown:
    """False alarms at one threshold, per class; ``exact`` is False after coarsening."""

    threshold: float
    classes: tuple[ClassFalseAlarms, ...]
    exact: bool

    @property
    def total_false_alarms(self) -> int:
        """False alarms over all classes."""
        return sum(c.false_alarms for c in self.classes)


class FalseAlarmsByClass:
    """Accumulates normal-pixel scores per ground-truth train id, image by image."""

    def __init__(
        self,
        class_names: tuple[str, ...] = CLASS_NAMES,
        max_distinct_per_class: int = _CLASS_TABLE_DISTINCT,
    ) -> None:
        self.names = (*class_names, UNLABELLED)
        self._tables = [AnomalyMetricAccumulator(max_distinct_per_class) for _ in self.names]

    def update(self, scores: np.ndarray, anomaly_labels: np.ndarray, train_ids: np.ndarray) -> None:
        """Add one image: HxW scores, anomaly labels (0/1/255) and semantic train ids."""
        scores, anomaly_labels = np.asarray(scores), np.asarray(anomaly_labels)
        train_ids = np.asarray(train_ids)
        if train_ids.shape != anomaly_labels.shape:
            raise ValueError(
                f"semantic ground truth shape {train_ids.shape} differs from the anomaly "
                f"label shape {anomaly_labels.shape}"
            )
        num_classes = len(self.names) - 1
        invalid = (train_ids >= num_classes) & (train_ids != IGNORE_ID)
        if invalid.any():
            found = np.unique(train_ids[invalid])[:10].tolist()
            raise ValueError(
                f"train ids must be 0..{num_classes - 1} or {IGNORE_ID}; found {found}"
            )
        table_index = np.where(train_ids == IGNORE_ID, num_classes, train_ids)
        normal = anomaly_labels == NORMAL_LABEL
        for index in np.unique(table_index[normal]):
            in_class = normal & (table_index == index)
            labels = np.where(in_class, NORMAL_LABEL, IGNORE_ID).astype(np.uint8)
            self._tables[int(index)].update(scores, labels)

    def compute(self, threshold: float) -> FalseAlarmBreakdown:
        """False alarms (score >= ``threshold``) of every class fed so far."""
        flagged = [table.counts_at_or_above(threshold)[1] for table in self._tables]
        total = sum(flagged)
        classes = []
        for name, table, alarms in zip(self.names, self._tables, flagged, strict=True):
            normal = table.num_normal_pixels
            classes.append(
                ClassFalseAlarms(
                    name=name,
                    normal_pixels=normal,
                    false_alarms=alarms,
                    rate=alarms / normal if normal else None,
                    share=alarms / total if total else None,
                )
            )
        return FalseAlarmBreakdown(
            threshold=threshold,
            classes=tuple(classes),
            exact=all(table.exact for table in self._tables),
        )
