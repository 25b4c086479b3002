"""Settings: the pipeline's post-processing of the anomaly map, and the per-frame analysis."""

from __future__ import annotations

from dataclasses import dataclass, field

from synboost_ros.postprocess.drivable import DEFAULT_DRIVABLE_CLASSES, parse_class_names
from synboost_ros.postprocess.gating import GatingSettings
from synboost_ros.postprocess.objects import ObjectSettings
from synboost_ros.postprocess.summary import SummarySettings
from synboost_ros.postprocess.temporal import DEFAULT_WEIGHT, MAX_WEIGHT


@dataclass(frozen=True)
class PostprocessOptions:
    """Temporal fusion and drivable-area gating, both off here: a pipeline may score
    unrelated images (``synboost eval``); the node, which sees one camera stream, turns the
    fusion on by default (its ``temporal_fusion`` parameter; README has the figures).

    Both run at the synthesis size, before the maps are resized to the camera resolution.
    """

    temporal_fusion: bool = False
    temporal_weight: float = DEFAULT_WEIGHT
    drivable_gating: bool = False
    gating: GatingSettings = field(default_factory=GatingSettings)
    drivable_classes: tuple[int, ...] = parse_class_names(DEFAULT_DRIVABLE_CLASSES)

    def __post_init__(self) -> None:
        if not 0.0 <= self.temporal_weight <= MAX_WEIGHT:
            raise ValueError(
                f"temporal weight must be in [0, {MAX_WEIGHT}], got {self.temporal_weight}"
            )


@dataclass(frozen=True)
class AnalysisSettings:
    """Object extraction (with the drivable classes) and summary thresholds."""

    objects: ObjectSettings = field(default_factory=ObjectSettings)
    summary: SummarySettings = field(default_factory=SummarySettings)
