"""Evaluation metrics: pooled anomaly-detection scores and semantic-segmentation IoU."""

from __future__ import annotations

from synboost_ros.metrics.anomaly import AnomalyCurves, AnomalyMetricAccumulator, AnomalyMetrics
from synboost_ros.metrics.segmentation import ConfusionMatrixAccumulator, SegmentationMetrics

__all__ = [
    "AnomalyCurves",
    "AnomalyMetricAccumulator",
    "AnomalyMetrics",
    "ConfusionMatrixAccumulator",
    "SegmentationMetrics",
]
