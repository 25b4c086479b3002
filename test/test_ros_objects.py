"""~/anomaly_objects, ~/anomaly_summary, the boxes on ~/overlay and the start-up self-test,
on a real ROS 2 graph over loopback.

The node runs a scripted pipeline whose maps are hand-made (an obstacle on the road, a blob on
a facade), so every published box and value can be checked against the plain-Python cores;
two more tests start nodes whose outputs are broken, one of them with real NaN weights.
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_test_env import ros_environment, spin_in_background
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_self_test import nan_weights

from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import ObjectSettings, extract_objects
from synboost_ros.postprocess.summary import SummarySettings, summarize
from synboost_ros.ros.anomaly_messages import objects_from_message, objects_message_type
from synboost_ros.ros.node import AnomalyNode, StartupError
from synboost_ros.visualize import draw_objects, overlay

NAMESPACE = f"/sbobj{os.getpid()}"
WAIT_S = 30.0
PERIOD_S = 1 / 20
SIZE = (120, 160)
IMAGE = np.random.default_rng(4).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
PARAMETERS = {"diagnostics_period": 0.3, "min_rate_hz": 0.0, "latency_budget_ms": 1e6}
ROAD, BUILDING = 0, 2


def scene_maps(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Building above the middle, road below; an obstacle on the road, a blob on the facade."""
    semantic = np.full((height, width), BUILDING, np.uint8)
    semantic[height // 2 :] = ROAD
    anomaly = np.zeros((height, width), np.float32)
    anomaly[height // 2 + 10 : height // 2 + 22, 30:50] = 0.55
    anomaly[height // 2 + 14, 40] = 0.95
    anomaly[10:20, width - 40 : width - 25] = 0.8
    return anomaly, semantic


class ScriptedPipeline:
    """Stands in for ``AnomalyPipeline``: hand-made maps at the camera size, NaN on request."""

    backend_name, device, precision, layout, graphs = "scripted", "cpu", "fp32", "nchw", "off"

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.requested: list[set[str] | None] = []
        self.postprocess: list[Any] = []

    def set_postprocess(self, options: Any) -> None:
        self.postprocess.append(options)

    def __call__(self, image: np.ndarray, outputs=None, temporal=None) -> PipelineResult:
        self.requested.append(None if outputs is None else set(outputs))
        anomaly, semantic = scene_maps(*image.shape[:2])
        if self.broken:
            anomaly[:] = np.nan
        zeros = np.zeros(image.shape[:2], np.float32)
        maps = {
            "semantic": semantic,
            "entropy": zeros,
            "distance": zeros,
            "perceptual": zeros,
            "dissimilarity": anomaly,
            "anomaly": anomaly,
            "synthesized": image.copy(),
        }
        wanted = maps.keys() if outputs is None else outputs
        return PipelineResult(**{k: maps[k] for k in wanted}, timings_ms={"total": 1.0})


class Collector:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.messages: dict[str, list] = defaultdict(list)

    def store(self, key: str) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            with self._condition:
                self.messages[key].append(msg)
                self._condition.notify_all()

        return callback

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(predicate, timeout)

    def latest(self, key: str, frame_id: str) -> Any:
        with self._condition:
            found = [m for m in self.messages[key] if _frame_id(m) == frame_id]
        return found[-1] if found else None


def _frame_id(msg: Any) -> str:
    return msg.header.frame_id


def header(frame_id: str) -> Header:
    stamped = Header(frame_id=frame_id)
    stamped.stamp.sec, stamped.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
    return stamped


def image_msg(frame_id: str) -> Image:
    height, width = SIZE
    return Image(
        header=header(frame_id),
        height=height,
        width=width,
        encoding="rgb8",
        step=width * 3,
        data=IMAGE.tobytes(),
    )


def as_array(msg: Image) -> np.ndarray:
    dtype, channels = (np.float32, 1) if msg.encoding == "32FC1" else (np.uint8, 3)
    array = np.frombuffer(bytes(msg.data), dtype=dtype)
    return array.reshape((msg.height, msg.width, channels) if channels == 3 else SIZE)


class Graph:
    """The scripted node, a tester node and their executor."""

    def __init__(self, context: Any) -> None:
        self.pipeline = ScriptedPipeline()
        overrides = [Parameter(k, value=v) for k, v in PARAMETERS.items()]
        self.node = AnomalyNode(
            "sbo",
            namespace=NAMESPACE,
            context=context,
            pipeline_factory=lambda **_: self.pipeline,
            parameter_overrides=overrides,
        )
        self.tester = Node("objects_tester", namespace=NAMESPACE, context=context)
        self.collector = Collector()
        self.camera = self.tester.create_publisher(Image, f"{NAMESPACE}/image", 10)
        self.tester.create_subscription(
            DiagnosticArray, "/diagnostics", self.collector.store("diagnostics"), 10
        )

    def subscribe(self, topic: str, msg_type: type) -> Any:
        return self.tester.create_subscription(
            msg_type, f"{NAMESPACE}/sbo/{topic}", self.collector.store(topic), 10
        )

    def publish_until(self, frame_id: str, done: Callable[[], bool]) -> bool:
        msg = image_msg(frame_id)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            self.camera.publish(msg)
            if self.collector.wait_for(done, PERIOD_S):
                return True
        return False


@pytest.fixture(scope="module")
def graph():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ros_environment().items():
            patch.setenv(name, value)
        context = rclpy.Context()
        rclpy.init(context=context)
        built = Graph(context)
        executor = MultiThreadedExecutor(num_threads=3, context=context)
        executor.add_node(built.node)
        executor.add_node(built.tester)
        spinner = spin_in_background(executor)
        try:
            yield built
        finally:
            executor.shutdown()
            spinner.join(WAIT_S)
            built.node.destroy_node()
            built.tester.destroy_node()
            rclpy.shutdown(context=context)


def expected_analysis(settings: SummarySettings | None = None):
    anomaly, semantic = scene_maps(*SIZE)
    objects = extract_objects(anomaly, semantic, ObjectSettings())
    summary = summarize(anomaly, semantic, objects, (ROAD,), settings or SummarySettings())
    return anomaly, objects, summary


def summary_values(msg: DiagnosticArray) -> dict[str, str]:
    (status,) = msg.status
    return {kv.key: kv.value for kv in status.values}


def same_stamp(msg: Any, sent: Header) -> bool:
    return (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
        sent.stamp.sec,
        sent.stamp.nanosec,
    )


def test_objects_summary_and_boxes_on_the_overlay_carry_the_input_header(graph):
    topics = {"anomaly_objects": objects_message_type(), "anomaly_summary": DiagnosticArray}
    subscriptions = [graph.subscribe(t, m) for t, m in {**topics, "overlay": Image}.items()]
    try:
        frame = "with_objects"
        assert graph.publish_until(
            frame,
            lambda: all(graph.collector.latest(t, frame) for t in (*topics, "overlay")),
        ), "no objects, summary and overlay for the frame"
        anomaly, objects, summary = expected_analysis()
        assert len(objects.objects) == 2  # the obstacle and the facade blob
        sent = graph.collector.latest("overlay", frame)
        objects_msg = graph.collector.latest("anomaly_objects", frame)
        summary_msg = graph.collector.latest("anomaly_summary", frame)
        for msg in (objects_msg, summary_msg):
            assert msg.header.frame_id == frame and same_stamp(msg, sent.header)
        received = objects_from_message(objects_msg)
        assert received == [  # every field; the scores to the message's 4 decimals
            replace(
                o,
                mean_score=pytest.approx(o.mean_score, abs=1e-4),
                max_score=pytest.approx(o.max_score, abs=1e-4),
            )
            for o in objects.objects
        ]
        assert [o.on_drivable for o in received] == [True, False]
        assert summary_values(summary_msg) == dict(summary.key_values())
        assert summary_msg.status[0].level == DiagnosticStatus.WARN  # 0.95 >= alarm_score 0.7
        expected_overlay = draw_objects(overlay(IMAGE, anomaly, 0.5), objects.objects)
        np.testing.assert_array_equal(as_array(sent), expected_overlay)
        assert graph.pipeline.requested[-1] == {"anomaly", "semantic"}
    finally:
        for subscription in subscriptions:
            graph.tester.destroy_subscription(subscription)


def test_the_analysis_is_skipped_when_nobody_wants_it(graph):
    subscription = graph.subscribe("anomaly", Image)
    try:
        # Only ~/anomaly: the pipeline is asked for the anomaly map alone, no analysis runs.
        assert graph.publish_until(
            "plain", lambda: graph.collector.latest("anomaly", "plain") is not None
        )
        assert graph.pipeline.requested[-1] == {"anomaly"}
    finally:
        graph.tester.destroy_subscription(subscription)
    # Nobody at all: frames are counted idle.
    idle_before = graph.node.stats.snapshot().counters.frames_idle
    assert graph.publish_until(
        "nobody", lambda: graph.node.stats.snapshot().counters.frames_idle > idle_before
    )


def test_summary_alone_runs_the_analysis_and_follows_parameter_changes(graph):
    subscription = graph.subscribe("anomaly_summary", DiagnosticArray)
    try:
        results = graph.node.set_parameters(
            [Parameter("alarm_score", value=0.99), Parameter("object_min_area", value=500)]
        )
        assert all(r.successful for r in results)
        assert graph.publish_until(
            "strict", lambda: graph.collector.latest("anomaly_summary", "strict") is not None
        )
        msg = graph.collector.latest("anomaly_summary", "strict")
        values = summary_values(msg)
        assert values["alarm"] == "false" and values["alarm_score"] == "0.99"
        assert values["objects"] == "0"  # no object has 500 pixels
        assert msg.status[0].level == DiagnosticStatus.OK
        assert graph.pipeline.requested[-1] == {"anomaly", "semantic"}
    finally:
        graph.node.set_parameters(
            [Parameter("alarm_score", value=0.7), Parameter("object_min_area", value=30)]
        )
        graph.tester.destroy_subscription(subscription)


def test_the_self_test_ran_before_subscribing_and_is_in_the_diagnostics(graph):
    assert graph.pipeline.requested[:2] == [None, None]  # warm-up and timed run, all outputs
    name = f"{NAMESPACE}/sbo: anomaly detection"

    def found() -> bool:
        return any(
            status.name == name
            for array in graph.collector.messages["diagnostics"]
            for status in array.status
        )

    assert graph.collector.wait_for(found, WAIT_S)
    status = next(
        s for a in graph.collector.messages["diagnostics"] for s in a.status if s.name == name
    )
    values = {kv.key: kv.value for kv in status.values}
    assert values["self_test"].startswith("passed: ") and "latency_budget_ms" in values["self_test"]


def test_broken_outputs_refuse_to_start_with_one_message(monkeypatch):
    """The node publishes the failure as an ERROR status on /diagnostics, then refuses to start
    with a StartupError of the same text. The listener shares the node's context (one DDS
    participant), and the pipeline is created only once it sees the node's /diagnostics
    publisher, so that one message cannot go out before discovery."""
    for name, value in ros_environment().items():
        monkeypatch.setenv(name, value)
    context = rclpy.Context()
    rclpy.init(context=context)
    listener = Node("broken_listener", namespace=NAMESPACE, context=context)
    collector = Collector()
    listener.create_subscription(DiagnosticArray, "/diagnostics", collector.store("diag"), 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    spinner = spin_in_background(executor)
    status_name = f"{NAMESPACE}/sbbroken: anomaly detection"

    def broken_pipeline(**_: Any) -> ScriptedPipeline:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not any(
            info.node_name == "sbbroken"
            for info in listener.get_publishers_info_by_topic("/diagnostics")
        ):
            time.sleep(0.01)
        return ScriptedPipeline(broken=True)

    def reported() -> list[DiagnosticStatus]:
        arrays = collector.messages["diag"]
        return [status for array in arrays for status in array.status if status.name == status_name]

    try:
        with pytest.raises(StartupError) as caught:
            AnomalyNode(
                "sbbroken",
                namespace=NAMESPACE,
                context=context,
                pipeline_factory=broken_pipeline,
            )
        assert collector.wait_for(reported, WAIT_S), "no status of the node on /diagnostics"
    finally:
        executor.shutdown()
        spinner.join(WAIT_S)
        listener.destroy_node()
        rclpy.shutdown(context=context)
    message = str(caught.value)
    assert re.fullmatch(
        r"self-test failed: .*anomaly has 131072 non-finite.*; not starting", message
    )
    (status,) = reported()
    assert status.level == DiagnosticStatus.ERROR
    assert status.message == f"pipeline failed to load: {message}"
    assert {kv.key: kv.value for kv in status.values}["backend"] == "scripted"


def test_weights_that_give_nan_refuse_to_start(monkeypatch, tmp_path):
    for name, value in ros_environment().items():
        monkeypatch.setenv(name, value)
    folder = nan_weights(tmp_path / "nan_weights")
    overrides = {
        "weights": str(folder),
        "backend": "torch",
        "device": "cpu",
        "segmentation_height": 192,
        "segmentation_width": 192,
        "synthesis_height": 64,
        "synthesis_width": 64,
    }
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with warnings.catch_warnings(), pytest.raises(StartupError) as caught:
            warnings.simplefilter("ignore")
            AnomalyNode(
                "sbnan",
                namespace=NAMESPACE,
                context=context,
                parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
            )
    finally:
        rclpy.shutdown(context=context)
    message = str(caught.value)
    assert message.startswith("self-test failed: ") and "non-finite" in message
    assert "entropy has" in message and str(folder) in message and "not starting" in message
