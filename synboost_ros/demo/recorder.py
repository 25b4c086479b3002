"""ROS subscriber that records the anomaly node's outputs into a ``RecordedRun``.

Subscribes ``<node>/anomaly``, ``semantic``, ``entropy``, ``perceptual``, ``overlay`` and
``timing`` (reliable, depth 10) and the node's status on ``/diagnostics``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from synboost_ros.demo.recording import RECORDED_TOPICS, RecordedRun, parse_timing

RECORD_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
)
TIMING_TOPIC = "timing"
# encoding -> (element type, channels) of the outputs recorded.
ENCODINGS = {"mono8": (np.uint8, 1), "rgb8": (np.uint8, 3), "32FC1": (np.float32, 1)}
LOG_THROTTLE_S = 2.0


def image_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (mono8, rgb8 or 32FC1) -> HxW or HxWx3 array (a copy)."""
    if msg.encoding not in ENCODINGS:
        raise ValueError(f"cannot record {msg.encoding!r} images; expected one of {[*ENCODINGS]}")
    element, channels = ENCODINGS[msg.encoding]
    dtype = np.dtype(element).newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if step < row_bytes or data.size < height * step:
        raise ValueError(
            f"{msg.encoding} image {width}x{height}: step {step}, {data.size} bytes is too small"
        )
    rows = data[: height * step].reshape(height, step)[:, :row_bytes]
    pixels = rows.copy().view(dtype).reshape((height, width, channels))
    pixels = pixels.astype(dtype.newbyteorder("="))
    return pixels[..., 0] if channels == 1 else pixels


class OutputRecorder(Node):
    """Records the outputs of the anomaly node named ``target`` (e.g. ``/synboost_demo``)."""

    def __init__(
        self, target: str, run: RecordedRun, node_name: str = "demo_recorder", **node_options: Any
    ) -> None:
        super().__init__(node_name, **node_options)
        self._target = target.rstrip("/")
        self._run = run
        self._output_subscriptions = [
            self.create_subscription(
                Image, f"{self._target}/{topic}", partial(self._on_map, topic), RECORD_QOS
            )
            for topic in RECORDED_TOPICS
        ]
        self._output_subscriptions.append(
            self.create_subscription(
                DiagnosticStatus, f"{self._target}/{TIMING_TOPIC}", self._on_timing, RECORD_QOS
            )
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RECORD_QOS)

    def connected(self) -> bool:
        """Whether every output topic has a publisher (the node is up)."""
        return all(sub.get_publisher_count() > 0 for sub in self._output_subscriptions)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_map(self, topic: str, msg: Image) -> None:
        received = self._now_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        try:
            self._run.add_map(topic, stamp, image_array(msg), received)
        except ValueError as error:
            self._log_bad(topic, error)

    def _on_timing(self, msg: DiagnosticStatus) -> None:
        try:
            stamp, times = parse_timing((value.key, value.value) for value in msg.values)
        except ValueError as error:
            self._log_bad(TIMING_TOPIC, error)
            return
        self._run.add_timing(stamp, times)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        received = self._now_ns()
        for status in msg.status:
            if status.name.startswith(f"{self._target}:"):
                self._run.set_diagnostics({v.key: v.value for v in status.values}, received)

    def _log_bad(self, topic: str, error: Exception) -> None:
        self.get_logger().error(
            f"cannot record {self._target}/{topic}: {error}", throttle_duration_sec=LOG_THROTTLE_S
        )
