"""Stand-ins for cuda-python and TensorRT that need neither a GPU nor torch.

``FakeCudart`` is cuda-python's runtime module: device memory in bytearrays, pinned host memory
in ctypes buffers. ``onnx_tensorrt`` is a ``tensorrt`` module whose engines run their ONNX graph
with onnxruntime on that device memory, so the TensorRT backend goes through every step of a
real start: parsing, building (INT8 calibration included), serializing, the engine cache,
deserializing, the I/O tensor queries, buffers bound by address and execution on a stream.
``fake_modules`` gives both as ``sys.modules`` entries. With ``FakeCudart.foreign`` set, the
engines also read and write addresses it did not allocate as this process's memory: CPU torch
tensors standing in for the CUDA tensors of the TensorRT backend's ``run_tensors``.
"""

from __future__ import annotations

import ctypes
import enum
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

MAGIC = b"ONNX-ENGINE:"
ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int32)": "int32"}


class FakeCudart:
    """cuda-python's runtime calls: (error, value...) tuples; device memory in bytearrays,
    pinned host memory in ctypes buffers."""

    class cudaError_t(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorMemoryAllocation = 2
        cudaErrorNoDevice = 100

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self, devices: int = 1, fail: dict[str, int] | None = None) -> None:
        self.devices = devices
        self.fail = fail or {}
        self.memory: dict[int, bytearray] = {}
        self.pinned: dict[int, ctypes.Array] = {}
        self.streams: set[int] = set()
        self.current = 0
        self.foreign = False  # addresses it did not allocate are process memory
        self._next = 0x1000

    def _result(self, name: str, *values):
        if name in self.fail:
            return (self.cudaError_t(self.fail[name]),)
        return (self.cudaError_t.cudaSuccess, *values)

    def cudaGetErrorString(self, error):
        text = {2: b"out of memory", 100: b"no CUDA-capable device is detected"}[int(error)]
        return (self.cudaError_t.cudaSuccess, text)

    def cudaGetDeviceCount(self):
        return self._result("cudaGetDeviceCount", self.devices)

    def cudaGetDevice(self):
        return self._result("cudaGetDevice", self.current)

    def cudaSetDevice(self, index):
        self.current = index
        return self._result("cudaSetDevice")

    def cudaGetDeviceProperties(self, index):
        properties = SimpleNamespace(name=b"Fake Orin\0\0\0", major=8, minor=7)
        return self._result("cudaGetDeviceProperties", properties)

    def cudaStreamCreate(self):
        self._next += 0x10
        self.streams.add(self._next)
        return self._result("cudaStreamCreate", self._next)

    def cudaStreamSynchronize(self, stream):
        assert stream in self.streams
        return self._result("cudaStreamSynchronize")

    def cudaStreamDestroy(self, stream):
        self.streams.remove(stream)
        return self._result("cudaStreamDestroy")

    def cudaMalloc(self, nbytes):
        self._next += 0x1000
        if "cudaMalloc" not in self.fail:
            self.memory[self._next] = bytearray(nbytes)
        return self._result("cudaMalloc", self._next)

    def cudaFree(self, address):
        del self.memory[address]
        return self._result("cudaFree")

    def cudaMallocHost(self, nbytes):
        buffer = ctypes.create_string_buffer(nbytes)
        self.pinned[ctypes.addressof(buffer)] = buffer
        return self._result("cudaMallocHost", ctypes.addressof(buffer))

    def cudaFreeHost(self, address):
        del self.pinned[address]
        return self._result("cudaFreeHost")

    def cudaMemcpyAsync(self, destination, source, nbytes, kind, stream):
        assert stream in self.streams
        if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice:
            assert source in self.pinned  # asynchronous copies from pinned memory only
            self.memory[destination][:nbytes] = ctypes.string_at(source, nbytes)
        else:
            assert destination in self.pinned
            ctypes.memmove(destination, bytes(self.memory[source][:nbytes]), nbytes)
        return self._result("cudaMemcpyAsync")

    def read(self, address: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        """The array at a device address (its buffer must have exactly that size)."""
        if address not in self.memory and self.foreign:
            nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            return np.frombuffer(ctypes.string_at(address, nbytes), dtype).reshape(shape)
        return np.frombuffer(bytes(self.memory[address]), dtype).reshape(shape)

    def write(self, address: int, data: bytes) -> None:
        """Overwrite the buffer at a device address (of exactly that size)."""
        if address not in self.memory and self.foreign:
            ctypes.memmove(address, data, len(data))
            return
        assert len(self.memory[address]) == len(data)
        self.memory[address][:] = data


class OnnxEngine:
    """An "engine": an onnxruntime session over the graph, with TensorRT's named-tensor API."""

    def __init__(self, graph: bytes, cudart: FakeCudart) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        self.cudart = cudart
        args = [(a, True) for a in self.session.get_inputs()]
        args += [(a, False) for a in self.session.get_outputs()]
        self.tensors = {a.name: (tuple(a.shape), ORT_DTYPES[a.type], is_in) for a, is_in in args}

    @property
    def num_io_tensors(self) -> int:
        return len(self.tensors)

    def get_tensor_name(self, index: int) -> str:
        return list(self.tensors)[index]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name][0]

    def get_tensor_dtype(self, name: str) -> str:
        return self.tensors[name][1]

    def get_tensor_mode(self, name: str) -> str:
        return "input" if self.tensors[name][2] else "output"

    def create_execution_context(self) -> OnnxContext:
        return OnnxContext(self)


