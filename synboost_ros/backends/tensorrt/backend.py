"""TensorRT backend: one cached engine per stage, built from the stage's ONNX graph and run on
one CUDA stream.

It takes the stage graphs the onnxruntime backend runs (``ModelSource.onnx_graphs``: those
shipped with the weights, or the export cache's) and keys each engine by its graph's sha256.
Device buffers, pinned host copies and the stream come from cuda-python
(``cuda_runtime.CudaRuntime``): nothing here imports torch.

The first start builds the engines (minutes per stage on a big GPU, more on a Jetson); later
starts load them from the engine cache (see ``cache``). Each stage's load or build is logged
with its elapsed time; ``stage_engines`` keeps where each engine is and how long it took.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from synboost_ros.backends.base import Backend
from synboost_ros.backends.tensorrt.api import TensorInfo, TensorRTApi, TensorRTModule
from synboost_ros.backends.tensorrt.build import DEFAULT_WORKSPACE_BYTES, BuildSettings
from synboost_ros.backends.tensorrt.cache import (
    CachedEngine,
    load_or_build_engine,
    usable_cache_dir,
)
from synboost_ros.backends.tensorrt.calibration import CalibrationSet
from synboost_ros.backends.tensorrt.cuda_runtime import CudaRuntime
from synboost_ros.config import STAGE_NAMES, PipelineConfig
from synboost_ros.graphs import default_cache_dir, recorded_sha256
from synboost_ros.options import cuda_index, device_kind
from synboost_ros.stage_io import StageSpec, stage_specs

logger = logging.getLogger(__name__)

IO_DTYPES = ("float32", "float16", "int32", "int8", "uint8", "bool")


def spec_tensors(spec: StageSpec) -> tuple[TensorInfo, ...]:
    """The I/O tensors an engine for ``spec`` must have."""
    return tuple(
        TensorInfo(t.name, tuple(t.shape), np.dtype(t.dtype).name, is_input)
        for is_input, tensors in ((True, spec.inputs), (False, spec.outputs))
        for t in tensors
    )


class TensorRTBackend(Backend):
    """Runs the stage engines of ``graphs`` (verified graph folders' ``<stage>.onnx``, made
    for ``config``); ``precision`` is what the engines actually run.

    ``dla_core`` >= 0 builds for that DLA core (layers it cannot run fall back to the GPU);
    ``int8`` needs ``calibration`` (``synboost_ros.calibration.calibration_set``). ``api`` is
    TensorRT (loaded here when not given).
    """

    name = "tensorrt"

    def __init__(
        self,
        graphs: dict[str, Path],
        config: PipelineConfig,
        device: str = "cuda",
        precision: str = "fp16",
        cache_dir: str | os.PathLike | None = None,
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
        dla_core: int = -1,
        calibration: CalibrationSet | None = None,
        api: TensorRTApi | None = None,
    ) -> None:
        settings = BuildSettings(precision, workspace_bytes, dla_core)
        api = api or TensorRTModule.load()
        if device_kind(device) != "cuda":
            raise ValueError(
                f"the TensorRT backend runs on device 'cuda' or 'cuda:N' only, got {device!r}"
            )
        runtime = CudaRuntime()
        count = runtime.device_count()
        if count == 0:
            raise ValueError(f"device {device!r} requested but CUDA sees no device")
        index = cuda_index(device)
        if index is not None and index >= count:
            raise ValueError(f"device {device!r} requested but CUDA sees {count} device(s)")
        self.device = device
        # Engines, buffers and the stream belong to the GPU that is current while they are made.
        self._gpu = runtime.current_device() if index is None else index
        self._runtime = runtime
        runtime.set_device(self._gpu)
        folder = usable_cache_dir(cache_dir or default_cache_dir() / "tensorrt")
        graph_sha256 = recorded_sha256(graphs)
        self._runners: dict[str, EngineRunner] = {}
        # stage -> (engine file, None when it could not be saved; seconds to load or build it)
        self.stage_engines: dict[str, tuple[str | None, float]] = {}
        device_info = runtime.device_info(self._gpu)
        self._stream = runtime.create_stream()
        uploads = DeviceUploads(CudaRuntime())
        try:
            for stage, spec in stage_specs(config).items():
                start = time.monotonic()
                cached = load_or_build_engine(
                    stage,
                    graphs[stage],
                    graph_sha256[stage],
                    folder,
                    settings,
                    device_info,
                    spec_tensors(spec),
                    api=api,
                    calibration=calibration,
                    upload=uploads,
                )
                seconds = time.monotonic() - start
                self.stage_engines[stage] = (cached.path and str(cached.path), seconds)
                logger.info(
                    "TensorRT %s engine of stage %s ready in %.1f s: %s",
                    cached.precision,
                    stage,
                    seconds,
                    cached.path,
                )
                self._runners[stage] = EngineRunner(cached, runtime, self._stream)
        finally:
            uploads.release()
        self.stage_precisions = {s: self._runners[s].precision for s in STAGE_NAMES}
        ran = set(self.stage_precisions.values())
        self.precision = ran.pop() if len(ran) == 1 else "mixed"
        logger.info("TensorRT engines ready: %s", self.stage_precisions)

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage engine on its GPU."""
        self._runtime.set_device(self._gpu)
        return self._runners[stage].run(inputs)


