"""anomaly_node over real rclpy on loopback, with the real edge pipeline (random weights).

Two nodes run in this process (raw and compressed input) next to a tester node, all on one
executor thread pool; two more tests start ``python -m synboost_ros.ros.node`` itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Log
from rcl_interfaces.srv import SetParameters
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_test_env import ros_environment, spin_in_background
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from synboost_ros.classes import NUM_CLASSES, colorize
from synboost_ros.options import resolve_precision
from synboost_ros.pipeline import AnomalyPipeline
from synboost_ros.ros.node import LOG_THROTTLE_S, AnomalyNode, fallback_log_dir
from synboost_ros.ros.outputs import TOPIC_MAPS, required_maps
from synboost_ros.visualize import overlay

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = f"/sbtest{os.getpid()}"
WAIT_S = 30.0  # generous: two shared cores
# A node started as a process imports torch and builds its pipeline first.
PROCESS_START_S = 180.0
FRAME_PERIOD_S = 1 / 30
ALL_TOPICS = tuple(TOPIC_MAPS)
ENCODINGS = {
    "semantic": "mono8",
    "semantic_color": "rgb8",
    "entropy": "32FC1",
    "distance": "32FC1",
    "perceptual": "32FC1",
    "anomaly": "32FC1",
    "anomaly_mask": "mono8",
    "overlay": "rgb8",
    "synthesized": "rgb8",
}
SMALL_MODEL = {
    "preset": "edge",
    "random_weights": True,
    "backend": "torch",
    "device": "cpu",
    "segmentation_height": 192,
    "segmentation_width": 192,
    "synthesis_height": 64,
    "synthesis_width": 64,
    "overlay_alpha": 0.0,  # ~/overlay is then exactly the decoded camera image ...
    "draw_objects": False,  # ... without object boxes (test_ros_objects.py draws them)
    "self_test": False,  # test_ros_objects.py and the console-command test run it
    "diagnostics_period": 0.3,
    "min_rate_hz": 0.0,
    "latency_budget_ms": 1e6,
}
ROSOUT_QOS = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RNG = np.random.default_rng(11)
IMAGE = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
ODD = RNG.integers(0, 256, (75, 133, 3), dtype=np.uint8)


class RecordingPipeline:
    """The real pipeline, with an adjustable delay and a record of the maps asked for."""

    def __init__(self, pipeline: AnomalyPipeline) -> None:
        self._pipeline = pipeline
        self.delay_s = 0.0
        self.requested: list[set[str]] = []

    def __call__(self, image: np.ndarray, outputs=None, temporal=None):
        self.requested.append(set(outputs))
        if self.delay_s:
            time.sleep(self.delay_s)
        return self._pipeline(image, outputs, temporal=temporal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


class Collector:
    """Thread-safe store of received messages, keyed by (source, topic)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.messages: dict[Any, list] = defaultdict(list)

    def callback(self, key: Any) -> Callable[[Any], None]:
        def store(msg: Any) -> None:
            with self._condition:
                self.messages[key].append(msg)
                self._condition.notify_all()

        return store

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(predicate, timeout)

    def latest(self, key: Any, frame_id: str) -> Any:
        with self._condition:
            found = [m for m in self.messages[key] if _frame_id(m) == frame_id]
        return found[-1] if found else None


def _frame_id(msg: Any) -> str:
    return msg.header.frame_id


def _values(status: DiagnosticStatus) -> list[tuple[str, str]]:
    return [(kv.key, kv.value) for kv in status.values]


def _timing_values(timing: DiagnosticArray) -> dict[str, str]:
    (status,) = timing.status
    return dict(_values(status))


@dataclass
class Harness:
    tester: Node
    collector: Collector
    raw_node: AnomalyNode
    compressed_node: AnomalyNode
    raw_pipeline: RecordingPipeline
    compressed_pipeline: RecordingPipeline
    raw_pub: Any
    compressed_pub: Any


def pipeline_factory(store: list) -> Callable[..., RecordingPipeline]:
    def create(**arguments: Any) -> RecordingPipeline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "random weights" warning
            pipeline = RecordingPipeline(AnomalyPipeline.create(**arguments))
        store.append(pipeline)
        return pipeline

    return create


def overrides(**values: Any) -> list[Parameter]:
    return [Parameter(name, value=value) for name, value in {**SMALL_MODEL, **values}.items()]


