"""Where an anomaly map raises false alarms: normal pixels flagged, grouped two ways.

At one operating point (by default the FPR95 threshold, where 95 % of the anomaly pixels are
flagged), each normal pixel scored at or above the threshold is a false alarm. Grouping them
by the semantic ground truth of the frame tells which parts of the scene the detector confuses
with anomalies; grouping them by their distance to the nearest anomaly pixel tells how much of
it is a halo around the true anomalies. Each group keeps its own table of distinct scores
(``AnomalyMetricAccumulator``), so the counts are exact unless a table had to be coarsened.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.metrics.anomaly import (
    ANOMALY_LABEL,
    DEFAULT_MAX_DISTINCT,
    NORMAL_LABEL,
    AnomalyMetricAccumulator,
)

UNLABELLED = "unlabelled"  # normal pixels whose semantic ground truth is the ignore id
NO_ANOMALY_IN_FRAME = "no anomaly in frame"
DISTANCE_BAND_EDGES: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)  # pixels of the label map
_GROUP_TABLE_DISTINCT = DEFAULT_MAX_DISTINCT // 16


@dataclass(frozen=True)
class GroupFalseAlarms:
    """False alarms among the normal pixels of one group."""

    name: str
    normal_pixels: int
    false_alarms: int
    rate: float | None  # false_alarms / normal_pixels; None without normal pixels
    share: float | None  # false_alarms / all false alarms; None when there are none


@dataclass(frozen=True)
class FalseAlarmBreakdown:
    """False alarms at one threshold, per group; ``exact`` is False after coarsening."""

    threshold: float
    groups: tuple[GroupFalseAlarms, ...]
    exact: bool

    @property
    def total_false_alarms(self) -> int:
        """False alarms over all groups."""
        return sum(g.false_alarms for g in self.groups)

    def to_json(self) -> dict:
        """JSON form; groups without normal pixels are left out."""
        return {
            "threshold": self.threshold,
            "false_alarms": self.total_false_alarms,
            "exact": self.exact,
            "groups": {
                g.name: {
                    "normal_pixels": g.normal_pixels,
                    "false_alarms": g.false_alarms,
                    "rate": g.rate,
                    "share": g.share,
                }
                for g in self.groups
                if g.normal_pixels
            },
        }


class FalseAlarmsByGroup:
    """Accumulates normal-pixel scores per group, image by image."""

    def __init__(
        self, names: Sequence[str], max_distinct_per_group: int = _GROUP_TABLE_DISTINCT
    ) -> None:
        self.names = tuple(names)
        self._tables = [AnomalyMetricAccumulator(max_distinct_per_group) for _ in self.names]

    def update_groups(
        self, scores: np.ndarray, anomaly_labels: np.ndarray, group_ids: np.ndarray
    ) -> None:
        """Add one image: HxW scores, anomaly labels (0/1/255) and each pixel's group index."""
        normal = anomaly_labels == NORMAL_LABEL
        for index in np.unique(group_ids[normal]):
            in_group = normal & (group_ids == index)
            labels = np.where(in_group, NORMAL_LABEL, IGNORE_ID).astype(np.uint8)
            self._tables[int(index)].update(scores, labels)

    def compute(self, threshold: float) -> FalseAlarmBreakdown:
        """False alarms (score >= ``threshold``) of every group fed so far."""
        flagged = [table.counts_at_or_above(threshold)[1] for table in self._tables]
        total = sum(flagged)
        groups = []
        for name, table, alarms in zip(self.names, self._tables, flagged, strict=True):
            normal = table.num_normal_pixels
            groups.append(
                GroupFalseAlarms(
                    name=name,
                    normal_pixels=normal,
                    false_alarms=alarms,
                    rate=alarms / normal if normal else None,
                    share=alarms / total if total else None,
                )
            )
        return FalseAlarmBreakdown(
            threshold=threshold,
            groups=tuple(groups),
            exact=all(table.exact for table in self._tables),
        )


class FalseAlarmsByClass(FalseAlarmsByGroup):
    """False alarms by semantic ground-truth class; pixels without one are ``unlabelled``."""

    def __init__(
        self,
        class_names: tuple[str, ...] = CLASS_NAMES,
        max_distinct_per_class: int = _GROUP_TABLE_DISTINCT,
    ) -> None:
        super().__init__((*class_names, UNLABELLED), max_distinct_per_class)

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
        self.update_groups(
            scores, anomaly_labels, np.where(train_ids == IGNORE_ID, num_classes, train_ids)
        )


def distance_band_names(edges: Sequence[float] = DISTANCE_BAND_EDGES) -> tuple[str, ...]:
    """Names of the bands cut at ``edges``, then the frames without anomaly pixels."""
    bounds = [f"{edge:g}" for edge in edges]
    names = [f"<= {bounds[0]} px"]
    names += [f"{low}-{high} px" for low, high in itertools.pairwise(bounds)]
    return (*names, f"> {bounds[-1]} px", NO_ANOMALY_IN_FRAME)


class FalseAlarmsByDistance(FalseAlarmsByGroup):
    """False alarms by Euclidean distance (label-map pixels) to the frame's nearest anomaly
    pixel, in bands cut at ``edges`` (a band holds distances up to and including its edge)."""

    def __init__(
        self,
        edges: Sequence[float] = DISTANCE_BAND_EDGES,
        max_distinct_per_band: int = _GROUP_TABLE_DISTINCT,
    ) -> None:
        edges = tuple(float(edge) for edge in edges)
        if not edges or any(e <= 0 for e in edges) or list(edges) != sorted(set(edges)):
            raise ValueError(f"band edges must be positive and increasing, got {edges}")
        self.edges = edges
        super().__init__(distance_band_names(edges), max_distinct_per_band)

    def update(self, scores: np.ndarray, anomaly_labels: np.ndarray) -> None:
        """Add one image: HxW scores and anomaly labels (0/1/255)."""
        anomaly_labels = np.asarray(anomaly_labels)
        anomalous = anomaly_labels == ANOMALY_LABEL
        if not anomalous.any():
            bands = np.full(anomaly_labels.shape, len(self.names) - 1, np.int64)
        else:
            # distanceTransform measures each non-zero pixel's distance to the nearest zero.
            outside = np.where(anomalous, 0, 1).astype(np.uint8)
            distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            bands = np.searchsorted(np.asarray(self.edges), distance, side="left")
        self.update_groups(np.asarray(scores), anomaly_labels, bands)
