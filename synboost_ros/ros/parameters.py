"""The node's parameters: defaults, descriptions, ranges, validation and rclpy declaration.

``NodeParameters`` and ``validate_parameters`` are plain Python. ``declare_node_parameters``
declares every field on an rclpy node with a ParameterDescriptor (description, allowed
values, range, read-only flag); ``watch_node_parameters`` rejects invalid run-time changes
with a reason and hands accepted ones to the node.

Read-only parameters (the model, its backend and sizes, the input and its QoS, and which
topics exist) are fixed when the node starts; the others may change while it runs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synboost_ros.backends.factory import BACKEND_CHOICES, DEVICE_CHOICES, PRECISION_CHOICES
from synboost_ros.config import PRESETS
from synboost_ros.ensemble import ENSEMBLE_INPUTS, validate_weights

INPUT_CHOICES = ("raw", "compressed")
INPUT_QOS_CHOICES = ("sensor_data", "reliable")
SIZE_MULTIPLE = 32  # ICNet's coarsest stride and the edge SPADE generator's upsampling factor
MAX_SIDE = 4096


class ParameterError(ValueError):
    """One or more parameter values are invalid; the message lists each problem."""


@dataclass(frozen=True)
class ParameterSpec:
    """What a parameter means and which values it accepts."""

    description: str
    read_only: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None  # inclusive bounds, also shown in the descriptor
    high: float | None = None
    step: int = 0  # integer parameters: allowed values are low + n * step


def _param(default: Any, description: str, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": ParameterSpec(description, **spec)})


def _side(description: str) -> Any:
    return _param(
        0,
        f"{description}, a multiple of {SIZE_MULTIPLE}; 0 = the preset's",
        read_only=True,
        low=0,
        high=MAX_SIDE,
        step=SIZE_MULTIPLE,
    )


@dataclass(frozen=True)
class NodeParameters:
    """Every parameter of ``anomaly_node`` with its default."""

    preset: str = _param("edge", "model preset", read_only=True, choices=tuple(PRESETS))
    weights: str = _param(
        "",
        "weights manifest (file or folder); empty = the preset's shipped weights",
        read_only=True,
    )
    random_weights: bool = _param(
        False, "random weights instead of a file: outputs are meaningless (tests)", read_only=True
    )
    backend: str = _param(
        "auto",
        "inference backend; auto = fastest available",
        read_only=True,
        choices=BACKEND_CHOICES,
    )
    device: str = _param(
        "auto", "device; auto = cuda when available", read_only=True, choices=DEVICE_CHOICES
    )
    precision: str = _param(
        "fp16",
        "precision; fp16 runs on cuda, the CPU runs fp32 (diagnostics report what ran)",
        read_only=True,
        choices=PRECISION_CHOICES,
    )
    input: str = _param(
        "raw",
        "subscribe 'image' (sensor_msgs/Image) or 'image/compressed' (CompressedImage)",
        read_only=True,
        choices=INPUT_CHOICES,
    )
    input_qos: str = _param(
        "sensor_data",
        "input QoS, depth 1: sensor_data = best effort, reliable = reliable",
        read_only=True,
        choices=INPUT_QOS_CHOICES,
    )
    segmentation_height: int = _side("segmentation input height")
    segmentation_width: int = _side("segmentation input width")
    synthesis_height: int = _side("synthesis and dissimilarity input height")
    synthesis_width: int = _side("synthesis and dissimilarity input width")
    publish_synthesized: bool = _param(
        False, "create and publish ~/synthesized (the SPADE image)", read_only=True
    )
    ensemble_weights: tuple[float, ...] | None = _param(
        None,
        f"4 weights of {', '.join(ENSEMBLE_INPUTS)}: >= 0, not all 0; "
        "unset = the weights stored with the model",
    )
    anomaly_threshold: float = _param(
        0.5, "~/anomaly_mask is 255 where the anomaly score >= this", low=0.0, high=1.0
    )
    overlay_alpha: float = _param(0.5, "weight of the heat map in ~/overlay", low=0.0, high=1.0)
    diagnostics_period: float = _param(1.0, "seconds between /diagnostics messages (> 0)")
    latency_budget_ms: float = _param(
        200.0, "WARN when the e2e latency p95 (publish time - stamp) exceeds this (> 0)"
    )
    min_rate_hz: float = _param(1.0, "WARN when the output rate is below this; 0 = off", low=0.0)

    @property
    def segmentation_size(self) -> tuple[int, int] | None:
        """(height, width), or None for the preset's size."""
        return _size(self.segmentation_height, self.segmentation_width)

    @property
    def synthesis_size(self) -> tuple[int, int] | None:
        """(height, width), or None for the preset's size."""
        return _size(self.synthesis_height, self.synthesis_width)

    def replace(self, **changes: Any) -> NodeParameters:
        """Copy with some values changed (not validated)."""
        return dataclasses.replace(self, **changes)


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(NodeParameters))