@pytest.fixture(scope="module")
def ros():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ros_environment().items():
            patch.setenv(name, value)
        context = rclpy.Context()
        rclpy.init(context=context)
        pipelines: list[RecordingPipeline] = []
        raw_node = AnomalyNode(
            "sb",
            namespace=NAMESPACE,
            context=context,
            pipeline_factory=pipeline_factory(pipelines),
            parameter_overrides=overrides(publish_synthesized=True),
        )
        compressed_node = AnomalyNode(
            "sbc",
            namespace=NAMESPACE,
            context=context,
            pipeline_factory=pipeline_factory(pipelines),
            parameter_overrides=overrides(input="compressed", input_qos="reliable"),
        )
        tester = Node("tester", namespace=NAMESPACE, context=context)
        collector = Collector()
        for topic in ALL_TOPICS:
            tester.create_subscription(
                Image, f"{NAMESPACE}/sb/{topic}", collector.callback(("sb", topic)), 10
            )
        # The compressed node only has subscribers on ~/overlay and ~/timing.
        tester.create_subscription(
            Image, f"{NAMESPACE}/sbc/overlay", collector.callback(("sbc", "overlay")), 10
        )
        for name in ("sb", "sbc"):
            tester.create_subscription(
                DiagnosticArray,
                f"{NAMESPACE}/{name}/timing",
                collector.callback((name, "timing")),
                10,
            )
        tester.create_subscription(
            DiagnosticArray, "/diagnostics", collector.callback("diagnostics"), 10
        )
        harness = Harness(
            tester=tester,
            collector=collector,
            raw_node=raw_node,
            compressed_node=compressed_node,
            raw_pipeline=pipelines[0],
            compressed_pipeline=pipelines[1],
            raw_pub=tester.create_publisher(Image, f"{NAMESPACE}/image", 10),
            compressed_pub=tester.create_publisher(
                CompressedImage, f"{NAMESPACE}/image/compressed", 10
            ),
        )
        executor = MultiThreadedExecutor(num_threads=3, context=context)
        for node in (raw_node, compressed_node, tester):
            executor.add_node(node)
        spinner = spin_in_background(executor)
        try:
            yield harness
        finally:
            executor.shutdown()
            spinner.join(WAIT_S)
            for node in (raw_node, compressed_node, tester):
                node.destroy_node()
            rclpy.shutdown(context=context)


def header(frame_id: str) -> Header:
    """A header stamped now (system time, as the nodes' clocks), so e2e latencies are real."""
    now_ns = time.time_ns()
    stamped = Header(frame_id=frame_id)
    stamped.stamp.sec, stamped.stamp.nanosec = divmod(now_ns, 1_000_000_000)
    return stamped


def image_msg(
    pixels: np.ndarray, encoding: str, head: Header, pad: int = 0, bigendian: bool = False
) -> Image:
    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, rows.shape[1] + pad), dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    return Image(
        header=head,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=padded.tobytes(),
    )


def compressed_msg(data: bytes, fmt: str, head: Header) -> CompressedImage:
    return CompressedImage(header=head, format=fmt, data=data)


