"""``anomaly_node``: camera images in, SynBoost maps out, with diagnostics.

One node serves one camera (input ``image``, outputs ``~/<output>``) or, with ``image_topics``,
several cameras with one model in memory (outputs ``~/<camera>/<output>``, see ``cameras``).
Each camera (``CameraStream``) has its own subscription, publishers, counters and
temporal-fusion state. The subscription callbacks only hand the newest frame of their camera
to one worker thread (see ``frame_worker``), which serves the cameras fairly; it decodes, runs
the pipeline for the maps that subscribers want, and publishes. A camera's temporal fusion
starts afresh when its header stamps go back or jump by more than a second
(``TemporalFusion.follow``). Durations are measured with ``time.perf_counter``; the end-to-end
latency is publish time minus the header stamp on the node's clock, taken after the frame's
last image output went to the middleware (only the small ``~/timing``, which carries it, goes
after), so it stays right under ``use_sim_time``.

/diagnostics: one status ``<node>: anomaly detection`` (model, device, self-test; for a single
camera also its counters and latencies, as before), and with ``image_topics`` one more per
camera, ``<node>/<camera>: anomaly detection``, while the node's status sums the counters.

Input QoS, keep last ``input_depth`` (5): ``sensor_data`` = best effort, ``reliable`` =
reliable, ``auto`` = as the publishers found at start (``input_matching``). The callback only
counts and hands over, so a short delay of the callback costs no frame (the worker still
processes only the newest; with depth 1, frames were overwritten in the middleware before the
callback ran, and counted nowhere). Frames the middleware reports lost (message-lost events)
are counted in ``frames_lost``; overwrites in the input queue are not reported by Fast DDS
(README: Reliability). When a camera topic has publishers but no frame arrives for a few
seconds, diagnostics WARN and the log say what to set (large frames over Fast DDS, or a QoS
mismatch). Outputs: reliable, keep last ``output_depth`` (``outputs.output_qos``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from rclpy.utilities import get_rmw_implementation_identifier
from sensor_msgs.msg import CompressedImage, Image

from synboost_ros.files import fallback_dir
from synboost_ros.manifest import ModelLoadError, WeightsNotFoundError
from synboost_ros.pipeline import AnomalyPipeline, InvalidImageError
from synboost_ros.postprocess.temporal import TemporalFusion
from synboost_ros.ros.cameras import CameraSpec
from synboost_ros.ros.frame_outputs import stage_times
from synboost_ros.ros.frame_worker import FrameWorker
from synboost_ros.ros.image_conversion import (
    ImageDecodeError,
    decode_compressed,
    decode_image,
    encoding_warning,
)
from synboost_ros.ros.input_matching import (
    PROFILES_VARIABLE,
    RELIABLE,
    SENSOR_DATA,
    no_frame_hint,
    resolve_input_qos,
)
from synboost_ros.ros.latency_stats import (
    Health,
    HealthLimits,
    PipelineStats,
    StatsSnapshot,
    evaluate_health,
    node_health,
    starved,
    total_key_values,
)
from synboost_ros.ros.log_forwarding import LogForwarding
from synboost_ros.ros.log_throttle import ReasonThrottle
from synboost_ros.ros.outputs import OutputPublishers, RenderSettings, required_maps
from synboost_ros.ros.parameters import (
    NodeParameters,
    ParameterError,
    declare_node_parameters,
    parameters_help,
    watch_node_parameters,
)
from synboost_ros.ros.scene_outputs import SceneOutputs
from synboost_ros.self_test import SelfTestResult, run_self_test
from synboost_ros.torch_missing import torch_missing

try:  # Iron and later
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

DEFAULT_NODE_NAME = "anomaly_node"
LOG_THROTTLE_S = 2.0  # per camera and reason of a bad frame (log_throttle.py)
SPIN_TIMEOUT_S = 0.1  # how often main() looks at the stop event
ROS_WEIGHTS_HINT = "set -p weights:=PATH or -p random_weights:=true"
# Errors that make a frame bad without being a bug in this package.
FRAME_ERRORS = (ImageDecodeError, InvalidImageError)
# input parameter -> message type, topic suffix after the (remappable) base topic, decoder.
INPUTS = {
    "raw": (Image, "", decode_image),
    "compressed": (CompressedImage, "/compressed", decode_compressed),
}


class StartupError(RuntimeError):
    """The node cannot start: bad parameters or a model that does not load."""


def input_qos(name: str, depth: int) -> QoSProfile:
    """QoS of the camera subscription (``sensor_data`` or ``reliable``): keep last ``depth``,
    best effort or reliable."""
    reliable = name == RELIABLE
    reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)


@dataclass(eq=False)
class CameraStream:
    """One camera of the node: its input topic, publishers, counters and temporal-fusion
    state (the node's frame worker keys its slots by this object)."""

    spec: CameraSpec
    topic: str  # resolved input topic
    outputs: OutputPublishers
    scene: SceneOutputs
    stats: PipelineStats = field(default_factory=PipelineStats)
    temporal: TemporalFusion = field(default_factory=TemporalFusion)
    warned_encodings: set[str] = field(default_factory=set)  # encoding warnings already logged
    qos: str = SENSOR_DATA  # the input QoS in force (input_qos auto resolved)
    starved: bool = False  # publishers but no frames: logged once until frames come

    @property
    def name(self) -> str:
        """The camera's name ("" for the single camera of a node without image_topics)."""
        return self.spec.name


class AnomalyNode(Node):
    """SynBoost anomaly detection on one or several camera topics."""

    def __init__(
        self,
        node_name: str = DEFAULT_NODE_NAME,
        *,
        pipeline_factory: Callable[..., Any] = AnomalyPipeline.create,
        **node_options: Any,
    ) -> None:
        super().__init__(node_name, **node_options)
        # The package's Python logging (backend fall-backs, engine builds) to this node's log.
        self._log_forwarding = LogForwarding(self.get_logger())
        self._cameras: list[CameraStream] = []
        self._load_error = ""
        self._limits = HealthLimits()
        self._pipeline: Any = None
        self.built_only = False  # build_only: the pipeline is ready, the node does nothing more
        self._self_test: SelfTestResult | None = None
        self._worker: FrameWorker[CameraStream, Any] = FrameWorker(
            self._process, self._on_frame_error
        )
        self._bad_frame_log = ReasonThrottle(LOG_THROTTLE_S)  # used by the worker thread only
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 1)
        try:
            self._params = self._declare_parameters()
            self._pipeline = self._create_pipeline(pipeline_factory)
            if self._params.build_only:
                self.get_logger().info(
                    f"build_only: {self._pipeline.backend.describe()} ready; exiting"
                )
                self.built_only = True
                return
            message_type, suffix, self._decode = INPUTS[self._params.input]
            # Per camera: outputs, objects and summary (ros/scene_outputs.py).
            self._cameras = self._create_cameras(suffix)
        except StartupError as error:
            self.get_logger().fatal(str(error))
            self.destroy_node()
            raise
        params = self._params
        self._settings = RenderSettings(params.anomaly_threshold, params.overlay_alpha)
        self._limits = HealthLimits(params.min_rate_hz, params.latency_budget_ms)
        self._pipeline.set_postprocess(params.postprocess_options())
        self._self_test = self._run_self_test(params)
        self._diagnostics_timer = self.create_timer(
            params.diagnostics_period, self.publish_diagnostics
        )
        watch_node_parameters(self, params, self._apply_parameters)
        self._worker.start()
        for camera in self._cameras:
            self._subscribe(camera, message_type)
        inputs = ", ".join(
            f"{camera.name + ': ' if camera.name else ''}{camera.topic} ({camera.qos})"
            for camera in self._cameras
        )
        self.get_logger().info(
            f"ready: {params.preset} on {self._pipeline.backend_name} / {self._pipeline.device} / "
            f"{self._pipeline.precision} (CUDA graphs {self._pipeline.graphs}), "
            f"{params.input} input {inputs}"
        )

    def input_topic(self, base: str, suffix: str) -> str:
        """A camera topic: the remapped ``base`` plus ``suffix``, as image_transport does
        (``-r image:=/cam/image_raw`` with compressed input subscribes
        ``/cam/image_raw/compressed``); an explicit ``image/compressed`` remap still wins."""
        explicit = self.resolve_topic_name(base + suffix)
        if explicit != self.resolve_topic_name(base + suffix, only_expand=True):
            return explicit
        return self.resolve_topic_name(base) + suffix

    @property
    def stats(self) -> PipelineStats:
        """Counters, latencies and rates of the first camera (the only one without
        image_topics)."""
        return self._cameras[0].stats

    def camera_stats(self) -> dict[str, PipelineStats]:
        """Counters, latencies and rates of each camera, by camera name."""
        return {camera.name: camera.stats for camera in self._cameras}

    @property
    def parameters(self) -> NodeParameters:
        """Parameter values in force."""
        return self._params

    def _declare_parameters(self) -> NodeParameters:
        try:
            return declare_node_parameters(self)
        except (ParameterError, ParameterException) as error:
            raise StartupError(str(error)) from None

    def _create_pipeline(self, factory: Callable[..., Any]) -> Any:
        try:
            return factory(**self._params.pipeline_arguments())
        except WeightsNotFoundError as error:
            message = f"{error} ({ROS_WEIGHTS_HINT})"
        except ModelLoadError as error:
            message = str(error)
        except ImportError as error:
            missing = torch_missing(error, f"backend {self._params.backend}")
            message = str(missing or f"cannot create the pipeline: {error}")
        except (ValueError, RuntimeError, OSError) as error:
            message = f"cannot create the pipeline: {error}"
        self._load_error = message
        self.publish_diagnostics()
        raise StartupError(message)

    def _create_cameras(self, suffix: str) -> list[CameraStream]:
        try:
            return [self._create_camera(spec, suffix) for spec in self._params.cameras()]
        except RuntimeError as error:  # rclpy refuses a name that the plain check let through
            raise StartupError(f"image_topics: {error}") from None

    def _create_camera(self, spec: CameraSpec, suffix: str) -> CameraStream:
        """A camera's publishers (under its output namespace) and state."""
        params, device = self._params, self._pipeline.device
        return CameraStream(
            spec=spec,
            topic=self.input_topic(spec.topic, suffix),
            outputs=OutputPublishers(
                self, params.publish_synthesized, device, spec, params.output_depth
            ),
            scene=SceneOutputs(
                self,
                params.analysis_settings(),
                params.draw_objects,
                device,
                spec,
                params.output_depth,
            ),
        )

    def _subscribe(self, camera: CameraStream, message_type: type) -> None:
        """Subscribe the camera's topic (QoS: ``input_qos``, auto = as its publishers now); its
        frames go to its own slot of the worker, and the middleware's message-lost reports to
        its ``frames_lost``."""
        publishers = self.get_publishers_info_by_topic(camera.topic)
        reliable = [p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers]
        camera.qos = resolve_input_qos(self._params.input_qos, reliable)
        self.create_subscription(
            message_type,
            camera.topic,
            lambda msg: self._on_frame(camera, msg),
            input_qos(camera.qos, self._params.input_depth),
            event_callbacks=SubscriptionEventCallbacks(
                message_lost=lambda info: camera.stats.frames_lost(info.total_count_change)
            ),
        )

    def _run_self_test(self, params: NodeParameters) -> SelfTestResult | None:
        """One generated frame through the pipeline before subscribing (``self_test``); the
        node refuses to start when the outputs are broken."""
        if not params.self_test:
            return None
        try:
            result = run_self_test(
                self._pipeline, params.latency_budget_ms, params.analysis_settings()
            )
        except Exception as error:  # any failure of the pipeline on a good frame is fatal
            message = f"self-test failed: the pipeline raised {type(error).__name__}: {error}"
        else:
            if result.passed:
                log = self.get_logger().info if result.within_budget else self.get_logger().warn
                log(f"self-test {result.describe()}")
                return result
            source = params.weights or "the shipped weights"
            message = f"self-test {result.describe()} (weights: {source}); not starting"
        self._load_error = message
        self.publish_diagnostics()
        self.get_logger().fatal(message)
        self.destroy_node()
        raise StartupError(message)

    def _on_frame(self, camera: CameraStream, msg: Image | CompressedImage) -> None:
        camera.stats.frame_received()
        if self._worker.submit(camera, msg):
            camera.stats.frame_dropped()

    def _process(self, camera: CameraStream, msg: Image | CompressedImage) -> None:
        start = time.perf_counter()
        rgb = self._decode(msg)
        decoded = time.perf_counter()
        if isinstance(msg, Image):
            self._warn_about_encoding(camera, msg.encoding)
        outputs, scene_outputs = camera.outputs, camera.scene
        topics = outputs.subscribed_topics()
        scene = scene_outputs.plan(topics)
        if not topics and not outputs.timing_subscribed() and not scene.needed:
            camera.stats.frame_idle()
            return
        stamp = Time.from_msg(msg.header.stamp)
        if camera.temporal.follow(stamp.nanoseconds):
            self.get_logger().debug(
                f"temporal fusion of {camera.topic} restarted: the stamp went back or jumped"
            )
        result = self._pipeline(
            rgb, outputs=required_maps(topics) | scene.maps, temporal=camera.temporal
        )
        ran = time.perf_counter()
        analysis = scene_outputs.publish(scene, result, msg.header)
        analysed = time.perf_counter()
        objects = None if analysis is None or not scene.draw else analysis.objects.objects
        outputs.publish_images(topics, result, rgb, msg.header, self._settings, objects)
        published = time.perf_counter()
        e2e_ms = (self.get_clock().now() - stamp).nanoseconds / 1e6
        objects_ms = None if analysis is None else (analysed - ran) * 1e3
        times = stage_times(
            (decoded - start) * 1e3, result.timings_ms, objects_ms, (published - analysed) * 1e3
        )
        outputs.publish_timing(msg.header, {**times, "e2e": e2e_ms})
        camera.stats.frame_published(times, e2e_ms)

    def _warn_about_encoding(self, camera: CameraStream, encoding: str) -> None:
        """Log the conversion's warning about ``encoding`` (8UC3 read as bgr8) once per camera."""
        warning = encoding_warning(encoding)
        if warning is not None and encoding not in camera.warned_encodings:
            camera.warned_encodings.add(encoding)
            self.get_logger().warn(f"{camera.topic}: {warning}")

    def _on_frame_error(
        self, camera: CameraStream, msg: Image | CompressedImage, error: Exception
    ) -> None:
        text = str(error) if isinstance(error, FRAME_ERRORS) else f"{type(error).__name__}: {error}"
        camera.stats.frame_failed(text)
        left_out = self._bad_frame_log.admit(camera.name, text, time.monotonic())
        if left_out is None:
            return
        source = f"camera '{camera.name}', " if camera.name else ""
        more = f" ({left_out} more like it since the last such line)" if left_out else ""
        frame = f"frame_id '{msg.header.frame_id}'"
        self.get_logger().error(f"bad frame ({source}{frame}): {text}{more}")

    def _apply_parameters(self, params: NodeParameters) -> None:
        old, self._params = self._params, params
        self._settings = RenderSettings(params.anomaly_threshold, params.overlay_alpha)
        self._limits = HealthLimits(params.min_rate_hz, params.latency_budget_ms)
        if params.ensemble_weights is not None and params.ensemble_weights != old.ensemble_weights:
            self._pipeline.set_ensemble_weights(params.ensemble_weights)
        for camera in self._cameras:
            camera.scene.settings = params.analysis_settings()
            camera.scene.draw_objects = params.draw_objects
            if not params.temporal_fusion:
                camera.temporal.reset()
        self._pipeline.set_postprocess(params.postprocess_options())
        if params.diagnostics_period != old.diagnostics_period:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = self.create_timer(
                params.diagnostics_period, self.publish_diagnostics
            )

    def diagnostic_statuses(self) -> list[DiagnosticStatus]:
        """The node's status now, then one per named camera: level, why, every counter and
        latency."""
        states = [(camera, camera.stats.snapshot()) for camera in self._cameras]
        healths = {camera.name: self._camera_health(camera, snap) for camera, snap in states}
        health = node_health(healths, self._load_error)
        identity = self._identity()
        if len(states) == 1 and not states[0][0].name:  # one camera: its figures are the node's
            figures = states[0][1].key_values()
        elif states:
            names = ",".join(camera.name for camera, _ in states)
            figures = [("cameras", names), *total_key_values(snap for _, snap in states)]
        else:  # the pipeline or the self-test failed before any camera existed
            figures = []
        name = self.get_fully_qualified_name()
        node = self._status(f"{name}: anomaly detection", health, identity + figures)
        return [node] + [
            self._status(
                f"{camera.spec.scoped(name)}: anomaly detection",
                healths[camera.name],
                [*identity, ("camera", camera.name), ("topic", camera.topic), *snap.key_values()],
            )
            for camera, snap in states
            if camera.name
        ]

    def _camera_health(self, camera: CameraStream, snapshot: StatsSnapshot) -> Health:
        """The camera's verdict; when its topic has publishers but no frame arrives, with what
        to set, also logged (once until frames come again)."""
        publishers = self.get_publishers_info_by_topic(camera.topic)
        was_starved = camera.starved
        camera.starved = starved(snapshot, self._limits, len(publishers))
        if not camera.starved:
            return evaluate_health(snapshot, self._limits, len(publishers))
        best_effort = sum(
            p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for p in publishers
        )
        hint = no_frame_hint(
            get_rmw_implementation_identifier(),
            os.environ.get(PROFILES_VARIABLE),
            camera.qos == RELIABLE,
            best_effort,
        )
        health = evaluate_health(snapshot, self._limits, len(publishers), hint)
        if not was_starved:
            self.get_logger().warning(f"{camera.topic}: {health.message}")
        return health

    def _status(self, name: str, health: Health, values: list[tuple[str, str]]) -> DiagnosticStatus:
        """One DiagnosticStatus; hardware_id = the device that runs; the self-test last."""
        return DiagnosticStatus(
            level=bytes([int(health.level)]),
            name=name,
            message=health.message,
            hardware_id=dict(values)["device"],
            values=[KeyValue(key=k, value=v) for k, v in values + self._self_test_values()],
        )

    def _self_test_values(self) -> list[tuple[str, str]]:
        """The ``self_test`` key: its result, or why there is none."""
        if self._self_test is not None:
            return [("self_test", self._self_test.describe())]
        return [("self_test", "off" if not self._params.self_test else "not run")]

    def _identity(self) -> list[tuple[str, str]]:
        """Backend, device, precision, memory layout and CUDA graphs (on | off) that run (as
        requested while no pipeline exists; the layout then "pending")."""
        pipeline, params = self._pipeline, self._params
        if pipeline is None:
            running = (params.backend, params.device, params.precision, "pending", params.graphs)
        else:
            running = (
                pipeline.backend_name,
                pipeline.device,
                pipeline.precision,
                pipeline.layout,
                pipeline.graphs,
            )
        names = ("backend", "device", "precision", "layout", "graphs")
        return [*zip(names, running, strict=True), ("preset", params.preset)]

    def publish_diagnostics(self) -> None:
        """Publish one DiagnosticArray on /diagnostics."""
        array = DiagnosticArray(status=self.diagnostic_statuses())
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)

    def destroy_node(self) -> None:
        """Stop the worker (after its current frame), then the node; the package's Python
        logging leaves the node's log."""
        self._worker.stop()
        self._log_forwarding.close()
        super().destroy_node()


