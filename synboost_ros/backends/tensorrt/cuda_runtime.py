"""The CUDA runtime calls of the TensorRT backend, through cuda-python, without torch.

cuda-python (``pip install 'synboost_ros[tensorrt]'``; NVIDIA's ``cuda-python`` /
``cuda-bindings`` on PyPI, also for Jetsons) is imported when a ``CudaRuntime`` is made:
``cuda.bindings.runtime`` (cuda-python 12.6 and later), else the older ``cuda.cudart``. Each
of its calls returns a tuple whose first item is the error code; ``CudaRuntime`` turns a
failure into one ``RuntimeError`` naming the call and CUDA's message, and owns what it
allocates: device buffers (``cudaMalloc``), pinned host arrays (``cudaMallocHost``, seen as
numpy arrays) and streams, freed by ``release``.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from synboost_ros.backends.tensorrt.cache import DeviceInfo

INSTALL_HINT = (
    "the TensorRT backend needs cuda-python for its device buffers and streams: "
    "pip install 'synboost_ros[tensorrt]' (cuda-python of the CUDA major version of the "
    "driver or JetPack)"
)


def load_runtime() -> Any:
    """cuda-python's runtime module; ImportError with the install line without it."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError as error:
            raise ImportError(INSTALL_HINT) from error
    return runtime


class CudaRuntime:
    """The few runtime calls the engines need, on one device."""

    def __init__(self, module: Any = None) -> None:
        self._rt = module if module is not None else load_runtime()
        self._device_buffers: list[int] = []
        self._host_buffers: list[int] = []
        self._streams: list[Any] = []

    def _call(self, name: str, *args: Any) -> Any:
        """``cuda<name>(*args)``: its value (None, one item, or a tuple), or RuntimeError."""
        result = getattr(self._rt, name)(*args)
        error, values = result[0], result[1:]
        if error != self._rt.cudaError_t.cudaSuccess:
            message = self._rt.cudaGetErrorString(error)[1]
            text = message.decode() if isinstance(message, bytes) else str(message)
            raise RuntimeError(f"CUDA {name} failed: {text}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def device_count(self) -> int:
        """How many CUDA devices the runtime sees (0 when none or no driver)."""
        try:
            return int(self._call("cudaGetDeviceCount"))
        except RuntimeError:
            return 0

    def current_device(self) -> int:
        """The runtime's current device."""
        return int(self._call("cudaGetDevice"))

    def set_device(self, index: int) -> None:
        """Make device ``index`` current for this thread."""
        self._call("cudaSetDevice", index)

    def device_info(self, index: int) -> DeviceInfo:
        """Name and compute capability of device ``index``."""
        properties = self._call("cudaGetDeviceProperties", index)
        name = properties.name
        name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
        return DeviceInfo(name, (int(properties.major), int(properties.minor)))

    def create_stream(self) -> Any:
        """A new stream, destroyed by ``release``."""
        stream = self._call("cudaStreamCreate")
        self._streams.append(stream)
        return stream

    @staticmethod
    def stream_handle(stream: Any) -> int:
        """The stream as the integer handle TensorRT's ``execute_async_v3`` takes."""
        return int(stream)

    def device_buffer(self, nbytes: int) -> int:
        """``nbytes`` of device memory; its address."""
        address = int(self._call("cudaMalloc", nbytes))
        self._device_buffers.append(address)
        return address

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A pinned host array (page-locked: asynchronous copies)."""
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, 1)
        address = int(self._call("cudaMallocHost", nbytes))
        self._host_buffers.append(address)
        memory = (ctypes.c_uint8 * nbytes).from_address(address)
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(memory, dtype=dtype, count=count).reshape(shape)

    def copy_to_device(self, address: int, array: np.ndarray, stream: Any) -> None:
        """Enqueue a copy of the (pinned, contiguous) ``array`` to device ``address``."""
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", address, array.ctypes.data, array.nbytes, kind, stream)

    def copy_to_host(self, array: np.ndarray, address: int, stream: Any) -> None:
        """Enqueue a copy of device ``address`` into the (pinned, contiguous) ``array``."""
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", array.ctypes.data, address, array.nbytes, kind, stream)

    def synchronize(self, stream: Any) -> None:
        """Wait until everything enqueued on ``stream`` is done."""
        self._call("cudaStreamSynchronize", stream)

    def release(self) -> None:
        """Free every buffer and stream made here (their arrays must not be used after)."""
        for address in self._device_buffers:
            self._call("cudaFree", address)
        for address in self._host_buffers:
            self._call("cudaFreeHost", address)
        for stream in self._streams:
            self._call("cudaStreamDestroy", stream)
        self._device_buffers, self._host_buffers, self._streams = [], [], []
