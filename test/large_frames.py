"""Large camera frames into and out of anomaly_node, between processes: the measurement.

``python test/large_frames.py publish --size 1920x1080 --frames 50`` is a camera driver: a
best-effort (sensor data) rgb8 publisher at 10 Hz that waits for a subscriber, then prints how
many frames it sent. ``python test/large_frames.py measure`` starts the node as the README
does (``python -m synboost_ros.ros.node``) and such a publisher for each size, with and without
the shipped Fast DDS profile on each side, and prints frames_in / sent per size;
``measure --outputs`` counts the node's 1920x1080 ~/anomaly maps at a best-effort and a
reliable subscriber process (the README's "Large frames" tables). Each run uses its own ROS
domain on loopback. test_ros_large_frames.py runs the same processes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(__file__).resolve())
PROFILE = ROOT / "config" / "fastdds_large_frames.xml"
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
SIZES = ((640, 480), (1280, 720), (1920, 1080))
RATE_HZ = 10.0
MATCH_TIMEOUT_S = 60.0
NODE_START_S = 180.0  # the node imports torch and loads its model first
SETTLE_S = 3.0  # for late frames to be counted and for a subscriber process to match
# Small model sizes for the output measurement: the maps are camera-sized all the same.
SMALL_MODEL = (
    "random_weights:=true", "segmentation_height:=192", "segmentation_width:=192",
    "synthesis_height:=64", "synthesis_width:=64",
)  # fmt: skip


def publish(topic: str, width: int, height: int, frames: int, rate_hz: float) -> int:
    """Send ``frames`` rgb8 frames best effort at ``rate_hz`` once a subscriber matched;
    the number sent."""
    rclpy.init()
    node = rclpy.create_node(f"camera_{os.getpid()}")
    publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while publisher.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"no subscriber on {topic} after {MATCH_TIMEOUT_S:g} s")
        time.sleep(0.05)
    time.sleep(0.5)  # the subscriber's side of the match settles
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = pixels.tobytes()
    msg.header.frame_id = "camera"
    start = time.monotonic()
    for index in range(frames):
        time.sleep(max(0.0, start + index / rate_hz - time.monotonic()))
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
    time.sleep(0.5)  # the last frames leave before the participant goes
    node.destroy_node()
    rclpy.shutdown()
    return frames


def subscribe(topic: str, reliable: bool) -> int:
    """Count the Image messages on ``topic`` until SIGINT; the count."""
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"viewer_{os.getpid()}")
    reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    received: list[Image] = []
    node.create_subscription(
        Image, topic, received.append, QoSProfile(depth=5, reliability=reliability)
    )
    try:
        while True:
            rclpy.spin_once(node, timeout_sec=0.2)  # back in Python often, so SIGINT ends it
    except KeyboardInterrupt:
        return len(received)


def environment(profile: bool) -> dict[str, str]:
    """This process's environment with or without the shipped profile."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(PROFILE_VARIABLE, None)
    if profile:
        env[PROFILE_VARIABLE] = str(PROFILE)
    return env


def publisher_command(topic: str, width: int, height: int, frames: int) -> list[str]:
    """The command line of a ``publish`` process."""
    return [
        sys.executable,
        SCRIPT,
        "publish",
        "--topic",
        topic,
        "--size",
        f"{width}x{height}",
        "--frames",
        str(frames),
    ]


def node_command(name: str, topic: str, *params: str) -> list[str]:
    """``python -m synboost_ros.ros.node`` on ``topic`` at its defaults, without the
    self-test (start-up time), plus ``params``."""
    args = [arg for param in params for arg in ("-p", param)]
    return [
        sys.executable, "-m", "synboost_ros.ros.node", "--ros-args",
        "-r", f"__node:={name}", "-r", f"image:={topic}", "-p", "self_test:=false", *args,
    ]  # fmt: skip


