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
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from synboost_ros.options import (
    MAX_SIDE,
    ModelOptions,
    OptionSpec,
    bound_text,
    option,
    option_spec,
)
from synboost_ros.postprocess.drivable import parse_class_names
from synboost_ros.postprocess.gating import GatingSettings
from synboost_ros.postprocess.objects import ObjectSettings
from synboost_ros.postprocess.options import AnalysisSettings, PostprocessOptions
from synboost_ros.postprocess.summary import SummarySettings
from synboost_ros.postprocess.temporal import MAX_WEIGHT
from synboost_ros.ros.cameras import CameraSpec, camera_specs

INPUT_CHOICES = ("raw", "compressed")
INPUT_QOS_CHOICES = ("auto", "sensor_data", "reliable")
# Faster diagnostics took the worker's CPU time: 1e-9 s sent /diagnostics at 1 kHz and cut the
# output rate by two thirds.
MIN_DIAGNOSTICS_PERIOD_S = 0.1


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
        "auto",
        "input QoS (depth: input_depth): sensor_data = best effort, reliable = reliable, auto = "
        "reliable when the topic's publishers at start are all reliable, else best effort",
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
    diagnostics_period: float = option(
        1.0, "seconds between /diagnostics messages", low=MIN_DIAGNOSTICS_PERIOD_S, high=3600.0
    )
    latency_budget_ms: float = option(
        200.0,
        "WARN when the e2e latency p95 (publish time - stamp) exceeds this",
        low=1.0,
        high=3_600_000.0,  # an hour: large budgets turn the warning off
    )
    min_rate_hz: float = option(
        1.0, "WARN when the output rate is below this; 0 = off", low=0.0, high=1000.0
    )
    build_only: bool = option(
        False,
        "create the pipeline (build or load the TensorRT engines), log it and exit "
        "(Autoware's build_only; the same as synboost export tensorrt)",
        read_only=True,
    )
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
    object_min_area: int = option(
        30, "anomaly objects cover at least this many pixels", low=1, high=MAX_SIDE * MAX_SIDE
    )
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
        0.1, "gating: the weight falls by 1/e per this distance beyond the margin",
        low=0.001, high=1.0,
    )  # fmt: skip

    def problems(self) -> list[str]:
        """Every problem, each naming the parameter and the rule; [] when valid."""
        problems = super().problems()
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
SCALAR_TYPES = {"a bool": bool, "an integer": int, "a float": float, "a string": str}


def parameter_spec(name: str) -> OptionSpec:
    """The spec of one parameter."""
    return option_spec(NodeParameters, name)


def validate_parameters(params: NodeParameters) -> None:
    """Raise ``ParameterError`` listing every problem, if any."""
    problems = params.problems()
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))


def parameters_help(width: int = 100) -> str:
    """Every parameter with its default, allowed values and description, as
    ``anomaly_node --help`` prints them."""
    blocks = []
    for item in dataclasses.fields(NodeParameters):
        spec: OptionSpec = item.metadata["spec"]
        facts = [f"default: {_shown(item.default)}"]
        if spec.choices:
            facts.append("one of: " + spec.allowed())
        elif spec.low is not None and spec.high is not None:
            facts.append(f"{bound_text(spec.low)} to {bound_text(spec.high)}")
        if spec.read_only:
            facts.append("read-only")
        text = textwrap.fill(spec.description, width, initial_indent=" " * 6)
        blocks.append(f"  {item.name} ({'; '.join(facts)})\n" + text.replace("\n", "\n" + " " * 6))
    return "\n".join(blocks)


