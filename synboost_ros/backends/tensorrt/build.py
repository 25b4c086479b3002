"""Building a TensorRT engine from an ONNX graph, with a timing cache shared between builds.

Driven through the ``api.TensorRTModule`` shim (which decides by feature detection what depends
on the TensorRT version); the builder API used here is common to TensorRT 8.6 and 10.x.
``BuildSettings`` holds the precision (fp32, fp16, int8 with an entropy calibrator), the
workspace and the DLA core (-1 = GPU; on a DLA, layers it cannot run fall back to the GPU).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synboost_ros.files import atomic_write_bytes, read_trusted

if TYPE_CHECKING:
    from synboost_ros.backends.tensorrt.api import TensorRTModule

logger = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 4 << 30
PRECISIONS = ("fp32", "fp16", "int8")


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the graph or build an engine from it."""


@dataclass(frozen=True)
class BuildSettings:
    """How an engine is built: precision, workspace, DLA core (-1 = GPU)."""

    precision: str = "fp16"
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES
    dla_core: int = -1

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.dla_core >= 0 and self.precision == "fp32":
            raise ValueError("a DLA runs fp16 or int8 only: set precision fp16/int8 or dla_core -1")


def check_precision(precision: str) -> None:
    """ValueError unless ``precision`` is one of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def build_engine(
    shim: TensorRTModule,
    onnx_path: str | os.PathLike,
    settings: BuildSettings,
    timing_cache_path: str | os.PathLike | None = None,
    calibrator: Any = None,
) -> tuple[bytes, str]:
    """Build a serialized engine from an ONNX file; return it with the precision it runs.

    ``fp16`` uses the FP16 builder flag where ``shim.fp16_flag_usable()``; otherwise the
    network is strongly typed (TensorRT >= 10) and runs the graph's own types (fp32 for an fp32
    graph, said in a warning). ``int8`` calibrates with ``calibrator`` (implicit
    quantization, weakly typed; fp16 allowed where the flag is usable). TF32 is switched off so
    ``fp32`` means fp32.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX graph not found: {onnx_path}")
    precision = settings.precision
    if (precision == "int8") != (calibrator is not None):
        raise ValueError("precision int8 needs a calibrator, and only int8 takes one")
    if precision == "int8" and not shim.int8_calibration_available():
        raise EngineBuildError(
            f"TensorRT {shim.version} has no INT8 calibration (implicit quantization); "
            "use precision fp16"
        )
    trt = shim.trt
    builder = trt.Builder(shim.logger)
    use_fp16_flag = precision in ("fp16", "int8") and shim.fp16_flag_usable()
    strongly_typed = precision != "int8" and not use_fp16_flag
    network = builder.create_network(shim.network_flags(strongly_typed=strongly_typed))
    parser = trt.OnnxParser(network, shim.logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise EngineBuildError(
            f"TensorRT could not parse {onnx_path}: " + "; ".join(parser_errors(parser))
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_bytes))
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if use_fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    if settings.dla_core >= 0:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = settings.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    _attach_timing_cache(config, timing_cache_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} (see its log)")
    if timing_cache_path is not None:
        _save_timing_cache(config, Path(timing_cache_path))
    if precision == "int8":
        return bytes(serialized), "int8"
    used = "fp16" if use_fp16_flag or _network_has_half(trt, network) else "fp32"
    if precision == "fp16" and used != "fp16":
        logger.warning(
            "TensorRT %s: fp16 asked, engine runs fp32. BuilderFlag.FP16 is deprecated from "
            "TensorRT 10.12; fp16 there needs an fp16 ONNX graph (strongly typed network)",
            shim.version,
        )
    return bytes(serialized), used


def parser_errors(parser: Any) -> list[str]:
    """The ONNX parser's error messages, with node name and operator where it gives them."""
    messages = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        text = str(error.desc())
        node_name = getattr(error, "node_name", None)
        node_operator = getattr(error, "node_operator", None)
        if callable(node_name) and node_name():
            operator = f" ({node_operator()})" if callable(node_operator) else ""
            text = f"node {node_name()}{operator}: {text}"
        messages.append(text)
    return messages or ["no error details from the parser"]


def _network_has_half(trt: Any, network: Any) -> bool:
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for output in range(layer.num_outputs):
            if layer.get_output(output).dtype == trt.DataType.HALF:
                return True
    return False


def _attach_timing_cache(config: Any, path: str | os.PathLike | None) -> None:
    if path is None:
        return
    data = b""
    try:
        data = read_trusted(path)  # a symbolic link is refused, not followed
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.warning("cannot read TensorRT timing cache %s (%s); starting a new one", path, error)
    cache = None
    try:
        cache = config.create_timing_cache(data)
    except Exception as error:  # TensorRT rejects caches from other versions or devices
        logger.warning("TensorRT timing cache %s unusable (%s); starting a new one", path, error)
    if cache is None:
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)


def _save_timing_cache(config: Any, path: Path) -> None:
    try:
        atomic_write_bytes(path, bytes(config.get_timing_cache().serialize()))
    except OSError as error:
        logger.warning("cannot save TensorRT timing cache %s: %s", path, error)