def publish_until(
    publisher: Any, msg: Any, done: Callable[[], bool], ros: Harness, timeout: float = WAIT_S
) -> bool:
    """Publish ``msg`` at about 30 Hz until ``done()``; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        publisher.publish(msg)
        if ros.collector.wait_for(done, FRAME_PERIOD_S):
            return True
    return False


def all_outputs(ros: Harness, source: str, topics: tuple[str, ...], frame_id: str) -> bool:
    keys = [(source, topic) for topic in (*topics, "timing")]
    return all(ros.collector.latest(key, frame_id) is not None for key in keys)


def as_array(msg: Image) -> np.ndarray:
    dtype = np.float32 if msg.encoding == "32FC1" else np.uint8
    channels = 3 if msg.encoding == "rgb8" else 1
    assert msg.step == msg.width * channels * np.dtype(dtype).itemsize
    array = np.frombuffer(bytes(msg.data), dtype=dtype)
    shape = (msg.height, msg.width, 3) if channels == 3 else (msg.height, msg.width)
    return array.reshape(shape)


def check_outputs(ros: Harness, frame_id: str, sent: Header, size: tuple[int, int]) -> dict:
    """Every output of the raw node for ``frame_id``: header, encoding, size, value ranges."""
    arrays = {}
    for topic in ALL_TOPICS:
        msg = ros.collector.latest(("sb", topic), frame_id)
        assert msg.header.frame_id == sent.frame_id
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
            sent.stamp.sec,
            sent.stamp.nanosec,
        )
        assert msg.encoding == ENCODINGS[topic], topic
        assert (msg.height, msg.width) == size, topic
        arrays[topic] = as_array(msg)
    for topic in ("entropy", "distance", "perceptual", "anomaly"):
        assert arrays[topic].min() >= 0.0 and arrays[topic].max() <= 1.0, topic
    assert arrays["semantic"].max() < NUM_CLASSES
    np.testing.assert_array_equal(arrays["semantic_color"], colorize(arrays["semantic"]))
    np.testing.assert_array_equal(arrays["anomaly_mask"] == 255, arrays["anomaly"] >= 0.5)
    assert set(np.unique(arrays["anomaly_mask"])) <= {0, 255}
    timing_msg = ros.collector.latest(("sb", "timing"), frame_id)
    assert (timing_msg.header.stamp.sec, timing_msg.header.stamp.nanosec) == (
        sent.stamp.sec,
        sent.stamp.nanosec,
    )
    timing = _timing_values(timing_msg)
    assert ros.raw_node.parameters.temporal_fusion  # on by default: its stage is timed
    stages = ("decode", "preprocess", "segmentation", "synthesis", "dissimilarity", "temporal")
    for stage in stages:
        assert float(timing[f"{stage}_ms"]) >= 0.0
    for stage in ("postprocess", "pipeline", "publish", "total", "e2e"):
        assert f"{stage}_ms" in timing
    return arrays


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


MONO16 = (np.arange(75 * 133, dtype=np.uint32).reshape(75, 133) * 6 % 65536).astype(np.uint16)
BAYER_COLOUR = (200, 100, 30)
BAYER = np.zeros((75, 133), dtype=np.uint8)
BAYER[0::2, 0::2], BAYER[1::2, 1::2] = BAYER_COLOUR[0], BAYER_COLOUR[2]  # rggb
BAYER[0::2, 1::2] = BAYER[1::2, 0::2] = BAYER_COLOUR[1]

YUV422 = RNG.integers(16, 236, (76, 134, 2), dtype=np.uint8)  # packed 4:2:2, even width

RAW_CASES = {
    # name: (pixels, encoding, pad, big-endian, expected RGB or None)
    "rgb8": (IMAGE, "rgb8", 0, False, IMAGE),
    "bgr8_odd": (cv2.cvtColor(ODD, cv2.COLOR_RGB2BGR), "bgr8", 0, False, ODD),
    "rgb8_padded": (ODD, "rgb8", 7, False, ODD),
    "mono8": (ODD[..., 1], "mono8", 0, False, gray_rgb(ODD[..., 1])),
    "mono16_bigendian": (
        MONO16,
        "mono16",
        2,
        True,
        gray_rgb(((MONO16.astype(np.int64) * 510 + 65535) // 131070).astype(np.uint8)),
    ),
    "bayer_rggb8": (BAYER, "bayer_rggb8", 0, False, None),
    "yuv422_padded": (YUV422, "yuv422", 4, False, cv2.cvtColor(YUV422, cv2.COLOR_YUV2RGB_UYVY)),
    "yuyv": (YUV422, "yuyv", 0, False, cv2.cvtColor(YUV422, cv2.COLOR_YUV2RGB_YUY2)),
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_raw_encodings_reach_every_output(ros, case):
    pixels, encoding, pad, bigendian, expected = RAW_CASES[case]
    sent = header(f"cam_{case}")
    msg = image_msg(pixels, encoding, sent, pad=pad, bigendian=bigendian)
    assert publish_until(
        ros.raw_pub, msg, lambda: all_outputs(ros, "sb", ALL_TOPICS, sent.frame_id), ros
    ), f"no complete set of outputs for {case}"
    arrays = check_outputs(ros, sent.frame_id, sent, pixels.shape[:2])
    if expected is None:  # uniform Bayer scene: the demosaiced interior is that colour
        interior = arrays["overlay"][2:-2, 2:-2].reshape(-1, 3)
        np.testing.assert_array_equal(interior, np.tile(BAYER_COLOUR, (len(interior), 1)))
    else:
        np.testing.assert_array_equal(arrays["overlay"], expected)


def test_8uc3_is_read_as_bgr8_with_one_warning_on_rosout(ros):
    ros.tester.create_subscription(Log, "/rosout", ros.collector.callback("rosout"), ROSOUT_QOS)
    bgr = cv2.cvtColor(ODD, cv2.COLOR_RGB2BGR)
    for frame_id in ("cam_8uc3", "cam_8uc3_again"):  # two frames decoded, one warning
        sent = header(frame_id)
        assert publish_until(
            ros.raw_pub,
            image_msg(bgr, "8UC3", sent),
            lambda f=frame_id: all_outputs(ros, "sb", ALL_TOPICS, f),
            ros,
        ), f"no complete set of outputs for {frame_id}"
        np.testing.assert_array_equal(check_outputs(ros, frame_id, sent, (75, 133))["overlay"], ODD)

    def warnings_8uc3() -> list[Log]:
        return [m for m in ros.collector.messages["rosout"] if "8UC3" in m.msg]

    assert ros.collector.wait_for(lambda: warnings_8uc3(), WAIT_S)
    time.sleep(0.5)  # a second warning, had there been one, would have come by now
    (warning,) = warnings_8uc3()
    assert warning.level == Log.WARN and warning.name == f"{NAMESPACE[1:]}.sb"
    assert warning.msg == f"{NAMESPACE}/image: encoding 8UC3 does not say which channel order " + (
        "it has; taking it as bgr8"
    )


def test_only_maps_for_subscribed_topics_are_requested(ros):
    msg = image_msg(IMAGE, "rgb8", header("maps_check"))
    assert publish_until(
        ros.raw_pub, msg, lambda: all_outputs(ros, "sb", ALL_TOPICS, "maps_check"), ros
    )
    needed = required_maps(ALL_TOPICS)
    assert all(requested <= needed for requested in ros.raw_pipeline.requested)
    assert ros.raw_pipeline.requested[-1] == needed
    assert "dissimilarity" not in needed


def encode(ext: str, rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_compressed_png_and_jpeg(ros):
    sent = header("cam_png")
    png = compressed_msg(encode(".png", ODD), "png", sent)
    overlay_and_timing = ("overlay",)
    assert publish_until(
        ros.compressed_pub, png, lambda: all_outputs(ros, "sbc", overlay_and_timing, "cam_png"), ros
    )
    overlay = ros.collector.latest(("sbc", "overlay"), "cam_png")
    assert (overlay.height, overlay.width, overlay.encoding) == (75, 133, "rgb8")
    assert (overlay.header.stamp.sec, overlay.header.stamp.nanosec) == (
        sent.stamp.sec,
        sent.stamp.nanosec,
    )
    np.testing.assert_array_equal(as_array(overlay), ODD)

    smooth = cv2.GaussianBlur(IMAGE, (0, 0), 8)
    jpeg = compressed_msg(encode(".jpg", smooth), "rgb8; jpeg compressed bgr8", header("jpg"))
    assert publish_until(
        ros.compressed_pub, jpeg, lambda: all_outputs(ros, "sbc", overlay_and_timing, "jpg"), ros
    )
    decoded = as_array(ros.collector.latest(("sbc", "overlay"), "jpg")).astype(int)
    assert decoded.shape == (120, 160, 3)
    assert np.abs(decoded - smooth.astype(int)).mean() < 3.0
    # Only ~/overlay (and ~/timing) have subscribers: the pipeline was asked for the anomaly only.
    requested = ros.compressed_pipeline.requested
    assert all(r <= {"anomaly"} for r in requested) and requested[-1] == {"anomaly"}


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stats_of(node: AnomalyNode):
    return node.stats.snapshot()


BAD_RAW = {
    "unknown encoding": (
        Image(height=4, width=4, encoding="xyz", step=12, data=bytes(48)),
        "unknown encoding 'xyz'",
    ),
    "step mismatch": (Image(height=4, width=5, encoding="rgb8", step=10, data=bytes(40)), "step"),
    "truncated": (Image(height=4, width=5, encoding="rgb8", step=15, data=bytes(50)), "truncated"),
    "empty": (Image(height=0, width=0, encoding="rgb8", step=0, data=b""), "empty image"),
}


def send_bad_frame(ros: Harness, node: AnomalyNode, publisher: Any, msg: Any) -> None:
    before = stats_of(node).counters.frames_bad
    assert publish_until(
        publisher, msg, lambda: stats_of(node).counters.frames_bad > before, ros
    ), "the bad frame was never counted"


def send_good_frame(ros: Harness, frame_id: str) -> None:
    msg = image_msg(IMAGE, "rgb8", header(frame_id))
    assert publish_until(
        ros.raw_pub, msg, lambda: all_outputs(ros, "sb", ("overlay",), frame_id), ros
    ), "good frames stopped flowing"


def diagnostics_count(ros: Harness) -> int:
    with ros.collector._condition:
        return len(ros.collector.messages["diagnostics"])


def latest_diagnostics(
    ros: Harness, node: str, condition: Callable[[dict], bool], since: int = 0
) -> Any:
    """Wait for a /diagnostics status of ``node`` (messages ``since`` on) meeting ``condition``."""
    name = f"{NAMESPACE}/{node}: anomaly detection"
    found: list = []

    def match() -> bool:
        for array in reversed(ros.collector.messages["diagnostics"][since:]):
            for status in array.status:
                if status.name == name and condition(dict(_values(status))):
                    found.append(status)
                    return True
        return False

    assert ros.collector.wait_for(match, WAIT_S), f"no matching diagnostics from {node}"
    return found[0]


@pytest.mark.parametrize("case", list(BAD_RAW))
def test_bad_raw_frames_are_counted_and_good_frames_keep_flowing(ros, case):
    msg, words = BAD_RAW[case]
    msg.header = header(f"bad_{case}")
    send_bad_frame(ros, ros.raw_node, ros.raw_pub, msg)
    assert words in stats_of(ros.raw_node).last_error
    send_good_frame(ros, f"good_after_{case}")


THROTTLE_ROSOUT = "rosout_of_the_throttle_test"


def test_a_bad_frame_of_a_new_reason_is_always_logged(ros):
    lines: list[str] = []
    subscription = ros.tester.create_subscription(
        Log, "/rosout", ros.collector.callback(THROTTLE_ROSOUT), 100
    )  # a key of its own: another test's /rosout subscription may still be stored under "rosout"
    logged_lines = ros.collector.messages[THROTTLE_ROSOUT]
    try:
        # /rosout matched: a bad frame of a reason of its own is logged and arrives
        warm_up = Image(height=2, width=2, encoding="sbwarmup", step=6, data=bytes(12))
        warm_up.header = header("throttle_warm_up")
        assert publish_until(
            ros.raw_pub,
            warm_up,
            lambda: any("throttle_warm_up" in m.msg for m in logged_lines),
            ros,
        ), "no bad-frame line reached /rosout"
        start = time.monotonic()
        # 32FC1 (a depth image) is refused for another reason than an unknown encoding
        for encoding in ("sbthrottle", "sbthrottle", "32FC1"):
            msg = Image(height=2, width=2, encoding=encoding, step=6, data=bytes(12))
            msg.header = header(f"throttled_{encoding}")
            send_bad_frame(ros, ros.raw_node, ros.raw_pub, msg)
        sent_in_s = time.monotonic() - start

        def logged() -> bool:
            lines[:] = [m.msg for m in logged_lines if "bad frame" in m.msg]
            return any("throttled_32FC1" in line for line in lines)

        # within the 2 s throttle of the first reason: logged anyway (was: never logged)
        assert ros.collector.wait_for(logged, WAIT_S), lines
        repeats = sum("'sbthrottle'" in line for line in lines)
        assert repeats == 1 if sent_in_s < LOG_THROTTLE_S else repeats >= 1
    finally:
        ros.tester.destroy_subscription(subscription)


def test_corrupt_jpeg_is_counted_and_the_compressed_node_keeps_going(ros):
    good = encode(".jpg", IMAGE)
    corrupt = compressed_msg(good[:200] + bytes(400) + good[-2:], "jpeg", header("corrupt"))
    send_bad_frame(ros, ros.compressed_node, ros.compressed_pub, corrupt)
    assert "cannot decode compressed image" in stats_of(ros.compressed_node).last_error
    png = compressed_msg(encode(".png", ODD), "png", header("png_after_corrupt"))
    assert publish_until(
        ros.compressed_pub,
        png,
        lambda: all_outputs(ros, "sbc", ("overlay",), "png_after_corrupt"),
        ros,
    )


def test_diagnostics_carry_every_key(ros):
    send_good_frame(ros, "for_diagnostics")
    status = latest_diagnostics(ros, "sb", lambda v: int(v["frames_out"]) > 0)
    values = dict(_values(status))
    expected = {"backend", "device", "precision", "layout", "preset", "rate_in_hz"}
    expected |= {"rate_out_hz"}
    expected |= {"frames_in", "frames_out", "frames_dropped", "frames_bad"}
    for stage in ("decode", "segmentation", "synthesis", "dissimilarity", "publish", "total"):
        expected |= {f"{stage}_ms_p50", f"{stage}_ms_p95"}
    expected |= {"e2e_ms_p50", "e2e_ms_p95", "e2e_ms_max", "e2e_ms_max_since_start"}
    expected |= {"frames_lost", "frames_in_progress"}
    assert expected <= set(values)
    assert values["accounting"].startswith(f"frames_in {values['frames_in']} = out ")
    assert values["accounting"].endswith(": holds")
    assert (values["backend"], values["device"], values["preset"]) == ("torch", "cpu", "edge")
    assert values["precision"] == resolve_precision("auto", "cpu")  # bf16 on a bf16 CPU
    assert values["layout"] == "channels_last" and status.hardware_id == "cpu"
    for key in expected - {"backend", "device", "precision", "layout", "preset"}:
        assert float(values[key]) >= 0.0, key
    assert float(values["segmentation_ms_p50"]) > 0.0


def test_repeated_bad_frames_raise_an_error_level_then_recover(ros):
    msg = Image(height=4, width=4, encoding="xyz", step=12, data=bytes(48))
    msg.header = header("all_bad")

    def five_xyz(values) -> bool:  # earlier tests' bad frames may still be counted in the run
        return int(values["consecutive_failures"]) >= 5 and "'xyz'" in values["last_error"]

    assert publish_until(
        ros.raw_pub, msg, lambda: five_xyz(dict(stats_of(ros.raw_node).key_values())), ros
    )
    status = latest_diagnostics(ros, "sb", five_xyz)
    assert status.level == DiagnosticStatus.ERROR
    assert "frames all failed: unknown encoding 'xyz'" in status.message
    send_good_frame(ros, "recovered")
    since = diagnostics_count(ros)
    status = latest_diagnostics(ros, "sb", lambda v: v["consecutive_failures"] == "0", since)
    assert status.level == DiagnosticStatus.OK, status.message


def settled(node: AnomalyNode) -> bool:
    """No frame waiting or in progress: each one received was published, dropped or refused."""
    c = stats_of(node).counters
    return c.frames_in == c.frames_out + c.frames_dropped + c.frames_bad + c.frames_idle


def wait_for_quiet(node: AnomalyNode) -> None:
    """Wait until the node is settled and no frame came in for a moment."""
    before = -1
    while before != stats_of(node).counters.frames_in:
        before = stats_of(node).counters.frames_in
        assert wait_until(lambda: settled(node))
        time.sleep(0.3)


def test_slow_pipeline_drops_frames_and_keeps_latency_bounded(ros):
    wait_for_quiet(ros.raw_node)  # frames of earlier tests are done
    start = stats_of(ros.raw_node).counters
    ros.raw_pipeline.delay_s = 0.4
    try:
        end_time = time.monotonic() + 3.0
        while time.monotonic() < end_time:
            head = Header(frame_id="slow", stamp=ros.tester.get_clock().now().to_msg())
            ros.raw_pub.publish(image_msg(IMAGE, "rgb8", head))
            time.sleep(FRAME_PERIOD_S)
        wait_for_quiet(ros.raw_node)
    finally:
        ros.raw_pipeline.delay_s = 0.0
    end = stats_of(ros.raw_node).counters
    frames_in = end.frames_in - start.frames_in
    frames_out = end.frames_out - start.frames_out
    dropped = end.frames_dropped - start.frames_dropped
    assert frames_in >= 20, "the camera frames did not arrive"
    assert frames_out >= 2
    assert dropped >= frames_in // 2  # at most ~1 in 12 frames can be processed
    assert frames_in == frames_out + dropped  # every frame is either published or dropped
    with ros.collector._condition:
        slow = [m for m in ros.collector.messages[("sb", "timing")] if _frame_id(m) == "slow"]
    e2e_ms = [float(_timing_values(m)["e2e_ms"]) for m in slow]
    assert len(e2e_ms) >= 2
    # A queue of every frame would reach ~3 s * 30 Hz * 0.4 s = 36 s; the slot keeps it low.
    assert max(e2e_ms) < 10_000.0


def set_parameters(ros: Harness, **values: Any) -> list:
    """Call the raw node's set_parameters service; one result per parameter."""
    client = ros.tester.create_client(SetParameters, f"{NAMESPACE}/sb/set_parameters")
    try:
        assert client.wait_for_service(timeout_sec=WAIT_S)
        request = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        assert done.wait(WAIT_S)
        return future.result().results
    finally:
        ros.tester.destroy_client(client)


