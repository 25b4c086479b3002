"""TensorRT backend: one cached engine per stage, run on one CUDA stream with torch buffers.

The first start builds the engines (minutes per stage on a big GPU, more on a Jetson); later
starts load them from the engine cache (see ``cache``). Each stage's load or build is logged
with its elapsed time; ``stage_engines`` keeps where each engine is and how long it took.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch

from synboost_ros.backends.base import Backend
from synboost_ros.backends.tensorrt.api import TensorInfo, TensorRTModule
from synboost_ros.backends.tensorrt.build import DEFAULT_WORKSPACE_BYTES, BuildSettings
from synboost_ros.backends.tensorrt.cache import (
    CachedEngine,
    gpu_device_info,
    load_or_build_engine,
    usable_cache_dir,
)
from synboost_ros.backends.tensorrt.calibration import CalibrationSet
from synboost_ros.export import cached_onnx, default_cache_dir, model_fingerprint
from synboost_ros.model import SynBoostModel
from synboost_ros.options import cuda_index, device_kind
from synboost_ros.stage_io import StageSpec, stage_specs
from synboost_ros.stages import STAGE_NAMES

logger = logging.getLogger(__name__)

TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "int32": torch.int32,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def spec_tensors(spec: StageSpec) -> tuple[TensorInfo, ...]:
    """The I/O tensors an engine for ``spec`` must have."""
    return tuple(
        TensorInfo(t.name, tuple(t.shape), np.dtype(t.dtype).name, is_input)
        for is_input, tensors in ((True, spec.inputs), (False, spec.outputs))
        for t in tensors
    )


class TensorRTBackend(Backend):
    """Runs the stage engines; ``precision`` is what the engines actually run.

    ``dla_core`` >= 0 builds for that DLA core (layers it cannot run fall back to the GPU);
    ``int8`` needs ``calibration`` (``synboost_ros.calibration.calibration_set``).
    """

    name = "tensorrt"

    def __init__(
        self,
        model: SynBoostModel,
        device: str = "cuda",
        precision: str = "fp16",
        cache_dir: str | os.PathLike | None = None,
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
        dla_core: int = -1,
        calibration: CalibrationSet | None = None,
    ) -> None:
        settings = BuildSettings(precision, workspace_bytes, dla_core)
        api = TensorRTModule.load()
        if device_kind(device) != "cuda":
            raise ValueError(
                f"the TensorRT backend runs on device 'cuda' or 'cuda:N' only, got {device!r}"
            )
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch sees no CUDA device")
        self.device = device
        index = cuda_index(device)
        # Engines, buffers and the stream belong to the GPU that is current while they are made.
        self._gpu = torch.device("cuda", torch.cuda.current_device() if index is None else index)
        folder = usable_cache_dir(cache_dir or default_cache_dir() / "tensorrt")
        fingerprint = model_fingerprint(model)
        graphs = cached_onnx(model, fingerprint=fingerprint)
        self._runners: dict[str, EngineRunner] = {}
        # stage -> (engine file, None when it could not be saved; seconds to load or build it)
        self.stage_engines: dict[str, tuple[str | None, float]] = {}
        with torch.cuda.device(self._gpu):
            device_info = gpu_device_info(self._gpu.index)
            self._stream = torch.cuda.Stream()
            uploads = DeviceUploads(self._gpu)
            for stage, spec in stage_specs(model.config).items():
                start = time.monotonic()
                cached = load_or_build_engine(
                    stage,
                    graphs[stage],
                    fingerprint,
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
                self._runners[stage] = EngineRunner(cached, self._stream)
            uploads.release()
        self.stage_precisions = {s: self._runners[s].precision for s in STAGE_NAMES}
        ran = set(self.stage_precisions.values())
        self.precision = ran.pop() if len(ran) == 1 else "mixed"
        logger.info("TensorRT engines ready: %s", self.stage_precisions)

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage engine on its GPU."""
        with torch.cuda.device(self._gpu):
            return self._runners[stage].run(inputs)


class DeviceUploads:
    """``calibration.Upload`` on torch CUDA tensors: one device buffer per input name."""

    def __init__(self, gpu: torch.device) -> None:
        self._gpu = gpu
        self._buffers: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, array: np.ndarray) -> int:
        """Copy ``array`` to the device buffer of ``name``; its address."""
        self._buffers[name] = torch.from_numpy(np.ascontiguousarray(array)).to(self._gpu)
        return int(self._buffers[name].data_ptr())

    def release(self) -> None:
        """Free the buffers (calibration is over)."""
        self._buffers.clear()


class EngineRunner:
    """One execution context with its CUDA I/O tensors bound once, and pinned host copies."""

    def __init__(self, cached: CachedEngine, stream: torch.cuda.Stream) -> None:
        self.precision = cached.precision
        self._stream = stream
        self._context: Any = cached.engine.create_execution_context()
        if self._context is None:
            raise RuntimeError("TensorRT could not create an execution context (GPU memory?)")
        self._inputs = [t for t in cached.io if t.is_input]
        self._outputs = [t for t in cached.io if not t.is_input]
        self._device = {t.name: _empty(t, device="cuda") for t in cached.io}
        self._host = {t.name: _empty(t, device="cpu", pinned=True) for t in cached.io}
        for name, tensor in self._device.items():
            if not self._context.set_tensor_address(name, tensor.data_ptr()):
                raise RuntimeError(f"TensorRT refused the buffer for tensor {name!r}")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Upload through pinned memory, enqueue, download; waits for the stream."""
        for t in self._inputs:
            array = np.asarray(inputs[t.name])
            if array.shape != t.shape:
                raise ValueError(f"input {t.name!r} must have shape {t.shape}, got {array.shape}")
            np.copyto(self._host[t.name].numpy(), array, casting="same_kind")
        with torch.cuda.stream(self._stream):
            for t in self._inputs:
                self._device[t.name].copy_(self._host[t.name], non_blocking=True)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed (see its log)")
            for t in self._outputs:
                self._host[t.name].copy_(self._device[t.name], non_blocking=True)
        self._stream.synchronize()
        return {t.name: self._host[t.name].numpy().copy() for t in self._outputs}


def _empty(tensor: TensorInfo, device: str, pinned: bool = False) -> torch.Tensor:
    try:
        dtype = TORCH_DTYPES[tensor.dtype]
    except KeyError:
        raise ValueError(
            f"tensor {tensor.name!r} has dtype {tensor.dtype}, not supported"
        ) from None
    return torch.empty(tensor.shape, dtype=dtype, device=device, pin_memory=pinned)
