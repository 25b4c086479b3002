"""``synboost soak``: start ``anomaly_node`` as a user would (a child process), drive a camera at
a given rate, size and QoS for a while, read every output reliably, and summarise.

The harness's subscriptions take the images serialised (``raw=True``) and read only the header
stamp, so the subscriber is cheap and its receive times measure delivery, not its own
deserialisation; ``~/timing`` (the node's e2e per frame) and ``/diagnostics`` are read whole.
The node's resident memory is read from ``/proc`` once a second. Plain figures and checks:
``demo/soak_report.py``.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from synboost_ros.demo.node_process import NodeProcess
from synboost_ros.demo.soak_report import RSS_PERIOD_S, SoakRecord, soak_checks, soak_summary
from synboost_ros.ros.anomaly_messages import objects_message_type
from synboost_ros.ros.frame_outputs import TIMING_TOPIC, image_topics
from synboost_ros.ros.scene_outputs import OBJECTS_TOPIC, SUMMARY_TOPIC

try:  # Iron and later
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

QOS_CHOICES = ("reliable", "best_effort")
# Deep enough that the harness itself never drops: it only stores a stamp per sample.
SUBSCRIBER_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE
)
# A stalled reader: keeps every sample and never takes one (the worst case for the writer).
STALLED_QOS = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
CAMERA_DEPTH = 10
SETTLE_S = 2.0  # after every output is matched, before the first frame
DRAIN_TIMEOUT_S = 60.0
QUIET_S = 10.0  # no output for this long after the last frame: whatever is missing is lost
POLL_S = 0.05
SPIN_JOIN_S = 5.0
STAMP = struct.Struct("<iI")  # std_msgs/Header stamp after the 4-byte CDR encapsulation


def soak_outputs(publish_synthesized: bool = False) -> tuple[str, ...]:
    """Every output topic of the node except ``timing`` (read separately)."""
    return (*image_topics(publish_synthesized), SUMMARY_TOPIC, OBJECTS_TOPIC)


@dataclass(frozen=True)
class SoakSettings:
    """One soak run."""

    rate_hz: float = 10.0
    size: tuple[int, int] = (480, 640)
    qos: str = "reliable"
    duration_s: float = 60.0
    node_params: tuple[str, ...] = ()  # NAME:=VALUE for the node
    node_name: str = field(default_factory=lambda: f"soak_node_{os.getpid()}")
    stalled_subscriber: bool = False  # also subscribe every image output and never read
    start_timeout_s: float = 300.0
    log_path: Path = Path("soak_node.log")

    @property
    def camera_topic(self) -> str:
        """The camera topic the harness publishes and the node reads."""
        return f"/{self.node_name}_camera/image_raw"

    def node_command(self) -> list[str]:
        """The node's command line (``python -m synboost_ros.ros.node``)."""
        input_qos = "reliable" if self.qos == "reliable" else "sensor_data"
        params = ["diagnostics_period:=0.5", f"input_qos:={input_qos}", *self.node_params]
        command = [sys.executable, "-m", "synboost_ros.ros.node", "--ros-args"]
        command += ["-r", f"__node:={self.node_name}", "-r", f"image:={self.camera_topic}"]
        return command + [arg for param in params for arg in ("-p", param)]


