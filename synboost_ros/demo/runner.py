"""``synboost demo run``: replay a drive bag through ``anomaly_node`` and write the report.

The node runs as a child process (see ``node_process``); the replayer and the recorder run
here on their own rclpy context. Steps: start the node, wait until its outputs and input are
connected, replay the bag in real time, wait until the node has accounted for every frame it
received and its outputs have arrived, stop the node, write the report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.clock import Clock
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from synboost_ros.demo.drive_bag import IMAGE_TOPIC
from synboost_ros.demo.node_process import NODE_NAME, NodeProcess, node_command
from synboost_ros.demo.recorder import OutputRecorder
from synboost_ros.demo.recording import RecordedRun
from synboost_ros.demo.replay import DriveReplayer
from synboost_ros.demo.replay_source import load_replay_frames
from synboost_ros.demo.report import COUNTERS, ReportFiles, write_report
from synboost_ros.options import DEFAULT_PRESET
from synboost_ros.shipped import default_weights_path, models_dirs

BAG_FOLDER = "demo_drive"
POLL_S = 0.1
DISCOVERY_SETTLE_S = 1.0  # lets the node see the recorder's subscriptions too
FINAL_DIAGNOSTICS_S = 1.0  # diagnostics this long after the last frame count as final
QUIET_S = 2.0  # no output for this long: the missing ones are lost


class DemoError(RuntimeError):
    """The demo could not run: the node died, or did not answer in time."""


@dataclass(frozen=True)
class DemoOptions:
    """What to replay, through which model, where the report goes, how long to wait."""

    out: Path
    timeout_s: float  # for the node to come up, and for its last outputs
    bag: Path | None = None  # None = the shipped demo drive
    preset: str = DEFAULT_PRESET
    weights: str | None = None  # None = the shipped weights of the preset
    random_weights: bool = False


def default_bag_path() -> Path | None:
    """The shipped demo drive (``models/demo_drive``), if present."""
    for folder in models_dirs():
        if (folder / BAG_FOLDER / "metadata.yaml").is_file():
            return folder / BAG_FOLDER
    return None


def resolve_weights(preset: str, weights: str | None, random_weights: bool) -> str | None:
    """Absolute weights path for the node; None with random weights."""
    if random_weights:
        return None
    if weights:
        return str(Path(weights).resolve())
    shipped = default_weights_path(preset)
    if shipped is None:
        raise FileNotFoundError(
            f"no shipped weights for preset '{preset}' (models/{preset}/manifest.json); pass "
            "--weights PATH, or --random-weights to see the demo run with meaningless outputs"
        )
    return str(shipped)


def frames_accounted(values: Mapping[str, str]) -> bool:
    """Every frame the node received was published, dropped, failed or left idle."""
    counts = {name: int(values.get(name, 0)) for name in COUNTERS}
    done = sum(counts[name] for name in COUNTERS if name != "frames_in")
    return counts["frames_in"] == done


def _wait(
    condition: Callable[[], bool], node: NodeProcess, timeout_s: float, waiting_for: str
) -> bool:
    """Poll ``condition`` until it holds (True) or time runs out (False); fail if node dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node.exit_code is not None:
            raise DemoError(
                f"anomaly_node exited with status {node.exit_code} while waiting for "
                f"{waiting_for}; its last output ({node.log_path}):\n{node.log_tail()}"
            )
        if condition():
            return True
        time.sleep(POLL_S)
    return False


def _outputs_complete(run: RecordedRun, last_frame_ns: int, now_ns: Callable[[], int]) -> bool:
    """The node's final counters add up and its outputs arrived (or stopped coming)."""
    diagnostics = run.diagnostics
    if diagnostics is None or diagnostics.received_ns < last_frame_ns + FINAL_DIAGNOSTICS_S * 1e9:
        return False
    if not frames_accounted(diagnostics.values):
        return False
    all_arrived = run.scored_count >= int(diagnostics.values.get("frames_out", 0))
    return all_arrived or now_ns() - run.last_stored_ns > QUIET_S * 1e9


@contextmanager
def _demo_nodes(run: RecordedRun) -> Iterator[tuple[OutputRecorder, DriveReplayer]]:
    """The recorder and the replayer on a private rclpy context, spun in a thread."""
    context = Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    nodes: list[Node] = []
    try:
        recorder = OutputRecorder(f"/{NODE_NAME}", run, context=context)
        nodes.append(recorder)
        replayer = DriveReplayer(IMAGE_TOPIC, context=context)
        nodes.append(replayer)
        for node in nodes:
            executor.add_node(node)
        spinner.start()
        yield recorder, replayer
    finally:
        executor.shutdown()
        if spinner.is_alive():
            spinner.join()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def _wait_until_connected(
    node: NodeProcess, recorder: OutputRecorder, replayer: DriveReplayer, timeout_s: float
) -> None:
    """Wait until the node's outputs reach the recorder and the replayer reaches the node."""
    started = time.monotonic()
    connected = _wait(
        lambda: recorder.connected() and replayer.subscription_count > 0,
        node,
        timeout_s,
        "its topics",
    )
    if not connected:
        raise DemoError(
            f"anomaly_node did not connect within {timeout_s:g} s; its last output "
            f"({node.log_path}):\n{node.log_tail()}"
        )
    time.sleep(DISCOVERY_SETTLE_S)
    print(f"demo: node ready after {time.monotonic() - started:.1f} s", flush=True)


def _wait_for_last_outputs(
    node: NodeProcess, run: RecordedRun, clock: Clock, last_frame_ns: int, timeout_s: float
) -> None:
    """Wait until the node has dealt with every frame and its outputs are in."""
    done = _wait(
        lambda: _outputs_complete(run, last_frame_ns, lambda: clock.now().nanoseconds),
        node,
        timeout_s,
        "its last outputs",
    )
    if not done:
        print(f"demo: warning: outputs still missing after {timeout_s:g} s; reporting the rest")


def run_demo(options: DemoOptions) -> ReportFiles:
    """Run the whole demo; return where the report went."""
    bag = options.bag or default_bag_path()
    if bag is None:
        raise FileNotFoundError(
            f"no demo drive found in {[str(d) for d in models_dirs()]}; make one with "
            f"'synboost demo make-bag --out models/{BAG_FOLDER}' or pass --bag DIR"
        )
    frames = load_replay_frames(bag)
    weights = resolve_weights(options.preset, options.weights, options.random_weights)
    command = node_command(options.preset, weights, options.random_weights)
    options.out.mkdir(parents=True, exist_ok=True)
    run = RecordedRun(max_frames=len(frames))
    with (
        _demo_nodes(run) as (recorder, replayer),
        NodeProcess(command, options.out / "node.log") as node,
    ):
        print(f"demo: starting anomaly_node (log: {node.log_path})", flush=True)
        _wait_until_connected(node, recorder, replayer, options.timeout_s)
        replayed = replayer.replay(frames)
        _wait_for_last_outputs(node, run, replayer.get_clock(), max(replayed), options.timeout_s)
    if run.scored_count == 0:
        raise DemoError(f"anomaly_node published no anomaly map; see {node.log_path}")
    return write_report(options.out, run, replayed)