def test_parameter_service_refuses_bad_values_with_reasons(ros):
    (result,) = set_parameters(ros, anomaly_threshold=2.0)
    assert not result.successful and "anomaly_threshold" in result.reason
    (result,) = set_parameters(ros, ensemble_weights=[0.0, 0.0, 0.0, 0.0])
    assert not result.successful and "not all 0" in result.reason
    (result,) = set_parameters(ros, preset="light")
    assert not result.successful and "read-only" in result.reason
    (result,) = set_parameters(ros, latency_budget_ms=0.0)
    assert not result.successful and "latency_budget_ms out of range" in result.reason
    (result,) = set_parameters(ros, diagnostics_period=1e-9)  # was accepted: 1 kHz diagnostics
    assert not result.successful and "diagnostics_period out of range" in result.reason
    (result,) = set_parameters(ros, diagnostics_period=0)
    assert not result.successful and result.reason == "diagnostics_period must be >= 0.1; got 0.0"
    (result,) = set_parameters(ros, overlay_alpha="half")
    assert not result.successful
    assert result.reason == "parameter overlay_alpha expects a float, got string 'half'"
    assert ros.raw_node.parameters.anomaly_threshold == 0.5


def test_parameter_changes_apply_while_running(ros):
    original = [float(w) for w in ros.raw_pipeline.ensemble_weights]
    try:
        results = set_parameters(
            ros,
            overlay_alpha=1.0,
            anomaly_threshold=0.0,
            ensemble_weights=[0.0, 1.0, 0.0, 0.0],
            diagnostics_period=0.2,
        )
        assert all(r.successful for r in results)
        np.testing.assert_allclose(ros.raw_pipeline.ensemble_weights, [0.0, 1.0, 0.0, 0.0])
        since = diagnostics_count(ros)  # the re-created diagnostics timer keeps publishing
        latest_diagnostics(ros, "sb", lambda values: True, since)
        msg = image_msg(IMAGE, "rgb8", header("after_set"))
        assert publish_until(
            ros.raw_pub, msg, lambda: all_outputs(ros, "sb", ALL_TOPICS, "after_set"), ros
        )
        arrays = {t: as_array(ros.collector.latest(("sb", t), "after_set")) for t in ALL_TOPICS}
        assert (arrays["anomaly_mask"] == 255).all()  # threshold 0: every pixel
        np.testing.assert_array_equal(arrays["overlay"], overlay(IMAGE, arrays["anomaly"], 1.0))
    finally:
        results = set_parameters(
            ros,
            overlay_alpha=0.0,
            anomaly_threshold=0.5,
            ensemble_weights=original,
            diagnostics_period=SMALL_MODEL["diagnostics_period"],
        )
        assert all(r.successful for r in results)


