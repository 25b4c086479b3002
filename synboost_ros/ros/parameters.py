"""The node's parameters: defaults, descriptions, ranges, validation and rclpy declaration.

``NodeParameters`` is plain Python: the model options (``synboost_ros.options``, shared with
the command line) plus the node's own. ``declare_node_parameters`` declares every field on an
rclpy node with a ParameterDescriptor made from its ``OptionSpec`` (description, allowed
values, range, read-only flag); ``watch_node_parameters`` rejects invalid run-time changes
with a reason and hands accepted ones to the node.

Read-only parameters (the model, its backend and sizes, the input and its QoS, and which
topics exist) are fixed when the node starts; the others may change while it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from synboost_ros.options import ModelOptions, OptionSpec, option, option_spec
from synboost_ros.postprocess.drivable import parse_class_names
from synboost_ros.postprocess.gating import GatingSettings
from synboost_ros.postprocess.objects import ObjectSettings
from synboost_ros.postprocess.options import AnalysisSettings, PostprocessOptions
from synboost_ros.postprocess.summary import SummarySettings
from synboost_ros.postprocess.temporal import MAX_WEIGHT
from synboost_ros.ros.cameras import CameraSpec, camera_specs

INPUT_CHOICES = ("raw", "compressed")
INPUT_QOS_CHOICES = ("sensor_data", "reliable")


class ParameterError(ValueError):
    """One or more parameter values are invalid; the message lists each problem."""


@dataclass(frozen=True)
class NodeParameters(ModelOptions):
    """Every parameter of ``anomaly_node`` with its default: the model options, then these."""

    image_topics: tuple[str, ...] = option(
        (),
        "camera topics served by this node with one model (outputs under ~/<camera>/); "
        "empty = one camera on 'image'",
        read_only=True,
    )
    camera_names: tuple[str, ...] = option(
        (),
        "one name per image_topics entry (its output namespace); empty = from the topics "
        "(/cam_front/image_raw -> cam_front)",
        read_only=True,
    )
    input: str = option(
        "raw",
        "subscribe 'image' (sensor_msgs/Image) or 'image/compressed' (CompressedImage); "
        "with image_topics, each topic or <topic>/compressed",
        read_only=True,
        choices=INPUT_CHOICES,
    )
    input_qos: str = option(
        "sensor_data",
        "input QoS: sensor_data = best effort, reliable = reliable (depth: input_depth)",
        read_only=True,
        choices=INPUT_QOS_CHOICES,
    )
    input_depth: int = option(
        5,
        "input queue (keep last): frames the middleware holds until the callback counts them; "
        "the worker still processes only the newest",
        read_only=True,
        low=1,
        high=100,
    )
    output_depth: int = option(
        30,
        "output queue (reliable, keep last): frames a subscriber may lag behind before it "
        "loses outputs; memory up to this many frames of every subscribed output",
        read_only=True,
        low=1,
        high=1000,
    )
    publish_synthesized: bool = option(
        False, "create and publish ~/synthesized (the SPADE image)", read_only=True
    )
    anomaly_threshold: float = option(
        0.5, "~/anomaly_mask is 255 where the anomaly score >= this", low=0.0, high=1.0
    )
    overlay_alpha: float = option(0.5, "weight of the heat map in ~/overlay", low=0.0, high=1.0)
    diagnostics_period: float = option(1.0, "seconds between /diagnostics messages (> 0)")
    latency_budget_ms: float = option(
        200.0, "WARN when the e2e latency p95 (publish time - stamp) exceeds this (> 0)"
    )
    min_rate_hz: float = option(1.0, "WARN when the output rate is below this; 0 = off", low=0.0)
    self_test: bool = option(
        True,
        "run one generated frame through the pipeline before subscribing; refuse to start "
        "when its outputs are not finite or out of range",
        read_only=True,
    )
    object_threshold_low: float = option(
        0.4,
        "anomaly objects: connected regions scored >= this ... (hysteresis, low threshold)",
        low=0.0,
        high=1.0,
    )
    object_threshold_high: float = option(
        0.6,
        "... that hold at least one pixel scored >= this (high threshold, >= the low one)",
        low=0.0,
        high=1.0,
    )
    object_min_area: int = option(30, "anomaly objects cover at least this many pixels", low=1)
    drivable_classes: str = option(
        "road",
        "comma-separated classes of the drivable area (objects standing on it, the summary, "
        "gating), e.g. road,sidewalk",
    )
    alarm_score: float = option(
        0.7,
        "~/anomaly_summary alarm when the highest drivable-area score is >= this ...",
        low=0.0,
        high=1.0,
    )
    alarm_share: float = option(
        0.001,
        "... and the share of drivable-area pixels scored >= anomaly_threshold is >= this",
        low=0.0,
        high=1.0,
    )
    draw_objects: bool = option(True, "draw the anomaly objects' boxes on ~/overlay")
    temporal_fusion: bool = option(
        True, "fuse each anomaly map with the previous one along optical flow (README: figures)"
    )
    temporal_weight: float = option(
        0.5, "weight of the previous (warped) map in the temporal fusion", low=0.0, high=MAX_WEIGHT
    )
    drivable_gating: bool = option(False, "damp anomaly scores far from the drivable area")
    gating_margin: float = option(
        0.05, "gating: no damping within this distance of the drivable area (image heights)",
        low=0.0, high=1.0,
    )  # fmt: skip
    gating_falloff: float = option(
        0.1, "gating: the weight falls by 1/e per this distance beyond the margin (> 0)",
        low=0.0, high=1.0,
    )  # fmt: skip

    def problems(self) -> list[str]:
        """Every problem, each naming the parameter and the rule; [] when valid."""
        problems = super().problems()
        for name in ("diagnostics_period", "latency_budget_ms", "gating_falloff"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0; got {getattr(self, name)}")
        if self.object_threshold_low > self.object_threshold_high:
            problems.append(
                f"object_threshold_low ({self.object_threshold_low}) must be <= "
                f"object_threshold_high ({self.object_threshold_high})"
            )
        try:
            parse_class_names(self.drivable_classes)
        except ValueError as error:
            problems.append(f"drivable_classes: {error}")
        try:
            self.cameras()
        except ValueError as error:
            problems.append(str(error))
        return problems

    def cameras(self) -> list[CameraSpec]:
        """The cameras the node serves (``ros/cameras.py``)."""
        return camera_specs(self.image_topics, self.camera_names)

    def analysis_settings(self) -> AnalysisSettings:
        """Object and summary settings (valid parameters only)."""
        objects = ObjectSettings(
            self.object_threshold_low,
            self.object_threshold_high,
            self.object_min_area,
            parse_class_names(self.drivable_classes),
        )
        summary = SummarySettings(self.anomaly_threshold, self.alarm_score, self.alarm_share)
        return AnalysisSettings(objects, summary)

    def postprocess_options(self) -> PostprocessOptions:
        """The pipeline's post-processing (valid parameters only)."""
        return PostprocessOptions(
            temporal_fusion=self.temporal_fusion,
            temporal_weight=self.temporal_weight,
            drivable_gating=self.drivable_gating,
            gating=GatingSettings(self.gating_margin, self.gating_falloff),
            drivable_classes=parse_class_names(self.drivable_classes),
        )


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(NodeParameters))
STRING_ARRAYS = ("image_topics", "camera_names")