def header_stamp_ns(serialized: bytes) -> int:
    """The header stamp (ns) of a serialised message whose first field is a std_msgs/Header
    (CDR, little-endian as every ROS 2 middleware writes on these hosts)."""
    sec, nanosec = STAMP.unpack_from(serialized, 4)
    return sec * 1_000_000_000 + nanosec


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MB, from /proc (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class SoakMonitor(Node):
    """The camera publisher and a reliable subscriber to every output of node ``target``."""

    def __init__(
        self, target: str, record: SoakRecord, camera_topic: str, qos: str, **options: Any
    ) -> None:
        super().__init__(f"soak_monitor_{os.getpid()}", **options)
        self.record = record
        self._target = target
        reliability = (
            ReliabilityPolicy.RELIABLE if qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
        )
        camera_qos = QoSProfile(depth=CAMERA_DEPTH, reliability=reliability)
        self.camera = self.create_publisher(Image, camera_topic, camera_qos)
        self._readers = [self._subscribe_raw(topic) for topic in record.outputs]
        self._readers.append(
            self.create_subscription(
                DiagnosticArray, f"/{target}/{TIMING_TOPIC}", self._on_timing, SUBSCRIBER_QOS
            )
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _subscribe_raw(self, topic: str) -> Any:
        message_type = Image
        if topic == OBJECTS_TOPIC:
            message_type = objects_message_type()
        elif topic == SUMMARY_TOPIC:
            message_type = DiagnosticArray
        return self.create_subscription(
            message_type,
            f"/{self._target}/{topic}",
            partial(self._on_output, topic),
            SUBSCRIBER_QOS,
            raw=True,
            event_callbacks=SubscriptionEventCallbacks(
                message_lost=lambda info: self.record.lost(topic, info.total_count_change)
            ),
        )

    def connected(self) -> bool:
        """Whether the node reads the camera and every output subscription is matched."""
        return self.camera.get_subscription_count() > 0 and all(
            s.get_publisher_count() > 0 for s in self._readers
        )

    def _on_output(self, topic: str, serialized: bytes) -> None:
        self.record.output_received(topic, header_stamp_ns(serialized), time.time_ns())

    def _on_timing(self, msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for kv in msg.status[0].values}
        self.record.timing_received(_stamp_ns(msg), float(values["e2e_ms"]))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == f"/{self._target}: anomaly detection":
                self.record.diagnostics_received({kv.key: kv.value for kv in status.values})

    def camera_frame(self, size: tuple[int, int]) -> Image:
        """A camera image (rgb8 noise) whose stamp ``send`` sets."""
        height, width = size
        pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        msg.data = pixels.tobytes()
        msg.header.frame_id = "soak_camera"
        return msg

    def send(self, msg: Image) -> int:
        """Publish ``msg`` stamped now; return the stamp (ns)."""
        now = self.get_clock().now()
        msg.header.stamp = now.to_msg()
        self.camera.publish(msg)
        self.record.frame_sent()
        return now.nanoseconds


def stalled_subscriber(context: Any, target: str, outputs: Sequence[str]) -> Node:
    """A node subscribing every image output with KEEP_ALL reliable QoS that is never spun."""
    node = Node(f"soak_stalled_{os.getpid()}", context=context)
    for topic in outputs:
        if topic not in (SUMMARY_TOPIC, OBJECTS_TOPIC):
            node.create_subscription(Image, f"/{target}/{topic}", lambda _: None, STALLED_QOS)
    return node


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, node: NodeProcess
) -> float:
    """Seconds until ``condition``; ``RuntimeError`` naming ``what`` on timeout or node exit."""
    start = time.monotonic()
    while not condition():
        if node.exit_code is not None:
            raise RuntimeError(
                f"the node exited with {node.exit_code} while waiting for {what}:\n"
                + node.log_tail()
            )
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(POLL_S)
    return time.monotonic() - start


def _sample_rss(pid: int, record: SoakRecord, origin: float, stop: threading.Event) -> None:
    while not stop.wait(RSS_PERIOD_S):
        mb = rss_mb(pid)
        if mb is not None:
            record.rss_sample(time.monotonic() - origin, mb)


def _drive(monitor: SoakMonitor, settings: SoakSettings) -> None:
    """Publish frames at the rate for the duration (no catching up after a late frame)."""
    msg = monitor.camera_frame(settings.size)
    period = 1.0 / settings.rate_hz
    start = time.monotonic()
    next_time = start
    while next_time - start < settings.duration_s:
        monitor.send(msg)
        next_time = max(next_time + period, time.monotonic())
        time.sleep(max(0.0, next_time - time.monotonic()))


def _drained(record: SoakRecord) -> bool:
    """The node has no frame in progress and the subscriber has every output of every frame
    the node counted out, or nothing arrived for ``QUIET_S``."""
    values = record.diagnostics
    if values.get("frames_in_progress") != "0":
        return False
    if (
        record.processed_count() >= int(values.get("frames_out", 0))
        and record.all_outputs_arrived()
    ):
        return True
    return time.time_ns() - record.last_arrival_ns() > QUIET_S * 1e9


def run_soak(settings: SoakSettings, rss_slope_limit: float) -> dict:
    """Run the node under the camera for ``settings.duration_s``; return the JSON summary
    with ``checks`` (``soak_report.soak_checks``)."""
    record = SoakRecord(outputs=soak_outputs("publish_synthesized:=true" in settings.node_params))
    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    executor = SingleThreadedExecutor(context=context)
    monitor = SoakMonitor(
        settings.node_name, record, settings.camera_topic, settings.qos, context=context
    )
    executor.add_node(monitor)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    stalled = None
    if settings.stalled_subscriber:
        stalled = stalled_subscriber(context, settings.node_name, record.outputs)
    stop_rss = threading.Event()
    node = NodeProcess(settings.node_command(), settings.log_path)
    try:
        start_s = wait_until(monitor.connected, settings.start_timeout_s, "the node", node)
        time.sleep(SETTLE_S)
        origin = time.monotonic()
        sampler = threading.Thread(
            target=_sample_rss, args=(node.pid, record, origin, stop_rss), daemon=True
        )
        record.rss_sample(0.0, rss_mb(node.pid) or float("nan"))
        sampler.start()
        _drive(monitor, settings)
        wait_until(lambda: _drained(record), DRAIN_TIMEOUT_S, "the node to drain", node)
        count = record.diagnostics_count  # one more status, sent after the drain
        wait_until(lambda: record.diagnostics_count > count, 10.0, "diagnostics", node)
        stop_rss.set()
        summary = soak_summary(record.snapshot())
    finally:
        stop_rss.set()
        exit_code = node.stop()
        if stalled is not None:
            stalled.destroy_node()
        executor.shutdown()
        spinner.join(SPIN_JOIN_S)
        monitor.destroy_node()
        rclpy.try_shutdown(context=context)
    summary["node"] = {"command": settings.node_command(), "start_s": round(start_s, 2)}
    summary["node"]["exit_code"] = exit_code
    summary["settings"] = {
        "rate_hz": settings.rate_hz,
        "size": f"{settings.size[0]}x{settings.size[1]}",
        "qos": settings.qos,
        "duration_s": settings.duration_s,
        "stalled_subscriber": settings.stalled_subscriber,
        "rss_slope_limit_mb_per_min": rss_slope_limit,
    }
    summary["checks"] = soak_checks(summary, rss_slope_limit)
    summary["checks"]["clean_exit"] = exit_code == 0
    return summary
