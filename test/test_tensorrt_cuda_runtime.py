"""The TensorRT backend's CUDA runtime adaptor (cuda-python, no torch), on a fake runtime
module whose device memory is host bytearrays (``fake_tensorrt.FakeCudart``), and the engine
runner on it. With a GPU and cuda-python installed, the real module does one round trip."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_tensorrt import FakeCudart

from synboost_ros.backends.tensorrt.api import TensorInfo
from synboost_ros.backends.tensorrt.backend import DeviceUploads, EngineRunner
from synboost_ros.backends.tensorrt.cache import DeviceInfo
from synboost_ros.backends.tensorrt.cuda_runtime import CudaRuntime, load_runtime

ROOT = Path(__file__).resolve().parent.parent


def test_round_trip_through_device_memory_and_release():
    fake = FakeCudart()
    runtime = CudaRuntime(fake)
    stream = runtime.create_stream()
    host = runtime.host_array((2, 3), np.float32)
    host[:] = np.arange(6, dtype=np.float32).reshape(2, 3)
    address = runtime.device_buffer(host.nbytes)
    runtime.copy_to_device(address, host, stream)
    host[:] = 0.0
    runtime.copy_to_host(host, address, stream)
    runtime.synchronize(stream)
    np.testing.assert_array_equal(host, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert runtime.device_info(0) == DeviceInfo("Fake Orin", (8, 7))
    assert runtime.stream_handle(stream) == stream and runtime.device_count() == 1
    runtime.release()
    assert not fake.memory and not fake.pinned and not fake.streams


def test_a_failed_call_names_the_call_and_cudas_message():
    runtime = CudaRuntime(FakeCudart(fail={"cudaMalloc": 2}))
    with pytest.raises(RuntimeError, match="CUDA cudaMalloc failed: out of memory"):
        runtime.device_buffer(16)
    assert CudaRuntime(FakeCudart(fail={"cudaGetDeviceCount": 100})).device_count() == 0


def test_without_cuda_python_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda", None)
    with pytest.raises(ImportError, match=r"pip install 'synboost_ros\[tensorrt\]'"):
        load_runtime()


class DoublingContext:
    """A TensorRT execution context whose engine writes 2 * image into 'doubled'."""

    def __init__(self, fake: FakeCudart) -> None:
        self.fake = fake
        self.addresses: dict[str, int] = {}
        self.streams: list[int] = []

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        return True

    def execute_async_v3(self, stream):
        assert isinstance(stream, int)
        self.streams.append(stream)
        memory = self.fake.memory
        image = np.frombuffer(bytes(memory[self.addresses["image"]]), np.float32)
        memory[self.addresses["doubled"]][:] = (image * 2).astype(np.float32).tobytes()
        return True


def test_engine_runner_binds_buffers_once_and_runs_on_its_stream():
    fake = FakeCudart()
    runtime = CudaRuntime(fake)
    stream = runtime.create_stream()
    context = DoublingContext(fake)
    io = (
        TensorInfo("image", (1, 2, 3), "float32", True),
        TensorInfo("doubled", (1, 2, 3), "float32", False),
    )
    cached = SimpleNamespace(
        precision="fp16", io=io, engine=SimpleNamespace(create_execution_context=lambda: context)
    )
    runner = EngineRunner(cached, runtime, stream)
    assert set(context.addresses) == {"image", "doubled"}
    for value in (1.0, 3.0):
        image = np.full((1, 2, 3), value, np.float32)
        out = runner.run({"image": image})
        np.testing.assert_array_equal(out["doubled"], image * 2)
    assert context.streams == [stream, stream]
    with pytest.raises(ValueError, match=r"input 'image' must have shape \(1, 2, 3\)"):
        runner.run({"image": np.zeros((2, 3), np.float32)})
    bad = SimpleNamespace(precision="fp16", io=(TensorInfo("x", (1,), "float64", True),))
    bad.engine = SimpleNamespace(create_execution_context=lambda: context)
    with pytest.raises(ValueError, match="tensor 'x' has dtype float64, not supported"):
        EngineRunner(bad, runtime, stream)


def test_calibration_uploads_reuse_one_buffer_per_name_until_released():
    fake = FakeCudart()
    uploads = DeviceUploads(CudaRuntime(fake))
    first = uploads("image", np.ones((1, 3, 4, 4), np.float32))
    again = uploads("image", np.full((1, 3, 4, 4), 2.0, np.float32))
    assert first == again
    assert np.frombuffer(bytes(fake.memory[first]), np.float32).tolist() == [2.0] * 48
    other = uploads("semantic", np.zeros((1, 4, 4), np.int32))
    assert other != first and len(fake.memory) == 2
    uploads.release()
    assert not fake.memory and not fake.pinned and not fake.streams


def test_the_adaptor_imports_no_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import synboost_ros.backends.tensorrt.cuda_runtime\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch' and sys.modules[m]]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _cuda_python_and_gpu() -> bool:
    if importlib.util.find_spec("cuda") is None:
        return False
    try:
        return CudaRuntime().device_count() > 0
    except ImportError:
        return False


@pytest.mark.skipif(not _cuda_python_and_gpu(), reason="needs cuda-python and a CUDA GPU")
def test_real_cuda_python_round_trip():
    runtime = CudaRuntime()
    try:
        stream = runtime.create_stream()
        host = runtime.host_array((1024,), np.int32)
        host[:] = np.arange(1024, dtype=np.int32)
        address = runtime.device_buffer(host.nbytes)
        runtime.copy_to_device(address, host, stream)
        back = runtime.host_array((1024,), np.int32)
        runtime.copy_to_host(back, address, stream)
        runtime.synchronize(stream)
        np.testing.assert_array_equal(back, np.arange(1024, dtype=np.int32))
        info = runtime.device_info(runtime.current_device())
        assert info.name and info.compute_capability[0] >= 5
    finally:
        runtime.release()