def stop_on_signals() -> threading.Event:
    """An event that SIGINT and SIGTERM set, in place of rclpy's handlers.

    rclpy's handlers invalidate the context at once, while the worker may still be
    publishing; with this event the worker stops first, then the node and the context go.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def fallback_log_dir(environ: Mapping[str, str]) -> Path | None:
    """A ROS log folder when rcl would find none (it needs ROS_LOG_DIR, ROS_HOME or HOME; HOME
    is often unset under systemd): ``files.fallback_dir("ros_log")``; None when one is set."""
    if any(environ.get(name) for name in ("ROS_LOG_DIR", "ROS_HOME", "HOME")):
        return None
    return fallback_dir("ros_log")


def command_line_parser() -> argparse.ArgumentParser:
    """``anomaly_node -h``: the usage and every parameter with its default (from the schema)."""
    return argparse.ArgumentParser(
        prog="anomaly_node",
        usage="anomaly_node [-h] [--ros-args [-p NAME:=VALUE] [--params-file FILE] "
        "[-r image:=TOPIC] ...]",
        description="SynBoost anomaly detection on camera images (sensor_msgs/Image on 'image',\n"
        "or CompressedImage with -p input:=compressed); the maps go out on ~/<output>, the\n"
        "health on /diagnostics. Parameters are set after --ros-args.",
        epilog="parameters (-p NAME:=VALUE):\n" + parameters_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(args: list[str] | None = None) -> int:
    """Console script ``anomaly_node``: spin until SIGINT / SIGTERM; 1 when it cannot start.

    ``-h`` / ``--help`` before ``--ros-args`` prints the usage and exits 0 without starting
    ROS; other arguments there are left to rclpy, as before.
    """
    argv = sys.argv if args is None else args
    ours = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    command_line_parser().parse_known_args(ours)  # exits on -h / --help
    log_dir = fallback_log_dir(os.environ)
    if log_dir is not None:
        os.environ["ROS_LOG_DIR"] = str(log_dir)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    if log_dir is not None:
        get_logger(DEFAULT_NODE_NAME).warning(
            f"HOME, ROS_HOME and ROS_LOG_DIR are unset: ROS logs go to {log_dir} "
            "(set ROS_LOG_DIR to choose)"
        )
    stop = stop_on_signals()
    try:
        node = AnomalyNode()
    except StartupError:
        rclpy.try_shutdown()
        return 1
    if node.built_only:
        node.destroy_node()
        rclpy.try_shutdown()
        return 0
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
    except ExternalShutdownException:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
