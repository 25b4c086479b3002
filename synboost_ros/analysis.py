"""One frame's anomaly objects and planner summary, from a ``PipelineResult``.

Shared by the node (``~/anomaly_objects``, ``~/anomaly_summary``, the boxes on ``~/overlay``),
offline bag processing and the demo report.
"""

from __future__ import annotations

from dataclasses import dataclass

from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import ObjectMap, extract_objects
from synboost_ros.postprocess.options import AnalysisSettings
from synboost_ros.postprocess.summary import AnomalySummary, summarize

__all__ = ["ANALYSIS_MAPS", "AnalysisSettings", "FrameAnalysis", "analyze"]

# Pipeline outputs the analysis reads.
ANALYSIS_MAPS = frozenset({"anomaly", "semantic"})


@dataclass(frozen=True)
class FrameAnalysis:
    """The objects of a frame and its summary."""

    objects: ObjectMap
    summary: AnomalySummary


def analyze(result: PipelineResult, settings: AnalysisSettings | None = None) -> FrameAnalysis:
    """Objects and summary of ``result`` (which must hold the anomaly and semantic maps)."""
    settings = settings or AnalysisSettings()
    if result.anomaly is None or result.semantic is None:
        raise ValueError("the analysis needs the pipeline's anomaly and semantic maps")
    objects = extract_objects(result.anomaly, result.semantic, settings.objects)
    summary = summarize(
        result.anomaly,
        result.semantic,
        objects,
        settings.objects.drivable_classes,
        settings.summary,
    )
    return FrameAnalysis(objects, summary)
