"""The TensorRT API shim: the only module that imports ``tensorrt``.

``TensorRTModule`` wraps the installed package behind ``TensorRTApi`` (the operations the engine
cache needs), so the cache runs against a fake in tests. What depends on the TensorRT version is
decided here by feature detection, for TensorRT 8.6 (JetPack 6.0) and 10.x (JetPack 6.1 / 6.2,
desktops); ``TENSORRT_NAMES`` lists every TensorRT name the backend uses.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from synboost_ros.backends.tensorrt.build import build_engine
from synboost_ros.backends.tensorrt.calibration import Upload, entropy_calibrator

if TYPE_CHECKING:
    from synboost_ros.backends.tensorrt.build import BuildSettings

# BuilderFlag.FP16 belongs to "weak typing", deprecated from TensorRT 10.12, removed in 11.
FP16_FLAG_DEPRECATED_FROM = (10, 12)
# Networks are explicit batch from TensorRT 10 on; 8.x needs the flag (deprecated, ignored in 10).
EXPLICIT_BATCH_IMPLIED_FROM = (10, 0)
NOT_INSTALLED = (
    "TensorRT is not installed: pip install tensorrt (needs an NVIDIA GPU; on a Jetson it "
    "comes with JetPack) or use backend onnxruntime/torch"
)
# The named-tensor API of TensorRT >= 8.5 that the runner and ``io_tensors`` use.
NAMED_TENSOR_API = (
    ("IExecutionContext", "set_tensor_address"),
    ("IExecutionContext", "execute_async_v3"),
    ("ICudaEngine", "num_io_tensors"),
    ("ICudaEngine", "get_tensor_name"),
)

# Every TensorRT name the backend uses (``tensorrt.<name>``) -> its status in TensorRT 8.6,
# from NVIDIA's 8.6 Python API reference (docs.nvidia.com/deeplearning/tensorrt/archives/
# tensorrt-861/api/python_api). test_tensorrt_api_names checks each against the
# ``tensorrt-stubs`` (10.x) and that the backend uses no TensorRT name missing here.
TENSORRT_NAMES: dict[str, str] = {
    "__version__": "8.6: yes",
    "Logger": "8.6: yes",
    "Logger.WARNING": "8.6: yes",
    "Runtime": "8.6: yes",
    "Runtime.deserialize_cuda_engine": "8.6: yes",
    "Runtime.DLA_core": "8.6: yes",
    "Builder": "8.6: yes",
    "Builder.create_network": "8.6: yes",
    "Builder.create_builder_config": "8.6: yes",
    "Builder.build_serialized_network": "8.6: yes",
    "NetworkDefinitionCreationFlag": "8.6: yes",
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": "8.6: required; 10: deprecated, ignored",
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": "8.6: no (from 10.0)",
    "INetworkDefinition.num_layers": "8.6: yes",
    "INetworkDefinition.get_layer": "8.6: yes",
    "ILayer.num_outputs": "8.6: yes",
    "ILayer.get_output": "8.6: yes",
    "ITensor.dtype": "8.6: yes",
    "DataType.HALF": "8.6: yes",
    "OnnxParser": "8.6: yes",
    "OnnxParser.parse_from_file": "8.6: yes",
    "OnnxParser.num_errors": "8.6: yes",
    "OnnxParser.get_error": "8.6: yes",
    "ParserError.desc": "8.6: yes",
    "ParserError.node_name": "8.6: no (from 10.x; looked up with getattr)",
    "ParserError.node_operator": "8.6: no (from 10.x; looked up with getattr)",
    "IBuilderConfig.set_memory_pool_limit": "8.6: yes (from 8.4)",
    "MemoryPoolType.WORKSPACE": "8.6: yes",
    "IBuilderConfig.set_flag": "8.6: yes",
    "IBuilderConfig.clear_flag": "8.6: yes",
    "BuilderFlag": "8.6: yes",
    "BuilderFlag.FP16": "8.6: yes; deprecated from 10.12",
    "BuilderFlag.INT8": "8.6: yes; implicit quantization deprecated from 10.1",
    "BuilderFlag.TF32": "8.6: yes",
    "BuilderFlag.GPU_FALLBACK": "8.6: yes",
    "IBuilderConfig.default_device_type": "8.6: yes",
    "IBuilderConfig.DLA_core": "8.6: yes",
    "DeviceType.DLA": "8.6: yes",
    "IBuilderConfig.int8_calibrator": "8.6: yes; deprecated from 10.1",
    "IInt8EntropyCalibrator2": "8.6: yes; deprecated from 10.1",
    "IInt8EntropyCalibrator2.__init__": "8.6: yes (a subclass calls it)",
    "IInt8EntropyCalibrator2.get_batch_size": "8.6: yes",
    "IInt8EntropyCalibrator2.get_batch": "8.6: yes",
    "IInt8EntropyCalibrator2.read_calibration_cache": "8.6: yes",
    "IInt8EntropyCalibrator2.write_calibration_cache": "8.6: yes",
    "IBuilderConfig.create_timing_cache": "8.6: yes",
    "IBuilderConfig.set_timing_cache": "8.6: yes",
    "IBuilderConfig.get_timing_cache": "8.6: yes",
    "ITimingCache.serialize": "8.6: yes",
    "ICudaEngine.num_io_tensors": "8.6: yes (from 8.5)",
    "ICudaEngine.get_tensor_name": "8.6: yes (from 8.5)",
    "ICudaEngine.get_tensor_shape": "8.6: yes (from 8.5)",
    "ICudaEngine.get_tensor_dtype": "8.6: yes (from 8.5)",
    "ICudaEngine.get_tensor_mode": "8.6: yes (from 8.5)",
    "ICudaEngine.create_execution_context": "8.6: yes",
    "TensorIOMode.INPUT": "8.6: yes (from 8.5)",
    "IExecutionContext.set_tensor_address": "8.6: yes (from 8.5)",
    "IExecutionContext.execute_async_v3": "8.6: yes (from 8.5)",
    "nptype": "8.6: yes",
}


class EngineLoadError(RuntimeError):
    """A serialized engine could not be deserialized (corrupt, or built elsewhere)."""


@dataclass(frozen=True)
class TensorInfo:
    """One engine I/O tensor: name, fixed shape, numpy dtype name, direction."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    is_input: bool


