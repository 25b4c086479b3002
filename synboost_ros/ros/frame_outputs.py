"""What the node publishes for one frame, in plain Python (no rclpy): the image topics, the
maps each needs, how each image is rendered, and the stage times of ``~/timing``.

Shared by the node (``ros/outputs.py``) and offline bag processing (``ros/bag_processing.py``),
so that a processed bag holds exactly what the node publishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from synboost_ros.classes import colorize
from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import AnomalyObject
from synboost_ros.visualize import draw_objects, overlay

# Image topic (under ~/) -> the pipeline maps it is made from.
TOPIC_MAPS: dict[str, frozenset[str]] = {
    "semantic": frozenset({"semantic"}),
    "semantic_color": frozenset({"semantic"}),
    "entropy": frozenset({"entropy"}),
    "distance": frozenset({"distance"}),
    "perceptual": frozenset({"perceptual"}),
    "anomaly": frozenset({"anomaly"}),
    "anomaly_mask": frozenset({"anomaly"}),
    "overlay": frozenset({"anomaly"}),
    "synthesized": frozenset({"synthesized"}),
}
SYNTHESIZED_TOPIC = "synthesized"
TIMING_TOPIC = "timing"
TIMING_SUFFIX = "_ms"


@dataclass(frozen=True)
class RenderSettings:
    """Run-time settings of the rendered images."""

    anomaly_threshold: float = 0.5
    overlay_alpha: float = 0.5


def image_topics(publish_synthesized: bool) -> list[str]:
    """The image topics the node has (``~/synthesized`` only when asked for)."""
    return [t for t in TOPIC_MAPS if t != SYNTHESIZED_TOPIC or publish_synthesized]


def required_maps(topics: Iterable[str]) -> set[str]:
    """Pipeline outputs needed for ``topics``."""
    return set().union(*(TOPIC_MAPS[topic] for topic in topics))


def render_topic(
    topic: str,
    result: PipelineResult,
    rgb: np.ndarray,
    settings: RenderSettings,
    objects: Sequence[AnomalyObject] | None = None,
) -> tuple[np.ndarray, str]:
    """The image of one topic and its encoding; ``objects`` are drawn on the overlay."""
    if topic == "semantic":
        return result.semantic, "mono8"
    if topic == "semantic_color":
        return colorize(result.semantic), "rgb8"
    if topic in ("entropy", "distance", "perceptual", "anomaly"):
        return getattr(result, topic), "32FC1"
    if topic == "anomaly_mask":
        mask = np.where(result.anomaly >= settings.anomaly_threshold, 255, 0).astype(np.uint8)
        return mask, "mono8"
    if topic == "overlay":
        image = overlay(rgb, result.anomaly, settings.overlay_alpha)
        return (image if objects is None else draw_objects(image, objects)), "rgb8"
    if topic == SYNTHESIZED_TOPIC:
        return result.synthesized, "rgb8"
    raise ValueError(f"unknown output topic {topic!r}")


def timing_values(times_ms: Mapping[str, float]) -> list[tuple[str, str]]:
    """Key/value pairs of the per-frame timing status: ``<name>_ms`` for each stage."""
    return [(f"{name}{TIMING_SUFFIX}", f"{value:.3f}") for name, value in times_ms.items()]


def stage_times(
    decode_ms: float, pipeline_ms: Mapping[str, float], objects_ms: float | None, publish_ms: float
) -> dict[str, float]:
    """Times of one frame as ``~/timing`` carries them: decode, the pipeline's stages (its
    total as ``pipeline``), ``objects`` (when the analysis ran), publish, and their total."""
    times = {"decode": decode_ms}
    times.update({("pipeline" if k == "total" else k): v for k, v in pipeline_ms.items()})
    if objects_ms is not None:
        times["objects"] = objects_ms
    times["publish"] = publish_ms
    times["total"] = decode_ms + pipeline_ms.get("total", 0.0) + (objects_ms or 0.0) + publish_ms
    return times