class OnnxContext:
    """Runs the session on the device buffers bound by ``set_tensor_address``."""

    def __init__(self, engine: OnnxEngine) -> None:
        self.engine = engine
        self.addresses: dict[str, int] = {}
        self.streams: list[int] = []  # the stream of each execution

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = address
        return name in self.engine.tensors

    def execute_async_v3(self, stream: int) -> bool:
        engine, memory = self.engine, self.engine.cudart
        assert stream in memory.streams
        self.streams.append(stream)
        feeds = {
            name: memory.read(self.addresses[name], dtype, shape)
            for name, (shape, dtype, is_input) in engine.tensors.items()
            if is_input
        }
        outputs = [o.name for o in engine.session.get_outputs()]
        for name, value in zip(outputs, engine.session.run(outputs, feeds), strict=True):
            memory.write(self.addresses[name], np.ascontiguousarray(value).tobytes())
        return True


def onnx_tensorrt(cudart: FakeCudart, version: str = "8.6.1") -> types.ModuleType:
    """A ``tensorrt`` module (TensorRT 8.6 names unless ``version`` is 10 or later) whose
    engines run on ``cudart``; it records ``builds`` (graph paths) and ``calibrated``
    (batches read by its INT8 calibrators)."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.builds, trt.calibrated = [], 0

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            self.severity = severity

    class Network:
        num_layers = 0  # no layer reports a dtype: the build says what its flags chose
        graph: Path | None = None

    class Config:
        int8_calibrator: Any = None
        default_device_type = DLA_core = None

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            pass

        def set_flag(self, flag: str) -> None:
            pass

        def clear_flag(self, flag: str) -> None:
            pass

        def create_timing_cache(self, data: bytes) -> SimpleNamespace:
            return SimpleNamespace(serialize=lambda: b"timings")

        def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> None:
            self.cache = cache

        def get_timing_cache(self) -> Any:
            return self.cache

    class Builder:
        def __init__(self, logger: Logger) -> None:
            pass

        def create_network(self, flags: int) -> Network:
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            trt.builds.append(network.graph)
            graph = network.graph.read_bytes()
            if config.int8_calibrator is not None:
                _calibrate(config.int8_calibrator, OnnxEngine(graph, cudart))
            return MAGIC + graph

    def _calibrate(calibrator: Any, engine: OnnxEngine) -> None:
        """What TensorRT does with a calibrator: its cache, else every batch, then a cache."""
        if calibrator.read_calibration_cache() is not None:
            return
        inputs = {n: t for n, t in engine.tensors.items() if t[2]}
        while (addresses := calibrator.get_batch(list(inputs))) is not None:
            for address, (shape, dtype, _) in zip(addresses, inputs.values(), strict=True):
                cudart.read(address, dtype, shape)  # the batch is on the device, sized right
            trt.calibrated += 1
        calibrator.write_calibration_cache(b"scales")

    class OnnxParser:
        num_errors = 0

        def __init__(self, network: Network, logger: Logger) -> None:
            self.network = network

        def parse_from_file(self, path: str) -> bool:
            self.network.graph = Path(path)
            return True

    class Runtime:
        DLA_core = -1

        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> OnnxEngine | None:
            return OnnxEngine(data[len(MAGIC) :], cudart) if data.startswith(MAGIC) else None

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    trt.IExecutionContext, trt.ICudaEngine = OnnxContext, OnnxEngine
    trt.NetworkDefinitionCreationFlag = SimpleNamespace(EXPLICIT_BATCH=0)
    if int(version.split(".")[0]) >= 10:
        trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED = 1
    names = ("FP16", "TF32", "INT8", "GPU_FALLBACK")
    trt.BuilderFlag = SimpleNamespace(**{n: n for n in names})
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")
    trt.DeviceType = SimpleNamespace(GPU="gpu", DLA="dla")
    trt.DataType = SimpleNamespace(HALF="half", FLOAT="float")
    trt.TensorIOMode = SimpleNamespace(INPUT="input", OUTPUT="output")
    trt.nptype = np.dtype
    return trt


def fake_modules(version: str = "8.6.1") -> dict[str, Any]:
    """``sys.modules`` entries that make ``import tensorrt`` and cuda-python's
    ``cuda.bindings.runtime`` find the fakes, on one fake GPU."""
    cudart = FakeCudart()
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, cudart
    return {
        "cuda": cuda,
        "cuda.bindings": bindings,
        "cuda.bindings.runtime": cudart,
        "tensorrt": onnx_tensorrt(cudart, version),
    }