def _size(height: int, width: int) -> tuple[int, int] | None:
    return (height, width) if height or width else None


def parameter_spec(name: str) -> ParameterSpec:
    """The spec of one parameter."""
    return NodeParameters.__dataclass_fields__[name].metadata["spec"]


def _check_field(name: str, value: Any) -> list[str]:
    spec = parameter_spec(name)
    if spec.choices and value not in spec.choices:
        return [f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{name} must be finite; got {value}"]
    if spec.low is not None and value < spec.low:
        return [f"{name} must be >= {spec.low:g}; got {value}"]
    if spec.high is not None and value > spec.high:
        return [f"{name} must be <= {spec.high:g}; got {value}"]
    if spec.step and value % spec.step:
        return [f"{name} must be a multiple of {spec.step} (0 = preset); got {value}"]
    return []


def parameter_problems(params: NodeParameters) -> list[str]:
    """Every problem with ``params``, each naming the parameter and the rule; [] when valid."""
    problems = []
    for name in PARAMETER_NAMES:
        problems += _check_field(name, getattr(params, name))
    for stage in ("segmentation", "synthesis"):
        height, width = getattr(params, f"{stage}_height"), getattr(params, f"{stage}_width")
        if (height == 0) != (width == 0):
            problems.append(
                f"{stage}_height and {stage}_width must both be 0 (preset) or both set; "
                f"got {height}x{width}"
            )
    if params.ensemble_weights is not None:
        try:
            validate_weights(params.ensemble_weights)
        except ValueError as error:
            problems.append(str(error))
    for name in ("diagnostics_period", "latency_budget_ms"):
        if not getattr(params, name) > 0:
            problems.append(f"{name} must be > 0; got {getattr(params, name)}")
    if params.weights and params.random_weights:
        problems.append("set either weights or random_weights:=true, not both")
    return problems


def validate_parameters(params: NodeParameters) -> None:
    """Raise ``ParameterError`` listing every problem, if any."""
    problems = parameter_problems(params)
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems))


def pipeline_arguments(params: NodeParameters) -> dict[str, Any]:
    """Keyword arguments of ``AnomalyPipeline.create`` for these parameters."""
    return {
        "preset": params.preset,
        "weights": params.weights or None,
        "random_weights": params.random_weights,
        "backend": params.backend,
        "device": params.device,
        "precision": params.precision,
        "ensemble_weights": params.ensemble_weights,
        "segmentation_size": params.segmentation_size,
        "synthesis_size": params.synthesis_size,
    }


def _to_ros(name: str, value: Any) -> Any:
    """Dataclass value -> declared value; an unset array is declared by its type alone."""
    from rclpy.parameter import Parameter

    if name == "ensemble_weights":
        return Parameter.Type.DOUBLE_ARRAY if value is None else [float(v) for v in value]
    return value


def _from_ros(value: Any) -> Any:
    """Parameter value -> dataclass value (arrays become tuples of float)."""
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
    values = {name: _from_ros(node.get_parameter_or(name).value) for name in PARAMETER_NAMES}
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
        ours = {p.name: _from_ros(p.value) for p in changes if p.name in PARAMETER_NAMES}
        if not ours:
            return SetParametersResult(successful=True)
        candidate = current.replace(**ours)
        problems = parameter_problems(candidate)
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        current = candidate
        on_change(candidate)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