def parameter_spec(name: str) -> OptionSpec:
    """The spec of one parameter."""
    return option_spec(NodeParameters, name)


def validate_parameters(params: NodeParameters) -> None:
    """Raise ``ParameterError`` listing every problem, if any."""
    problems = params.problems()
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))


def _to_ros(name: str, value: Any) -> Any:
    """Dataclass value -> declared value; an unset or empty array is declared by its type alone."""
    from rclpy.parameter import Parameter

    if name in STRING_ARRAYS:
        return list(value) if value else Parameter.Type.STRING_ARRAY
    if parameter_spec(name).count:
        return Parameter.Type.DOUBLE_ARRAY if value is None else [float(v) for v in value]
    return value


def _from_ros(name: str, value: Any) -> Any:
    """Parameter value -> dataclass value (string arrays become tuples of str, unset = (); other
    arrays tuples of float)."""
    if name in STRING_ARRAYS:
        return tuple(str(v) for v in value or ())
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return tuple(float(v) for v in value)


def _descriptor(name: str) -> Any:
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    spec = parameter_spec(name)
    descriptor = ParameterDescriptor(
        name=name, description=spec.description, read_only=spec.read_only
    )
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    default = NodeParameters.__dataclass_fields__[name].default
    if spec.low is not None and spec.high is not None:
        if isinstance(default, int) and not isinstance(default, bool):
            descriptor.integer_range = [
                IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=spec.step)
            ]
        else:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=spec.low, to_value=spec.high, step=0.0)
            ]
    elif spec.low is not None:
        descriptor.additional_constraints = f">= {spec.low:g}"
    return descriptor


def declare_node_parameters(node: Any, defaults: NodeParameters | None = None) -> NodeParameters:
    """Declare every parameter on ``node``; return the validated values (overrides applied).

    Raises ``ParameterError`` when a start-up value is invalid.
    """
    defaults = defaults or NodeParameters()
    for name in PARAMETER_NAMES:
        node.declare_parameter(name, _to_ros(name, getattr(defaults, name)), _descriptor(name))
    values = {name: _from_ros(name, node.get_parameter_or(name).value) for name in PARAMETER_NAMES}
    params = NodeParameters(**values)
    validate_parameters(params)
    return params


def watch_node_parameters(
    node: Any, initial: NodeParameters, on_change: Callable[[NodeParameters], None]
) -> None:
    """Validate run-time changes; refuse bad ones with a reason, pass good ones to ``on_change``.

    rclpy checks types, ranges and read-only flags before this callback runs, and commits the
    change right after it succeeds, so ``on_change`` sees exactly the values that apply.
    """
    from rcl_interfaces.msg import SetParametersResult

    current = initial

    def on_set(changes: Sequence[Any]) -> Any:
        nonlocal current
        ours = {p.name: _from_ros(p.name, p.value) for p in changes if p.name in PARAMETER_NAMES}
        if not ours:
            return SetParametersResult(successful=True)
        candidate = current.replace(**ours)
        problems = candidate.problems()
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        current = candidate
        on_change(candidate)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
