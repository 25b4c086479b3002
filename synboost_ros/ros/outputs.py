"""Output topics: which maps each needs, how each image is rendered, and their publishers.

``required_maps``, ``render_topic`` and ``timing_values`` are plain Python.
``OutputPublishers`` owns one camera's publishers; it reports which topics have subscribers so
the node asks the pipeline only for the maps those need and converts nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from synboost_ros.classes import colorize
from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import AnomalyObject
from synboost_ros.ros.cameras import SINGLE_CAMERA, CameraSpec
from synboost_ros.ros.image_conversion import fill_image_msg
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
TIMING_TOPIC = "timing"
# Reliable publishers match reliable and best-effort subscribers. Depth 5: with depth 1,
# frames were overwritten before slow subscribers had taken them.
OUTPUT_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class RenderSettings:
    """Run-time settings of the rendered images."""

    anomaly_threshold: float = 0.5
    overlay_alpha: float = 0.5


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
    if topic == "synthesized":
        return result.synthesized, "rgb8"
    raise ValueError(f"unknown output topic {topic!r}")


def timing_values(times_ms: Mapping[str, float]) -> list[tuple[str, str]]:
    """Key/value pairs of the per-frame timing status: ``<name>_ms`` for each stage."""
    return [(f"{name}_ms", f"{value:.3f}") for name, value in times_ms.items()]


class OutputPublishers:
    """One camera's output publishers (``~/<topic>``, or ``~/<camera>/<topic>`` for a named
    camera) and its ``timing``."""

    def __init__(
        self,
        node: Node,
        publish_synthesized: bool,
        hardware_id: str,
        camera: CameraSpec = SINGLE_CAMERA,
    ) -> None:
        topics = [t for t in TOPIC_MAPS if t != "synthesized" or publish_synthesized]
        prefix = camera.output_prefix
        self._images = {t: node.create_publisher(Image, prefix + t, OUTPUT_QOS) for t in topics}
        self._timing = node.create_publisher(DiagnosticArray, prefix + TIMING_TOPIC, OUTPUT_QOS)
        self._timing_name = f"{camera.scoped(node.get_fully_qualified_name())}: frame timing"
        self._hardware_id = hardware_id

    def subscribed_topics(self) -> list[str]:
        """Image topics that have at least one subscriber now."""
        return [t for t, pub in self._images.items() if pub.get_subscription_count() > 0]

    def timing_subscribed(self) -> bool:
        """Whether ``~/timing`` has a subscriber."""
        return self._timing.get_subscription_count() > 0

    def publish_images(
        self,
        topics: Iterable[str],
        result: PipelineResult,
        rgb: np.ndarray,
        header: Any,
        settings: RenderSettings,
        objects: Sequence[AnomalyObject] | None = None,
    ) -> None:
        """Render and publish ``topics``, each with the input ``header`` (``objects`` drawn on
        the overlay)."""
        for topic in topics:
            array, encoding = render_topic(topic, result, rgb, settings, objects)
            self._images[topic].publish(fill_image_msg(Image(), array, encoding, header))

    def publish_timing(self, header: Any, times_ms: Mapping[str, float]) -> None:
        """Publish the stage times of one frame under its input ``header`` (stamp, frame_id)."""
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=self._timing_name,
            message="frame timing",
            hardware_id=self._hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in timing_values(times_ms)],
        )
        self._timing.publish(DiagnosticArray(header=header, status=[status]))
