"""The TensorRT API shim: the only module that imports ``tensorrt``.

``TensorRTModule`` wraps the installed package behind ``TensorRTApi`` (the operations the engine
cache needs), so the cache runs against a fake in tests. Version checks and the choices that
depend on the TensorRT version live here. Written against the TensorRT 10 Python API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synboost_ros.backends.tensorrt.build import build_engine

MIN_TENSORRT_MAJOR = 10
# BuilderFlag.FP16 belongs to "weak typing", deprecated from TensorRT 10.12, removed in 11.
FP16_FLAG_DEPRECATED_FROM = (10, 12)
NOT_INSTALLED = (
    "TensorRT is not installed: pip install tensorrt (needs an NVIDIA GPU) "
    "or use backend onnxruntime/torch"
)


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
        self, onnx_path: Path, precision: str, workspace_bytes: int, timing_cache_path: Path | None
    ) -> tuple[bytes, str]:
        """Serialized engine and the precision it runs."""

    def deserialize(self, data: bytes) -> Any:
        """An engine object; raises ``EngineLoadError`` for unusable bytes."""

    def io_tensors(self, engine: Any) -> tuple[TensorInfo, ...]:
        """The engine's I/O tensors."""


class TensorRTModule:
    """``TensorRTApi`` on the installed ``tensorrt`` package (one runtime, kept alive)."""

    def __init__(self, trt: Any) -> None:
        self.trt = trt
        self.version = str(trt.__version__)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self._runtime: Any = None  # created on first use: it initialises CUDA

    @classmethod
    def load(cls) -> TensorRTModule:
        """Import ``tensorrt``; ImportError with the install hint when it is missing or old."""
        try:
            import tensorrt as trt
        except ImportError as error:
            raise ImportError(NOT_INSTALLED) from error
        if version_tuple(trt.__version__)[0] < MIN_TENSORRT_MAJOR:
            raise ImportError(f"TensorRT >= {MIN_TENSORRT_MAJOR} needed, found {trt.__version__}")
        return cls(trt)

    def fp16_flag_usable(self) -> bool:
        """Whether this TensorRT should get FP16 from ``BuilderFlag.FP16``."""
        return fp16_builder_flag_usable(self.version, hasattr(self.trt.BuilderFlag, "FP16"))

    def network_flags(self, strongly_typed: bool) -> int:
        """``create_network`` flags; TensorRT 10 networks are always explicit batch."""
        flags = self.trt.NetworkDefinitionCreationFlag
        if strongly_typed and hasattr(flags, "STRONGLY_TYPED"):
            return 1 << int(flags.STRONGLY_TYPED)
        return 0

    def build(
        self, onnx_path: Path, precision: str, workspace_bytes: int, timing_cache_path: Path | None
    ) -> tuple[bytes, str]:
        """See ``build.build_engine``."""
        return build_engine(self, onnx_path, precision, workspace_bytes, timing_cache_path)

    def deserialize(self, data: bytes) -> Any:
        """``Runtime.deserialize_cuda_engine``; None or an exception become ``EngineLoadError``."""
        if self._runtime is None:
            self._runtime = self.trt.Runtime(self.logger)
        try:
            engine = self._runtime.deserialize_cuda_engine(data)
        except Exception as error:  # TensorRT raises its own types for some bad inputs
            raise EngineLoadError(f"TensorRT could not deserialize the engine: {error}") from error
        if engine is None:
            raise EngineLoadError("TensorRT could not deserialize the engine (see its log)")
        return engine

    def io_tensors(self, engine: Any) -> tuple[TensorInfo, ...]:
        """Name, shape, dtype and mode of each I/O tensor (TensorRT 10 named-tensor API)."""
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
