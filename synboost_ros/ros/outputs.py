"""The node's output publishers (``~/<topic>`` images and ``~/timing``) and the timing message.

What each topic holds and how it is rendered lives in ``frame_outputs`` (plain Python, shared
with offline bag processing); ``OutputPublishers`` owns one camera's publishers and reports
which topics have subscribers, so the node asks the pipeline only for the maps those need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import AnomalyObject
from synboost_ros.ros.cameras import SINGLE_CAMERA, CameraSpec
from synboost_ros.ros.frame_outputs import (
    TIMING_TOPIC,
    TOPIC_MAPS,
    RenderSettings,
    image_topics,
    render_topic,
    required_maps,
    timing_values,
)
from synboost_ros.ros.image_conversion import fill_image_msg

# Re-exported for the node and its tests.
__all__ = [
    "DEFAULT_OUTPUT_DEPTH",
    "TIMING_TOPIC",
    "TOPIC_MAPS",
    "OutputPublishers",
    "RenderSettings",
    "image_message",
    "output_qos",
    "render_topic",
    "required_maps",
    "timing_message",
    "timing_values",
]

DEFAULT_OUTPUT_DEPTH = 30


def output_qos(depth: int = DEFAULT_OUTPUT_DEPTH) -> QoSProfile:
    """QoS of every output: reliable (it matches reliable and best-effort subscribers), keep
    last ``depth``. A reliable subscriber that falls more than ``depth`` frames behind loses
    the oldest (depth 5 lost 0.6 % of the frames of a subscriber to two outputs at 30 Hz)."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def timing_message(
    header: Any, times_ms: Mapping[str, float], node_name: str, hardware_id: str = ""
) -> DiagnosticArray:
    """``~/timing`` of one frame: the input ``header`` and one status with every stage time;
    ``node_name`` is the node's fully qualified name."""
    status = DiagnosticStatus(
        level=DiagnosticStatus.OK,
        name=f"{node_name}: frame timing",
        message="frame timing",
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in timing_values(times_ms)],
    )
    return DiagnosticArray(header=header, status=[status])


def image_message(
    topic: str,
    result: PipelineResult,
    rgb: np.ndarray,
    header: Any,
    settings: RenderSettings,
    objects: Sequence[AnomalyObject] | None = None,
) -> Image:
    """The ``~/<topic>`` image of one frame, with the input ``header``."""
    array, encoding = render_topic(topic, result, rgb, settings, objects)
    return fill_image_msg(Image(), array, encoding, header)


class OutputPublishers:
    """One camera's output publishers (``~/<topic>``, or ``~/<camera>/<topic>`` for a named
    camera) and its ``timing``."""

    def __init__(
        self,
        node: Node,
        publish_synthesized: bool,
        hardware_id: str,
        camera: CameraSpec = SINGLE_CAMERA,
        depth: int = DEFAULT_OUTPUT_DEPTH,
    ) -> None:
        prefix, qos = camera.output_prefix, output_qos(depth)
        self._images = {
            t: node.create_publisher(Image, prefix + t, qos)
            for t in image_topics(publish_synthesized)
        }
        self._timing = node.create_publisher(DiagnosticArray, prefix + TIMING_TOPIC, qos)
        self._name = camera.scoped(node.get_fully_qualified_name())
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
            message = image_message(topic, result, rgb, header, settings, objects)
            self._images[topic].publish(message)

    def publish_timing(self, header: Any, times_ms: Mapping[str, float]) -> None:
        """Publish the stage times of one frame under its input ``header`` (stamp, frame_id)."""
        self._timing.publish(timing_message(header, times_ms, self._name, self._hardware_id))
