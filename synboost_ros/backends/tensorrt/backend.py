"""TensorRT backend: one cached engine per stage, built from the stage's ONNX graph and run on
one CUDA stream.

It takes the stage graphs the onnxruntime backend runs (``ModelSource.onnx_graphs``: those
shipped with the weights, or the export cache's) and keys each engine by its graph's sha256.
Device buffers, pinned host copies and the stream come from cuda-python
(``cuda_runtime.CudaRuntime``): nothing here imports torch at module import.

Where torch with CUDA is installed the backend is also device-resident (``run_tensors``): the
engines' named tensors are bound to the torch CUDA tensors of the device pipeline
(``device_pipeline``) and its outputs allocated as torch CUDA tensors, enqueued on torch's
current stream, so a frame never leaves the GPU between stages. Without torch only the numpy
path (``run``: pinned host copies per stage) exists.

The first start builds the engines (minutes per stage on a big GPU, more on a Jetson); later
starts load them from the engine cache (see ``cache``). Each stage's load or build is logged
with its elapsed time; ``stage_engines`` keeps where each engine is and how long it took.
"""

from __future__ import annotations

import importlib.util
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


def torch_with_cuda() -> bool:
    """Whether torch is installed and sees a CUDA device; imports torch only when it is
    installed (``find_spec`` first), so that a torch-free install never tries."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def on_device(tensor: Any) -> bool:
    """Whether ``tensor`` is a torch tensor in CUDA memory (an address the engine can bind)."""
    return bool(getattr(tensor, "is_cuda", False))


def current_stream(torch: Any, device: Any) -> int:
    """The handle of torch's current CUDA stream on ``device`` (what the pipeline enqueues
    its own work on)."""
    return int(torch.cuda.current_stream(device).cuda_stream)


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
        self._specs = stage_specs(config)
        # stage -> (engine file, None when it could not be saved; seconds to load or build it)
        self.stage_engines: dict[str, tuple[str | None, float]] = {}
        device_info = runtime.device_info(self._gpu)
        self._stream = runtime.create_stream()
        uploads = DeviceUploads(CudaRuntime())
        try:
            for stage, spec in self._specs.items():
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
        # Frames stay on the GPU between stages when torch (with CUDA) can hold them there.
        self.device_resident = torch_with_cuda()
        logger.info("TensorRT engines ready: %s", self.stage_precisions)

    @property
    def torch_device(self) -> Any:
        """The engines' GPU as a ``torch.device`` (the device pipeline's frames live there;
        needs torch)."""
        import torch

        return torch.device("cuda", self._gpu)

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage engine on its GPU."""
        self._runtime.set_device(self._gpu)
        return self._runners[stage].run(inputs)

    def run_tensors(self, stage: str, *tensors: Any) -> tuple[Any, ...]:
        """Run one stage engine on torch tensors, in the order of the stage's inputs in
        ``stage_specs``; its outputs in their order.

        CUDA tensors are bound by address (made contiguous and of the engine's dtype first)
        and the outputs are new torch CUDA tensors on the same device, written by the engine
        enqueued on torch's current stream: nothing is copied to the host and nothing is
        waited for (the outputs are ready for later work on that stream). Other tensors run
        through ``run`` (host copies)."""
        import torch

        spec = self._specs[stage]
        inputs = dict(zip((t.name for t in spec.inputs), tensors, strict=True))
        if all(on_device(tensor) for tensor in tensors):
            self._runtime.set_device(self._gpu)
            outputs = self._runners[stage].run_tensors(torch, inputs)
        else:
            arrays = {name: tensor.detach().cpu().numpy() for name, tensor in inputs.items()}
            outputs = {k: torch.from_numpy(v) for k, v in self.run(stage, arrays).items()}
        return tuple(outputs[t.name] for t in spec.outputs)


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
        self._bind_own_buffers()

    def _bind(self, name: str, address: int) -> None:
        if not self._context.set_tensor_address(name, address):
            raise RuntimeError(f"TensorRT refused the buffer for tensor {name!r}")

    def _bind_own_buffers(self) -> None:
        for name, address in self._device.items():
            self._bind(name, address)
        self._own_bound = True

    def run_tensors(self, torch: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        """Bind the engine's tensors to the CUDA tensors ``inputs`` and to new output
        tensors on their device, enqueue on torch's current stream; the outputs, without
        waiting."""
        bound = []
        for t in self._inputs:
            tensor = inputs[t.name]
            if tuple(tensor.shape) != t.shape:
                raise ValueError(
                    f"input {t.name!r} must have shape {t.shape}, got {tuple(tensor.shape)}"
                )
            tensor = tensor.to(dtype=_torch_dtype(torch, t)).contiguous()
            bound.append(tensor)  # alive until enqueued: its memory is the binding
            self._bind(t.name, tensor.data_ptr())
        device = bound[0].device
        outputs = {
            t.name: torch.empty(t.shape, dtype=_torch_dtype(torch, t), device=device)
            for t in self._outputs
        }
        for name, tensor in outputs.items():
            self._bind(name, tensor.data_ptr())
        self._own_bound = False
        if not self._context.execute_async_v3(current_stream(torch, device)):
            raise RuntimeError("TensorRT execute_async_v3 failed (see its log)")
        return outputs

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Upload through pinned memory, enqueue, download; waits for the stream."""
        runtime, stream = self._runtime, self._stream
        if not self._own_bound:  # ``run_tensors`` bound the engine to torch's tensors
            self._bind_own_buffers()
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


def _torch_dtype(torch: Any, tensor: TensorInfo) -> Any:
    """The torch dtype of an engine tensor (``IO_DTYPES`` share their names with torch's)."""
    return getattr(torch, _dtype(tensor).name)
