"""The per-frame summary for planners: how anomalous the drivable area is, and an alarm.

The drivable area of a frame is its pixels of the drivable classes plus the pixels of the
objects that stand on it (an obstacle on the road is classified as something else, yet it lies
in the car's path). Over that area: the highest anomaly score and the share of pixels scored at
or above ``anomaly_threshold``. The alarm is raised when both reach their thresholds:
``max_score >= alarm_score`` and ``anomalous_share >= alarm_share``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synboost_ros.postprocess.drivable import class_mask
from synboost_ros.postprocess.objects import ObjectMap


@dataclass(frozen=True)
class SummarySettings:
    """Thresholds of the summary and its alarm."""

    anomaly_threshold: float = 0.5
    alarm_score: float = 0.7
    alarm_share: float = 0.001

    def __post_init__(self) -> None:
        for name in ("anomaly_threshold", "alarm_score", "alarm_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class AnomalySummary:
    """One frame's summary."""

    max_score: float  # highest anomaly score on the drivable area (0 without one)
    anomalous_share: float  # share of drivable-area pixels scored >= anomaly_threshold
    drivable_pixels: int
    objects: int
    objects_on_drivable: int
    alarm: bool
    settings: SummarySettings

    def key_values(self) -> list[tuple[str, str]]:
        """Named values as text (the summary message's key/value pairs)."""
        return [
            ("max_score_drivable", f"{self.max_score:.4f}"),
            ("anomalous_share_drivable", f"{self.anomalous_share:.6f}"),
            ("drivable_pixels", str(self.drivable_pixels)),
            ("objects", str(self.objects)),
            ("objects_on_drivable", str(self.objects_on_drivable)),
            ("alarm", "true" if self.alarm else "false"),
            ("anomaly_threshold", f"{self.settings.anomaly_threshold:g}"),
            ("alarm_score", f"{self.settings.alarm_score:g}"),
            ("alarm_share", f"{self.settings.alarm_share:g}"),
        ]

    def to_json(self) -> dict:
        """Plain-JSON form (without the settings)."""
        return {
            "max_score_drivable": self.max_score,
            "anomalous_share_drivable": self.anomalous_share,
            "drivable_pixels": self.drivable_pixels,
            "objects": self.objects,
            "objects_on_drivable": self.objects_on_drivable,
            "alarm": self.alarm,
        }


def summarize(
    anomaly: np.ndarray,
    semantic: np.ndarray,
    objects: ObjectMap,
    drivable_classes: tuple[int, ...],
    settings: SummarySettings = SummarySettings(),
) -> AnomalySummary:
    """The summary of one frame from its anomaly and class maps and its objects."""
    drivable = class_mask(semantic, drivable_classes) | objects.pixels(on_drivable_only=True)
    scores = np.nan_to_num(anomaly[drivable], nan=0.0)
    max_score = float(scores.max()) if scores.size else 0.0
    share = float((scores >= settings.anomaly_threshold).mean()) if scores.size else 0.0
    alarm = max_score >= settings.alarm_score and share >= settings.alarm_share and scores.size
    return AnomalySummary(
        max_score=max_score,
        anomalous_share=share,
        drivable_pixels=int(scores.size),
        objects=len(objects.objects),
        objects_on_drivable=sum(obj.on_drivable for obj in objects.objects),
        alarm=bool(alarm),
        settings=settings,
    )