def node_command(*ros_args: str) -> list[str]:
    return [sys.executable, "-m", "synboost_ros.ros.node", "--ros-args", *ros_args]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, **ros_environment(), "PYTHONPATH": str(ROOT)}


def test_missing_weights_exit_non_zero_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "manifest.json"
    done = subprocess.run(
        node_command("-p", f"weights:={missing}", "-r", f"__node:=sbmissing{os.getpid()}"),
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert str(missing) in output
    assert "-p weights:=PATH or -p random_weights:=true" in output
    assert "--random-weights" not in output and "--weights" not in output  # no CLI flags
    assert "Traceback" not in output


def test_a_log_dir_is_chosen_only_when_rcl_would_find_none(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for found in ({"HOME": "/home/u"}, {"ROS_HOME": "/r"}, {"ROS_LOG_DIR": "/l", "HOME": ""}):
        assert fallback_log_dir(found) is None
    chosen = fallback_log_dir({"HOME": "", "PATH": "/bin"})
    assert chosen == tmp_path / f"synboost_ros-{os.getuid()}" / "ros_log" and chosen.is_dir()


def test_the_node_starts_without_home(tmp_path):
    """HOME unset (common under systemd): rclpy.init used to fail with "Failed to get logging
    directory"; the node now logs to a per-user temporary folder and says so in one line."""
    env = {
        k: v for k, v in subprocess_env().items() if k not in ("HOME", "ROS_HOME", "ROS_LOG_DIR")
    }
    env["TMPDIR"] = str(tmp_path)
    model = [arg for k, v in SMALL_MODEL.items() for arg in ("-p", f"{k}:={v}")]
    process = subprocess.Popen(
        node_command(*model, "-r", f"__node:=sbnohome{os.getpid()}"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + PROCESS_START_S
        while time.monotonic() < deadline and not any("ready:" in line for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    output = "".join(lines) + rest
    assert process.returncode == 0 and "ready:" in output, output
    log_dir = tmp_path / f"synboost_ros-{os.getuid()}" / "ros_log"
    notes = [line for line in output.splitlines() if "ROS_LOG_DIR" in line]
    assert len(notes) == 1 and f"ROS logs go to {log_dir}" in notes[0]
    assert "Traceback" not in output and log_dir.is_dir()


def test_console_command_with_params_file_and_remaps(ros):
    name, camera = f"sbcli{os.getpid()}", f"/cam{os.getpid()}/image_raw"
    received = ros.collector.callback("cli")
    subscription = ros.tester.create_subscription(Image, f"/{name}/semantic", received, 10)
    publisher = ros.tester.create_publisher(Image, camera, 10)
    sizes = [f"{k}:={v}" for k, v in SMALL_MODEL.items() if k.endswith(("_height", "_width"))]
    command = node_command(
        "--params-file", str(ROOT / "config" / "anomaly.yaml"),
        "-p", "preset:=edge", "-p", "random_weights:=true", "-p", "backend:=torch",
        *[arg for size in sizes for arg in ("-p", size)],
        "-r", f"image:={camera}", "-r", f"__node:={name}",
    )  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        msg = image_msg(ODD, "rgb8", header("cli_frame"))
        arrived = publish_until(
            publisher,
            msg,
            lambda: bool(ros.collector.messages["cli"]),
            ros,
            timeout=PROCESS_START_S,
        )
        assert arrived, "no /<node>/semantic from the command-line node"
        semantic = ros.collector.messages["cli"][-1]
        assert (semantic.height, semantic.width, semantic.encoding) == (75, 133, "mono8")
        assert semantic.header.frame_id == "cli_frame"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        ros.tester.destroy_subscription(subscription)
        ros.tester.destroy_publisher(publisher)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "bad frame" not in output  # the worker stopped before the context went away
    assert "self-test passed" in output  # config/anomaly.yaml runs it


@pytest.mark.parametrize(
    ("remaps", "expected"),
    [
        (["image:=/camT/image_raw"], "/camT/image_raw/compressed"),
        (["image:=/camT/image_raw", "image/compressed:=/other/jpeg"], "/other/jpeg"),
    ],
)
def test_compressed_input_follows_the_base_topic_remap(remaps, expected):
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = AnomalyNode(
            "sbremap",
            context=context,
            pipeline_factory=pipeline_factory([]),
            parameter_overrides=overrides(input="compressed"),
            cli_args=["--ros-args", *[arg for rule in remaps for arg in ("-r", rule)]],
        )
        try:
            assert [s.topic_name for s in node.subscriptions] == [expected]
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_build_only_creates_the_pipeline_subscribes_nothing_and_main_exits_0(monkeypatch):
    from synboost_ros.ros import node as node_module

    created: list = []
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = AnomalyNode(
            "sbbuild",
            context=context,
            pipeline_factory=pipeline_factory(created),
            parameter_overrides=overrides(build_only=True),
        )
        try:
            assert node.built_only and len(created) == 1
            assert list(node.subscriptions) == [] and list(node.timers) == []
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)

    class Built:
        built_only = True
        destroyed = False

        def destroy_node(self):
            Built.destroyed = True

    monkeypatch.setattr(node_module, "AnomalyNode", Built)
    monkeypatch.setattr(node_module.rclpy, "init", lambda **kwargs: None)
    assert node_module.main(["anomaly_node"]) == 0 and Built.destroyed