class NodeCounters:
    """The latest /diagnostics values (and ``message``) of one node, from a listener node."""

    def __init__(self, node_name: str, context: rclpy.Context) -> None:
        self._condition = threading.Condition()
        self.values: dict[str, str] = {}
        self._status = f"/{node_name}: anomaly detection"
        self.node = rclpy.create_node(f"listener_{os.getpid()}", context=context)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._store, 10)
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _store(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == self._status:
                with self._condition:
                    self.values = {kv.key: kv.value for kv in status.values}
                    self.values["message"] = status.message
                    self._condition.notify_all()

    def wait(self, predicate: Callable[[dict[str, str]], bool], timeout: float) -> dict[str, str]:
        """The latest values once ``predicate(values)`` holds, or at the timeout ({} when none
        came)."""
        with self._condition:
            self._condition.wait_for(lambda: bool(self.values) and predicate(self.values), timeout)
            return dict(self.values)

    def frames_in(self) -> int:
        """frames_in of the latest status (0 before any)."""
        with self._condition:
            return int(self.values.get("frames_in", 0))

    def close(self) -> None:
        """Stop listening."""
        self._executor.shutdown()
        self._thread.join()
        self.node.destroy_node()


@contextmanager
def node_process(command: list[str], env: dict[str, str]) -> Iterator[list[str]]:
    """The node as a process, stopped with SIGINT on exit; yields its output lines so far."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        yield lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send_frames(
    counters: NodeCounters, topic: str, size: tuple[int, int], frames: int, env: dict[str, str]
) -> tuple[int, int]:
    """Run one publisher process; (frames_in the node gained, frames sent)."""
    before = counters.frames_in()
    timeout = MATCH_TIMEOUT_S + frames / RATE_HZ + 30
    done = subprocess.run(
        publisher_command(topic, *size, frames),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    sent = int(done.stdout.split()[-1])
    counters.wait(lambda values: int(values["frames_in"]) - before >= sent, SETTLE_S)
    return counters.frames_in() - before, sent


@contextmanager
def private_graph(node_name: str) -> Iterator[NodeCounters]:
    """A listener for ``node_name`` in a ROS domain of this run (the processes started
    meanwhile inherit it)."""
    sys.path.insert(0, str(Path(SCRIPT).parent))
    from ros_test_env import ros_environment

    os.environ.update(ros_environment())
    context = rclpy.Context()
    rclpy.init(context=context)
    counters = NodeCounters(node_name, context)
    try:
        yield counters
    finally:
        counters.close()
        rclpy.shutdown(context=context)


def measure_inputs(frames: int) -> None:
    """Print frames_in / sent per size for each placement of the profile."""
    name, topic = f"large{os.getpid()}", f"/large{os.getpid()}/image_raw"
    with private_graph(name) as counters:
        for node_profile in (False, True):
            counters.values = {}
            with node_process(node_command(name, topic), environment(node_profile)):
                counters.wait(lambda values: True, NODE_START_S)
                for camera_profile in (False, True):
                    env = environment(camera_profile)
                    results = [send_frames(counters, topic, size, frames, env) for size in SIZES]
                    row = {
                        f"{w}x{h}": f"{got}/{sent}"
                        for (w, h), (got, sent) in zip(SIZES, results, strict=True)
                    }
                    print(
                        json.dumps(
                            {"node_profile": node_profile, "camera_profile": camera_profile, **row}
                        ),
                        flush=True,
                    )


def measure_outputs(frames: int) -> None:
    """Print ~/anomaly maps received / published (1920x1080 input, camera with the profile)
    for a best-effort and a reliable subscriber process, with and without the profile."""
    name, topic = f"large{os.getpid()}", f"/large{os.getpid()}/image_raw"
    with private_graph(name) as counters:
        for node_profile in (False, True):
            counters.values = {}
            with node_process(node_command(name, topic, *SMALL_MODEL), environment(node_profile)):
                counters.wait(lambda values: True, NODE_START_S)
                for reliable in (False, True):
                    for viewer_profile in (False, True):
                        command = [
                            sys.executable,
                            SCRIPT,
                            "subscribe",
                            "--topic",
                            f"/{name}/anomaly",
                        ]
                        command += ["--reliable"] if reliable else []
                        viewer = subprocess.Popen(
                            command,
                            cwd=ROOT,
                            env=environment(viewer_profile),
                            stdout=subprocess.PIPE,
                            text=True,
                        )
                        time.sleep(SETTLE_S)
                        before = int(counters.wait(lambda values: True, 5.0)["frames_out"])
                        send_frames(counters, topic, (1920, 1080), frames, environment(True))
                        time.sleep(SETTLE_S)
                        out = int(counters.wait(lambda values: True, 5.0)["frames_out"]) - before
                        viewer.send_signal(signal.SIGINT)
                        got = int(viewer.communicate(timeout=30)[0].split()[-1])
                        row = {
                            "node_profile": node_profile,
                            "viewer_profile": viewer_profile,
                            "viewer_reliable": reliable,
                            "received/published": f"{got}/{out}",
                        }
                        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pub = commands.add_parser("publish", help="best-effort rgb8 publisher")
    pub.add_argument("--topic", default="/camera/image_raw")
    pub.add_argument("--size", default="1920x1080")
    pub.add_argument("--frames", type=int, default=50)
    pub.add_argument("--rate", type=float, default=RATE_HZ)
    sub = commands.add_parser("subscribe", help="count Image messages until SIGINT")
    sub.add_argument("--topic", required=True)
    sub.add_argument("--reliable", action="store_true")
    meas = commands.add_parser("measure", help="node + publishers, with and without the profile")
    meas.add_argument("--frames", type=int, default=50)
    meas.add_argument("--outputs", action="store_true", help="the node's maps to subscribers")
    args = parser.parse_args()
    if args.command == "publish":
        width, height = (int(v) for v in args.size.split("x"))
        print(publish(args.topic, width, height, args.frames, args.rate))
    elif args.command == "subscribe":
        print(subscribe(args.topic, args.reliable))
    elif args.outputs:
        measure_outputs(args.frames)
    else:
        measure_inputs(args.frames)


if __name__ == "__main__":
    main()