def _shown(value: Any) -> str:
    """A default as it is written after ``-p NAME:=`` (``''``, ``true``, ``[]``, unset)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value) if value == "" else str(value)


def _to_ros(name: str, value: Any) -> Any:
    """Dataclass value -> declared value; an unset or empty array is declared unset (None)."""
    if name in STRING_ARRAYS:
        return list(value) if value else None
    if parameter_spec(name).count:
        return None if value is None else [float(v) for v in value]
    return value


def _expected_type(name: str) -> str:
    """The type a parameter takes, in words ("a float", "a string array", ...)."""
    if name in STRING_ARRAYS:
        return "a string array"
    count = parameter_spec(name).count
    if count:
        return f"an array of {count} floats"
    default = NodeParameters.__dataclass_fields__[name].default
    return next(words for words, kind in SCALAR_TYPES.items() if type(default) is kind)


def _described(value: Any) -> str:
    """A parameter value with its ROS type, e.g. "integer 1" or "string 'fast'"."""
    if value is None:
        return "no value"
    kinds = {kind: words.split()[1] for words, kind in SCALAR_TYPES.items()}
    if type(value) in kinds:
        return f"{kinds[type(value)]} {value!r}"
    return f"array {list(value)!r}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _from_ros(name: str, value: Any) -> Any:
    """Parameter value -> dataclass value: string arrays become tuples of str (unset = ()), other
    arrays tuples of float, an integer given for a float a float. ``ParameterError`` naming the
    parameter and the type it expects for a value of another type."""
    expected = _expected_type(name)
    if name in STRING_ARRAYS:
        if value is None or (_is_array(value) and all(isinstance(v, str) for v in value)):
            return tuple(value or ())
    elif parameter_spec(name).count:
        if value is None or (_is_array(value) and all(_is_number(v) for v in value)):
            return None if value is None else tuple(float(v) for v in value)
    elif expected == "a float":
        if _is_number(value):
            return float(value)
    elif type(value) is SCALAR_TYPES[expected]:
        return value
    raise ParameterError(f"parameter {name} expects {expected}, got {_described(value)}")


def _is_array(value: Any) -> bool:
    return not isinstance(value, (str, bytes)) and hasattr(value, "__iter__")


def _descriptor(name: str) -> Any:
    """The parameter's descriptor: description, choices, range, read-only flag. Types are
    dynamic so that ``_from_ros`` checks them: it takes an integer for a float and names the
    parameter and the type it expects (rclpy's own check says "expected '3' got '2'")."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    spec = parameter_spec(name)
    descriptor = ParameterDescriptor(
        name=name, description=spec.description, read_only=spec.read_only, dynamic_typing=True
    )
    if spec.choices:
        descriptor.additional_constraints = "one of: " + spec.allowed()
    if spec.low is None or spec.high is None:
        return descriptor
    if _expected_type(name) == "an integer":
        descriptor.integer_range = [
            IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=spec.step)
        ]
    else:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
        ]
    return descriptor


def _range_text(name: str) -> str:
    spec = parameter_spec(name)
    steps = f" in steps of {spec.step}" if spec.step else ""
    return f"{name} must be within [{bound_text(spec.low)}, {bound_text(spec.high)}]{steps}"


def declare_node_parameters(node: Any, defaults: NodeParameters | None = None) -> NodeParameters:
    """Declare every parameter on ``node``; return the validated values (overrides applied).

    Raises ``ParameterError`` listing every problem when a start-up value is invalid.
    """
    from rclpy.exceptions import InvalidParameterValueException

    defaults = defaults or NodeParameters()
    values, problems = {}, []
    for name in PARAMETER_NAMES:
        try:
            node.declare_parameter(name, _to_ros(name, getattr(defaults, name)), _descriptor(name))
        except InvalidParameterValueException:  # the only check at declaration: the range
            problems.append(_range_text(name))
            continue
        try:
            values[name] = _from_ros(name, node.get_parameter_or(name).value)
        except ParameterError as error:
            problems.append(str(error))
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))
    params = NodeParameters(**values)
    validate_parameters(params)
    return params


def watch_node_parameters(
    node: Any, initial: NodeParameters, on_change: Callable[[NodeParameters], None]
) -> None:
    """Validate run-time changes; refuse bad ones with a reason, pass good ones to ``on_change``.

    rclpy checks read-only flags and the declared ranges before this callback runs, and commits
    the change right after it succeeds, so ``on_change`` sees exactly the values that apply.
    """
    from rcl_interfaces.msg import SetParametersResult

    current = initial

    def on_set(changes: Sequence[Any]) -> Any:
        nonlocal current
        ours, problems = {}, []
        for change in changes:
            if change.name in PARAMETER_NAMES:
                try:
                    ours[change.name] = _from_ros(change.name, change.value)
                except ParameterError as error:
                    problems.append(str(error))
        if not ours and not problems:
            return SetParametersResult(successful=True)
        candidate = current.replace(**ours)
        problems += candidate.problems()
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        current = candidate
        on_change(candidate)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
