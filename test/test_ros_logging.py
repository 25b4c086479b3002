"""The package's Python logging reaches the node's ROS log and /rosout while a node runs."""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings

import rclpy
from rcl_interfaces.msg import Log
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_test_env import isolate_ros_domain, spin_in_background

from synboost_ros.ros.log_forwarding import PACKAGE_LOGGER, LogForwarding, ros_severity
from synboost_ros.ros.node import AnomalyNode

WAIT_S = 30.0
SMALL_MODEL = {
    "random_weights": True,
    "device": "cpu",
    "segmentation_height": 192,
    "segmentation_width": 192,
    "synthesis_height": 64,
    "synthesis_width": 64,
    "self_test": False,
}
# /rosout keeps its last messages for late subscribers (transient local, as rcl publishes it).
ROSOUT_QOS = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class FakeRosLogger:
    """What LogForwarding uses of an rclpy logger."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.records: list[tuple[str, int]] = []

    def get_effective_level(self) -> int:
        return self.level

    def debug(self, message: str) -> None:
        self.records.append((message, 10))

    def info(self, message: str) -> None:
        self.records.append((message, 20))

    def warning(self, message: str) -> None:
        self.records.append((message, 30))

    def error(self, message: str) -> None:
        self.records.append((message, 40))

    def fatal(self, message: str) -> None:
        self.records.append((message, 50))


def test_severities_follow_python_levels():
    assert [ros_severity(level) for level in (5, 10, 20, 25, 30, 40, 50, 60)] == [
        10, 10, 20, 20, 30, 40, 50, 50,
    ]  # fmt: skip


def test_forwarding_passes_records_at_the_node_level_and_detaches():
    package = logging.getLogger(PACKAGE_LOGGER)
    child = logging.getLogger(f"{PACKAGE_LOGGER}.backends.factory")
    level = package.level
    ros_logger = FakeRosLogger(logging.INFO)
    forwarding = LogForwarding(ros_logger)
    try:
        child.debug("below the node's level")
        child.info("engine build takes minutes")
        try:
            raise ValueError("boom")
        except ValueError:
            child.exception("failed")
    finally:
        forwarding.close()
    child.warning("after close")
    assert ros_logger.records[0] == ("engine build takes minutes", 20)
    message, severity = ros_logger.records[1]
    assert (
        severity == 40 and message.startswith("failed\nTraceback") and "ValueError: boom" in message
    )
    assert len(ros_logger.records) == 2
    assert package.level == level and not package.handlers


def test_backend_fall_back_reaches_rosout(monkeypatch):
    """backend auto on the CPU tries onnxruntime first (the real factory); with its backend
    module unimportable it falls back to torch and says so through Python logging."""
    isolate_ros_domain(monkeypatch)
    monkeypatch.setitem(sys.modules, "synboost_ros.backends.onnxruntime_backend", None)
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    name = f"sblog{os.getpid()}"
    received: list[Log] = []
    arrived = threading.Event()

    def store(msg: Log) -> None:
        received.append(msg)
        if msg.name == name and "backend onnxruntime unavailable" in msg.msg:
            arrived.set()

    try:
        tester = Node("rosout_tester", context=context)
        tester.create_subscription(Log, "/rosout", store, ROSOUT_QOS)
        executor.add_node(tester)
        spin_in_background(executor)
        parameters = [Parameter(k, value=v) for k, v in {**SMALL_MODEL, "backend": "auto"}.items()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "random weights" warning
            node = AnomalyNode(name, context=context, parameter_overrides=parameters)
        try:
            assert node.diagnostic_statuses()[0].values[0].value == "torch"  # the fall-back ran
            assert arrived.wait(WAIT_S), [(m.name, m.msg) for m in received]
            (fall_back,) = [m for m in received if "backend onnxruntime unavailable" in m.msg]
            assert fall_back.level == Log.WARN
            assert "trying the next one" in fall_back.msg
            # Every severity through the one handler (rclpy ties a severity to a call site).
            package = logging.getLogger(f"{PACKAGE_LOGGER}.backends.tensorrt.build")
            arrived.clear()
            package.info("the TensorRT build takes minutes")
            package.error("engine build failed")
            package.warning("backend onnxruntime unavailable (again)")
            assert arrived.wait(WAIT_S)
            levels = {m.msg: m.level for m in received if m.name == name}
            assert levels["the TensorRT build takes minutes"] == Log.INFO
            assert levels["engine build failed"] == Log.ERROR
        finally:
            node.destroy_node()
        assert not logging.getLogger(PACKAGE_LOGGER).handlers
    finally:
        executor.shutdown()
        rclpy.shutdown(context=context)
