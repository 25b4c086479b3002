"""ROS subscriber that records the anomaly node's outputs into a ``RecordedRun``.

Subscribes ``<node>/anomaly``, ``semantic``, ``entropy``, ``perceptual``, ``overlay``,
``timing``, ``anomaly_summary`` and ``anomaly_objects`` (reliable, depth 10) and the node's
status on ``/diagnostics``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from synboost_ros.demo.recording import RECORDED_TOPICS, RecordedRun, stage_times
from synboost_ros.ros.anomaly_messages import objects_from_message, objects_message_type
from synboost_ros.ros.image_conversion import decode_array
from synboost_ros.ros.stamps import stamp_ns

# Reliable, and deep enough for the whole 100-frame drive: with depth 10, a recorder busy
# decoding maps lost 20 of 66 ~/anomaly_summary messages in its own queue, unreported.
RECORD_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE
)
TIMING_TOPIC = "timing"
SUMMARY_TOPIC = "anomaly_summary"
OBJECTS_TOPIC = "anomaly_objects"
LOG_THROTTLE_S = 2.0


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
                DiagnosticArray, f"{self._target}/{TIMING_TOPIC}", self._on_timing, RECORD_QOS
            )
        )
        self._output_subscriptions += [
            self.create_subscription(
                DiagnosticArray, f"{self._target}/{SUMMARY_TOPIC}", self._on_summary, RECORD_QOS
            ),
            self.create_subscription(
                objects_message_type(),
                f"{self._target}/{OBJECTS_TOPIC}",
                self._on_objects,
                RECORD_QOS,
            ),
        ]
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, RECORD_QOS)

    def connected(self) -> bool:
        """Whether every output topic has a publisher (the node is up)."""
        return all(sub.get_publisher_count() > 0 for sub in self._output_subscriptions)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_map(self, topic: str, msg: Image) -> None:
        received = self._now_ns()
        stamp = stamp_ns(msg.header)
        try:
            self._run.add_map(topic, stamp, decode_array(msg), received)
        except ValueError as error:
            self._log_bad(topic, error)

    def _on_timing(self, msg: DiagnosticArray) -> None:
        try:
            if len(msg.status) != 1:
                raise ValueError(f"expected one timing status, got {len(msg.status)}")
            times = stage_times((value.key, value.value) for value in msg.status[0].values)
        except ValueError as error:
            self._log_bad(TIMING_TOPIC, error)
            return
        self._run.add_timing(stamp_ns(msg.header), times)

    def _on_summary(self, msg: DiagnosticArray) -> None:
        if len(msg.status) != 1:
            self._log_bad(SUMMARY_TOPIC, ValueError(f"expected one status, got {len(msg.status)}"))
            return
        values = {value.key: value.value for value in msg.status[0].values}
        self._run.add_summary(stamp_ns(msg.header), values)

    def _on_objects(self, msg) -> None:
        try:
            objects = objects_from_message(msg)
        except ValueError as error:
            self._log_bad(OBJECTS_TOPIC, error)
            return
        self._run.add_objects(stamp_ns(msg.header), objects)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        received = self._now_ns()
        for status in msg.status:
            if status.name.startswith(f"{self._target}:"):
                self._run.set_diagnostics({v.key: v.value for v in status.values}, received)

    def _log_bad(self, topic: str, error: Exception) -> None:
        self.get_logger().error(
            f"cannot record {self._target}/{topic}: {error}", throttle_duration_sec=LOG_THROTTLE_S
        )