class DeviceUploads:
    """``calibration.Upload`` on device buffers: one device buffer and one pinned host array
    per input name, reused while the size holds."""

    def __init__(self, runtime: CudaRuntime) -> None:
        self._runtime = runtime
        self._buffers: dict[str, tuple[int, np.ndarray]] = {}  # name -> (address, host)
        self._stream: Any = None

    def __call__(self, name: str, array: np.ndarray) -> int:
        """Copy ``array`` to the device buffer of ``name``; its address."""
        runtime = self._runtime
        if self._stream is None:
            self._stream = runtime.create_stream()
        array = np.asarray(array)
        address, host = self._buffers.get(name, (0, None))
        if host is None or host.shape != array.shape or host.dtype != array.dtype:
            host = runtime.host_array(array.shape, array.dtype)
            address = runtime.device_buffer(host.nbytes)
            self._buffers[name] = (address, host)
        np.copyto(host, array)
        runtime.copy_to_device(address, host, self._stream)
        runtime.synchronize(self._stream)
        return address

    def release(self) -> None:
        """Free the buffers (calibration is over)."""
        self._runtime.release()
        self._buffers.clear()
        self._stream = None


class EngineRunner:
    """One execution context with its device I/O buffers bound once, and pinned host copies."""

    def __init__(self, cached: CachedEngine, runtime: CudaRuntime, stream: Any) -> None:
        self.precision = cached.precision
        self._runtime = runtime
        self._stream = stream
        self._context: Any = cached.engine.create_execution_context()
        if self._context is None:
            raise RuntimeError("TensorRT could not create an execution context (GPU memory?)")
        self._inputs = [t for t in cached.io if t.is_input]
        self._outputs = [t for t in cached.io if not t.is_input]
        self._host = {t.name: runtime.host_array(t.shape, _dtype(t)) for t in cached.io}
        self._device = {t.name: runtime.device_buffer(self._host[t.name].nbytes) for t in cached.io}
        for name, address in self._device.items():
            if not self._context.set_tensor_address(name, address):
                raise RuntimeError(f"TensorRT refused the buffer for tensor {name!r}")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Upload through pinned memory, enqueue, download; waits for the stream."""
        runtime, stream = self._runtime, self._stream
        for t in self._inputs:
            array = np.asarray(inputs[t.name])
            if array.shape != t.shape:
                raise ValueError(f"input {t.name!r} must have shape {t.shape}, got {array.shape}")
            np.copyto(self._host[t.name], array, casting="same_kind")
        for t in self._inputs:
            runtime.copy_to_device(self._device[t.name], self._host[t.name], stream)
        if not self._context.execute_async_v3(runtime.stream_handle(stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed (see its log)")
        for t in self._outputs:
            runtime.copy_to_host(self._host[t.name], self._device[t.name], stream)
        runtime.synchronize(stream)
        return {t.name: self._host[t.name].copy() for t in self._outputs}


def _dtype(tensor: TensorInfo) -> np.dtype:
    if tensor.dtype not in IO_DTYPES:
        raise ValueError(f"tensor {tensor.name!r} has dtype {tensor.dtype}, not supported")
    return np.dtype(tensor.dtype)
