"""The model options of ``AnomalyPipeline.create``, the ``synboost`` commands and ``anomaly_node``.

One schema: each ``ModelOptions`` field carries an ``OptionSpec`` (description, choices, range,
read-only flag) from which ``cli/common.py`` builds the argparse flags and ``ros/parameters.py``
the ROS parameter declarations. Plain Python: nothing here imports torch or rclpy.

Devices: ``auto``, ``cpu``, ``cuda`` (torch's current GPU) or ``cuda:N`` (GPU N, as torch counts
them); ``device_kind`` and ``cuda_index`` split a device name without importing torch.

Precision rule (``resolve_precision``): ``auto``, the default, runs fp16 on a CUDA device, and on
the CPU bf16 where the CPU has bf16 instructions (``cpu_features.native_bf16``), else fp32;
fp16 or int8 asked for on the CPU runs fp32, with one log line; bf16 asked for on a CPU without
bf16 instructions runs bf16 emulated, slower than fp32, with a warning. int8 is TensorRT's
(entropy calibration on the ``calibration`` images); other backends run it as fp16. bf16 is the
torch backend's. The backends report the precision that actually runs (``synboost bench``, the
diagnostics).

CUDA graphs (``graphs``, torch backend on a CUDA device): each stage recorded once and
replayed per frame. Asked for where they cannot run (the CPU, another backend), the stages
run eagerly, with one log line (``resolve_graphs``); bench and diagnostics report the mode.

Jetson options (TensorRT only): ``dla_core`` (-1 = GPU; 0 or 1 = that DLA core, with GPU
fallback for the layers it cannot run) and ``calibration`` (a folder of images for int8).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from synboost_ros.config import PRESETS, Size
from synboost_ros.cpu_features import native_bf16
from synboost_ros.ensemble import ENSEMBLE_INPUTS, validate_weights

BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime", "torch")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16", "int8")
GRAPHS_CHOICES = ("off", "on")
MAX_DLA_CORE = 1  # Jetson AGX Orin and Orin NX have two DLA cores; Orin Nano none
DEFAULT_PRESET = "edge"
SIZE_MULTIPLE = 32  # ICNet's coarsest stride and the edge SPADE generator's upsampling factor
MAX_SIDE = 4096
SIZE_STAGES = ("segmentation", "synthesis")

# Precision that runs, by resolved device and requested precision (a new precision is one more
# choice and one more entry per device); the CPU's "auto" is bf16 where bf16 is native.
RUN_PRECISION: dict[str, dict[str, str]] = {
    "cpu": {"auto": "fp32", "fp32": "fp32", "bf16": "bf16", "fp16": "fp32", "int8": "fp32"},
    "cuda": {"auto": "fp16", "fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "int8": "int8"},
}

logger = logging.getLogger(__name__)
_Options = TypeVar("_Options", bound="ModelOptions")


def device_kind(device: str) -> str:
    """The device name without its index: ``cuda:1`` -> ``cuda``; ``cpu`` -> ``cpu``."""
    return device.partition(":")[0]


def cuda_index(device: str) -> int | None:
    """N of ``cuda:N``; None for a device name without an index."""
    _, colon, index = device.partition(":")
    return int(index) if colon else None


def resolve_precision(precision: str, device: str, cpu_bf16: bool | None = None) -> str:
    """The precision that runs for ``precision`` on a resolved ``device`` (cpu, cuda or
    cuda:N), by the rule above; logs when a precision that was asked for explicitly cannot run
    there, or runs slowly. ``cpu_bf16``: whether the CPU has bf16 instructions (None: this
    machine's, ``cpu_features.native_bf16``)."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    kind = device_kind(device)
    if kind not in RUN_PRECISION:
        raise ValueError(f"device must be one of {tuple(RUN_PRECISION)}, got {device!r}")
    ran = RUN_PRECISION[kind][precision]
    if kind == "cpu" and precision in ("auto", "bf16"):
        native = native_bf16() if cpu_bf16 is None else cpu_bf16
        if precision == "auto" and native:
            ran = "bf16"
        elif precision == "bf16" and not native:
            logger.warning(
                "this CPU has no bf16 instructions (avx512_bf16, amx_bf16 or Arm bf16): bf16 "
                "runs emulated, slower than fp32 (precision fp32 or auto is faster)"
            )
    if precision not in ("auto", ran):
        logger.info("%s needs a CUDA device; running %s on the CPU", precision, ran)
    return ran


def resolve_graphs(graphs: str, device: str, backend: str) -> bool:
    """Whether CUDA graphs run for ``graphs`` (off | on) with ``backend`` on a resolved
    ``device``; logs when they were asked for and cannot run there."""
    if graphs not in GRAPHS_CHOICES:
        raise ValueError(f"graphs must be one of {GRAPHS_CHOICES}, got {graphs!r}")
    if graphs == "off":
        return False
    if backend == "torch" and device_kind(device) == "cuda":
        return True
    logger.warning(
        "CUDA graphs run with backend torch on a CUDA device only; %s on %s runs eagerly",
        backend,
        device,
    )
    return False


@dataclass(frozen=True)
class OptionSpec:
    """What an option means and which values it accepts."""

    description: str
    read_only: bool = False  # fixed once the model is built (the node: once it runs)
    choices: tuple[str, ...] = ()
    low: float | None = None  # inclusive bounds, also shown in the ROS descriptor
    high: float | None = None
    step: int = 0  # integer options: allowed values are low + n * step
    count: int = 0  # array options: the number of values
    exclusive: str = ""  # at most one option of a group may differ from its default
    size_of: tuple[str, int] | None = None  # (stage, 0 = height | 1 = width): one HxW flag
    indexed: tuple[str, ...] = ()  # choices also accepted as NAME:N, N a whole number (cuda:1)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the choices (or an indexed choice); True without choices."""
        if not self.choices or value in self.choices:
            return True
        name, colon, index = str(value).partition(":")
        return bool(colon) and name in self.indexed and index.isascii() and index.isdigit()

    def allowed(self) -> str:
        """The accepted values as users read them: ``auto, cpu, cuda, cuda:N``."""
        return ", ".join((*self.choices, *(f"{name}:N" for name in self.indexed)))


def option(default: Any, description: str, **spec: Any) -> Any:
    """A dataclass field with its ``OptionSpec``."""
    return field(default=default, metadata={"spec": OptionSpec(description, **spec)})


def option_spec(options: Any, name: str) -> OptionSpec:
    """The spec of field ``name`` of an options dataclass (class or instance)."""
    return options.__dataclass_fields__[name].metadata["spec"]


def _side(stage: str, axis: int) -> Any:
    what = {"segmentation": "segmentation input", "synthesis": "synthesis and dissimilarity input"}
    return option(
        0,
        f"{what[stage]} {('height', 'width')[axis]}, a multiple of {SIZE_MULTIPLE}; "
        "0 = the preset's",
        read_only=True,
        low=0,
        high=MAX_SIDE,
        step=SIZE_MULTIPLE,
        size_of=(stage, axis),
    )


def bound_text(bound: float) -> str:
    """A range bound as written: ``16777216``, ``0.1``."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _field_problems(name: str, spec: OptionSpec, value: Any) -> list[str]:
    if not spec.accepts(value):
        return [f"{name} must be one of {spec.allowed()}; got {value!r}"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{name} must be finite; got {value}"]
    if spec.low is not None and value < spec.low:
        return [f"{name} must be >= {bound_text(spec.low)}; got {value}"]
    if spec.high is not None and value > spec.high:
        return [f"{name} must be <= {bound_text(spec.high)}; got {value}"]
    if spec.step and value % spec.step:
        return [f"{name} must be a multiple of {spec.step} (0 = preset); got {value}"]
    return []


@dataclass(frozen=True)
class ModelOptions:
    """Which model runs, on which backend, device and precision, at which stage sizes."""

    preset: str = option(DEFAULT_PRESET, "model preset", read_only=True, choices=tuple(PRESETS))
    weights: str = option(
        "",
        "weights manifest (file or folder); unset = the preset's shipped weights",
        read_only=True,
        exclusive="source",
    )
    random_weights: bool = option(
        False,
        "random weights instead of a file: outputs are meaningless (tests and timing only)",
        read_only=True,
        exclusive="source",
    )
    backend: str = option(
        "auto",
        "inference backend; auto = fastest available",
        read_only=True,
        choices=BACKEND_CHOICES,
    )
    device: str = option(
        "auto",
        "device; auto = cuda when available; cuda:N = GPU N",
        read_only=True,
        choices=DEVICE_CHOICES,
        indexed=("cuda",),
    )
    precision: str = option(
        "auto",
        "precision; auto = fp16 on cuda, on the CPU bf16 where the CPU has bf16 instructions "
        "(else fp32); fp16 on the CPU runs fp32; bf16 = torch backend; "
        "int8 = TensorRT with calibration (diagnostics and bench report what ran)",
        read_only=True,
        choices=PRECISION_CHOICES,
    )
    graphs: str = option(
        "off",
        "CUDA graphs: each stage recorded once, replayed per frame (backend torch on cuda; "
        "elsewhere it runs eagerly, said in the log)",
        read_only=True,
        choices=GRAPHS_CHOICES,
    )
    dla_core: int = option(
        -1,
        "TensorRT: DLA core to build the engines for (Jetson AGX Orin / Orin NX), layers it "
        "cannot run fall back to the GPU; -1 = GPU",
        read_only=True,
        low=-1,
        high=MAX_DLA_CORE,
    )
    calibration: str = option(
        "",
        "TensorRT int8: folder of images for entropy calibration (cached with the engines)",
        read_only=True,
    )
    segmentation_height: int = _side("segmentation", 0)
    segmentation_width: int = _side("segmentation", 1)
    synthesis_height: int = _side("synthesis", 0)
    synthesis_width: int = _side("synthesis", 1)
    ensemble_weights: tuple[float, ...] | None = option(
        None,
        f"{len(ENSEMBLE_INPUTS)} weights of {', '.join(ENSEMBLE_INPUTS)}: >= 0, not all 0; "
        "unset = the weights stored with the model",
        count=len(ENSEMBLE_INPUTS),
    )

    @property
    def segmentation_size(self) -> Size | None:
        """(height, width), or None for the preset's size."""
        return _size(self.segmentation_height, self.segmentation_width)

    @property
    def synthesis_size(self) -> Size | None:
        """(height, width), or None for the preset's size."""
        return _size(self.synthesis_height, self.synthesis_width)

    def replace(self: _Options, **changes: Any) -> _Options:
        """Copy with some values changed (not validated)."""
        return dataclasses.replace(self, **changes)

    def problems(self) -> list[str]:
        """Every problem with these values, each naming the option and the rule; [] if valid."""
        fields = dataclasses.fields(self)
        problems = []
        for item in fields:
            problems += _field_problems(item.name, item.metadata["spec"], getattr(self, item.name))
        for stage in SIZE_STAGES:
            height, width = getattr(self, f"{stage}_height"), getattr(self, f"{stage}_width")
            if (height == 0) != (width == 0):
                problems.append(
                    f"{stage}_height and {stage}_width must both be 0 (preset) or both set; "
                    f"got {height}x{width}"
                )
        if self.ensemble_weights is not None:
            try:
                validate_weights(self.ensemble_weights)
            except ValueError as error:
                problems.append(str(error))
        if (self.precision == "int8") != bool(self.calibration):
            problems.append("precision int8 needs calibration (a folder of images), and only it")
        if self.dla_core >= 0 and self.precision not in ("auto", "fp16", "int8"):
            problems.append(f"dla_core runs fp16 or int8 only; got precision {self.precision}")
        for group in sorted({f.metadata["spec"].exclusive for f in fields} - {""}):
            given = [
                f.name
                for f in fields
                if f.metadata["spec"].exclusive == group and getattr(self, f.name) != f.default
            ]
            if len(given) > 1:
                problems.append(f"set either {' or '.join(given)}, not both")
        return problems

    def pipeline_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``AnomalyPipeline.create`` for these options."""
        return {
            "preset": self.preset,
            "weights": self.weights or None,
            "random_weights": self.random_weights,
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "graphs": self.graphs,
            "dla_core": self.dla_core,
            "calibration": self.calibration or None,
            "ensemble_weights": self.ensemble_weights,
            "segmentation_size": self.segmentation_size,
            "synthesis_size": self.synthesis_size,
        }


MODEL_OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ModelOptions))
DEFAULT_OPTIONS = ModelOptions()


def _size(height: int, width: int) -> Size | None:
    return (height, width) if height or width else None