class TensorRTApi(Protocol):
    """The TensorRT operations the engine cache needs."""

    version: str

    def build(
        self,
        onnx_path: Path,
        settings: BuildSettings,
        timing_cache_path: Path | None,
        calibrator: Any = None,
    ) -> tuple[bytes, str]:
        """Serialized engine and the precision it runs."""

    def calibrator(
        self, batches: Iterable[Mapping[str, np.ndarray]], upload: Upload, cache_path: Path
    ) -> Any:
        """An INT8 entropy calibrator (``calibration.entropy_calibrator``)."""

    def deserialize(self, data: bytes, dla_core: int = -1) -> Any:
        """An engine object; raises ``EngineLoadError`` for unusable bytes."""

    def io_tensors(self, engine: Any) -> tuple[TensorInfo, ...]:
        """The engine's I/O tensors."""


def tensorrt_installed() -> bool:
    """Whether ``tensorrt`` is a real package: ``tensorrt-stubs`` alone makes a namespace
    package of that name (no origin) that imports but holds nothing."""
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin not in (None, "namespace")


class TensorRTModule:
    """``TensorRTApi`` on the installed ``tensorrt`` package (one runtime, kept alive)."""

    def __init__(self, trt: Any) -> None:
        self.trt = trt
        self.version = str(trt.__version__)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self._runtime: Any = None  # created on first use: it initialises CUDA

    @classmethod
    def load(cls) -> TensorRTModule:
        """Import ``tensorrt``; ImportError with the install hint when it is missing, only
        type stubs, or lacks the named-tensor API (TensorRT < 8.5)."""
        try:
            import tensorrt as trt
        except ImportError as error:
            raise ImportError(NOT_INSTALLED) from error
        if not hasattr(trt, "__version__"):
            raise ImportError(NOT_INSTALLED + " (only type stubs found)")
        missing = [
            f"{owner}.{name}"
            for owner, name in NAMED_TENSOR_API
            if not hasattr(getattr(trt, owner, None), name)
        ]
        if missing:
            raise ImportError(
                f"TensorRT {trt.__version__} lacks the named-tensor API ({', '.join(missing)}): "
                "TensorRT >= 8.5 needed (JetPack >= 6.0)"
            )
        return cls(trt)

    def fp16_flag_usable(self) -> bool:
        """Whether this TensorRT should get FP16 from ``BuilderFlag.FP16``."""
        return fp16_builder_flag_usable(self.version, hasattr(self.trt.BuilderFlag, "FP16"))

    def strongly_typed_available(self) -> bool:
        """Whether networks can be strongly typed (TensorRT >= 10)."""
        return hasattr(self.trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")

    def int8_calibration_available(self) -> bool:
        """Whether this TensorRT still has implicit INT8 with calibrators (8.6 to 10.x)."""
        trt = self.trt
        return hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2")

    def network_flags(self, strongly_typed: bool) -> int:
        """``create_network`` flags: EXPLICIT_BATCH before TensorRT 10, STRONGLY_TYPED when
        asked and available."""
        flags = self.trt.NetworkDefinitionCreationFlag
        value = 0
        if version_tuple(self.version) < EXPLICIT_BATCH_IMPLIED_FROM:
            value |= 1 << int(flags.EXPLICIT_BATCH)
        if strongly_typed and self.strongly_typed_available():
            value |= 1 << int(flags.STRONGLY_TYPED)
        return value

    def build(
        self,
        onnx_path: Path,
        settings: BuildSettings,
        timing_cache_path: Path | None,
        calibrator: Any = None,
    ) -> tuple[bytes, str]:
        """See ``build.build_engine``."""
        return build_engine(self, onnx_path, settings, timing_cache_path, calibrator)

    def calibrator(
        self, batches: Iterable[Mapping[str, np.ndarray]], upload: Upload, cache_path: Path
    ) -> Any:
        """See ``calibration.entropy_calibrator``."""
        return entropy_calibrator(self.trt, batches, upload, cache_path)

    def deserialize(self, data: bytes, dla_core: int = -1) -> Any:
        """``Runtime.deserialize_cuda_engine`` (on DLA core ``dla_core`` when >= 0); None or an
        exception become ``EngineLoadError``."""
        if self._runtime is None:
            self._runtime = self.trt.Runtime(self.logger)
        if dla_core >= 0:
            self._runtime.DLA_core = dla_core
        try:
            engine = self._runtime.deserialize_cuda_engine(data)
        except Exception as error:  # TensorRT raises its own types for some bad inputs
            raise EngineLoadError(f"TensorRT could not deserialize the engine: {error}") from error
        if engine is None:
            raise EngineLoadError("TensorRT could not deserialize the engine (see its log)")
        return engine

    def io_tensors(self, engine: Any) -> tuple[TensorInfo, ...]:
        """Name, shape, dtype and mode of each I/O tensor (named-tensor API, TensorRT >= 8.5)."""
        trt = self.trt
        tensors = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            tensors.append(
                TensorInfo(
                    name=name,
                    shape=tuple(int(d) for d in engine.get_tensor_shape(name)),
                    dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name,
                    is_input=engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                )
            )
        return tuple(tensors)


def version_tuple(version: str) -> tuple[int, int]:
    """``"10.12.0.36"`` -> ``(10, 12)``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"cannot read a TensorRT version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def fp16_builder_flag_usable(trt_version: str, has_fp16_flag: bool) -> bool:
    """Whether FP16 should come from ``BuilderFlag.FP16``: present and not yet deprecated.

    From TensorRT 10.12 the flag is deprecated (removed in 11): FP16 there needs an FP16
    ONNX graph built as a strongly typed network.
    """
    return has_fp16_flag and version_tuple(trt_version) < FP16_FLAG_DEPRECATED_FROM
