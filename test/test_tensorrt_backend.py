"""TensorRT backend: availability errors, auto fallback, the engine cache, and (with a GPU and
TensorRT) real engines against onnxruntime.

The cache tests drive ``load_or_build_engine`` through a minimal fake ``TensorRTApi`` whose
"engines" are tagged bytes, so key handling, rebuilds, atomic writes and fallbacks run here.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fake_tensorrt import fake_modules

from synboost_ros import files
from synboost_ros.backends import factory
from synboost_ros.backends.base import BackendUnavailableError
from synboost_ros.backends.tensorrt.api import (
    EngineLoadError,
    TensorInfo,
    TensorRTModule,
    fp16_builder_flag_usable,
    tensorrt_installed,
    version_tuple,
)
from synboost_ros.backends.tensorrt.build import BuildSettings, EngineBuildError, parser_errors
from synboost_ros.backends.tensorrt.cache import (
    DeviceInfo,
    EngineKey,
    engine_cache_key,
    load_or_build_engine,
)
from synboost_ros.backends.tensorrt.calibration import (
    CalibrationSet,
    calibration_batches,
    entropy_calibrator,
)
from synboost_ros.config import STAGE_NAMES, PipelineConfig
from synboost_ros.model_source import ModelSource

H100 = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0))
IO = (
    TensorInfo("image", (1, 3, 8, 16), "float32", True),
    TensorInfo("semantic", (1, 8, 16), "int32", False),
)
MAGIC = b"FAKE-ENGINE:"


class FakeCalibratorBase:
    """Stands in for ``tensorrt.IInt8EntropyCalibrator2`` (a pybind11 base class)."""

    def __init__(self):
        pass


FAKE_CALIBRATOR_MODULE = types.SimpleNamespace(IInt8EntropyCalibrator2=FakeCalibratorBase)
GRAPH = "1f" * 32  # the fingerprint of the graph in ``onnx_file``


class FakeTensorRT:
    """Minimal ``TensorRTApi``: an engine is MAGIC + the ONNX bytes; records each build."""

    version = "10.3.0"

    def __init__(self, io=IO, precision_used="fp16"):
        self.io = tuple(io)
        self.precision_used = precision_used
        self.builds: list[Path | None] = []
        self.dla_cores: list[int] = []

    def build(self, onnx_path, settings, timing_cache_path, calibrator=None):
        self.builds.append(timing_cache_path)
        if calibrator is not None:  # what TensorRT does with a calibrator
            cache = calibrator.read_calibration_cache()
            if cache is None:
                while calibrator.get_batch(["image"]) is not None:
                    pass
                calibrator.write_calibration_cache(b"scales")
        return MAGIC + Path(onnx_path).read_bytes(), self.precision_used

    def deserialize(self, data, dla_core=-1):
        if not data.startswith(MAGIC):
            raise EngineLoadError("not an engine")
        self.dla_cores.append(dla_core)
        return data

    def calibrator(self, batches, upload, cache_path):
        return entropy_calibrator(FAKE_CALIBRATOR_MODULE, batches, upload, cache_path)

    def io_tensors(self, engine):
        return self.io


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "segmentation.onnx"
    path.write_bytes(b"graph-bytes")
    return path


def _load(api, onnx_file, cache_dir, expected_io=IO, graph=GRAPH, stage="segmentation"):
    return load_or_build_engine(
        stage, onnx_file, graph, cache_dir, BuildSettings("fp16"), H100, expected_io, api=api
    )


# --- availability and fallback -------------------------------------------------------------


def test_explicit_tensorrt_without_tensorrt_is_a_clear_error(monkeypatch, edge_random_model):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(
        BackendUnavailableError,
        match=r"backend tensorrt: TensorRT is not installed: pip install tensorrt",
    ) as caught:
        factory.create_backend(edge_random_model, "tensorrt", "auto", "fp16")
    assert isinstance(caught.value.__cause__, ImportError)


def test_auto_on_cpu_runs_onnxruntime_fp32_and_says_so(caplog, edge_random_model):
    with caplog.at_level(logging.INFO):
        backend = factory.create_backend(edge_random_model, "auto", "cpu", "fp16")
    assert backend.name == "onnxruntime"
    assert backend.precision == "fp32"
    assert "running fp32 on the CPU" in caplog.text


def test_auto_falls_back_past_missing_tensorrt(monkeypatch, caplog, edge_random_model):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(factory, "available_backends", lambda device: ["tensorrt", "onnxruntime"])
    with caplog.at_level(logging.WARNING):
        backend = factory.create_backend(edge_random_model, "auto", "cpu", "fp32")
    assert backend.name == "onnxruntime"
    assert "backend tensorrt unavailable (TensorRT is not installed" in caplog.text


def test_int8_on_another_backend_runs_fp16_and_says_so(monkeypatch, caplog, edge_random_model):
    from synboost_ros.backends import onnxruntime_backend

    made = []
    monkeypatch.setattr(factory, "resolve_device", lambda device: device)
    monkeypatch.setattr(
        onnxruntime_backend, "OnnxRuntimeBackend", lambda graphs, device: made.append(device)
    )
    with caplog.at_level(logging.WARNING):
        factory.create_backend(edge_random_model, "onnxruntime", "cuda", "int8")
    assert made == ["cuda"]
    assert "int8 needs the TensorRT backend; onnxruntime runs fp16" in caplog.text


def _fake_tensorrt_module(version, named_tensors=True):
    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    context = types.SimpleNamespace(execute_v2=None)
    engine = types.SimpleNamespace(get_binding_index=None)
    if named_tensors:  # TensorRT >= 8.5
        context.set_tensor_address = context.execute_async_v3 = None
        engine.num_io_tensors = engine.get_tensor_name = None
    return types.SimpleNamespace(
        __version__=version, Logger=Logger, IExecutionContext=context, ICudaEngine=engine
    )


def test_tensorrt_is_detected_by_its_features_not_its_version(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt_module("8.4.3", False))
    with pytest.raises(ImportError, match=r"8\.4\.3 lacks the named-tensor API .*>= 8\.5"):
        TensorRTModule.load()
    for version in ("8.6.1", "10.3.0", "10.13.0"):  # JetPack 6.0, JetPack 6.1/6.2, desktop
        monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt_module(version))
        assert TensorRTModule.load().version == version


def test_type_stubs_alone_are_not_tensorrt(monkeypatch, tmp_path):
    (tmp_path / "tensorrt").mkdir()  # what tensorrt-stubs installs: tensorrt/__init__.pyi
    (tmp_path / "tensorrt" / "__init__.pyi").write_text("class Builder: ...\n")
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    if importlib.util.find_spec("tensorrt").origin not in (None, "namespace"):
        pytest.skip("a real TensorRT is installed")
    assert not tensorrt_installed()
    assert "tensorrt" not in factory.available_backends("cuda")
    with pytest.raises(ImportError, match=r"TensorRT is not installed.*only type stubs found"):
        TensorRTModule.load()


def _shipped() -> tuple[dict[str, Path], PipelineConfig]:
    """The graphs shipped with the edge weights, and their configuration."""
    source = ModelSource.open("edge")
    return source.onnx_graphs("tensorrt"), source.config


def test_backend_rejects_non_cuda_devices_and_a_machine_without_them(monkeypatch):
    from synboost_ros.backends.tensorrt import backend as backend_module
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt_module("10.3.0"))
    with pytest.raises(ValueError, match="runs on device 'cuda' or 'cuda:N' only, got 'cpu'"):
        TensorRTBackend(*_shipped(), "cpu")

    class NoDevices:
        def device_count(self):
            return 0

    monkeypatch.setattr(backend_module, "CudaRuntime", NoDevices)
    with pytest.raises(ValueError, match="'cuda' requested but CUDA sees no device"):
        TensorRTBackend(*_shipped(), "cuda")


def test_backend_without_cuda_python_says_what_to_install(monkeypatch):
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt_module("10.3.0"))
    monkeypatch.setitem(sys.modules, "cuda", None)  # import cuda... fails: not installed
    with pytest.raises(ImportError, match=r"cuda-python .*pip install 'synboost_ros\[tensorrt\]'"):
        TensorRTBackend(*_shipped(), "cuda")


def test_engines_are_built_from_the_given_graphs_and_keyed_by_their_sha256(
    monkeypatch, tmp_path, edge_random_model
):
    from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend
    from synboost_ros.export import cached_onnx
    from synboost_ros.stage_io import stage_specs

    for name, module in fake_modules("10.3.0").items():
        monkeypatch.setitem(sys.modules, name, module)
    trt = sys.modules["tensorrt"]
    graphs, config = cached_onnx(edge_random_model), edge_random_model.config  # exported here
    backend = TensorRTBackend(graphs, config, "cuda", "fp16", cache_dir=tmp_path)
    assert trt.builds == [graphs[stage] for stage in STAGE_NAMES]
    recorded = json.loads((graphs["synthesis"].parent / "sha256.json").read_text())
    for stage, (path, _) in backend.stage_engines.items():
        key = json.loads(Path(path).with_suffix(".json").read_text())["key"]
        assert key["graph_fingerprint"] == recorded[f"{stage}.onnx"], stage
        assert (key["trt_version"], key["gpu_name"]) == ("10.3.0", "Fake Orin")
    reference = OnnxRuntimeBackend(graphs, "cpu")
    rng = np.random.default_rng(0)
    for stage, spec in stage_specs(config).items():
        inputs = _stage_inputs(spec, config, rng)
        got, want = backend.run(stage, inputs), reference.run(stage, inputs)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=stage)
    TensorRTBackend(graphs, config, "cuda", "fp16", cache_dir=tmp_path)
    assert len(trt.builds) == 3  # the second start loads the cached engines


def _device_resident_fakes(monkeypatch, tmp_path, model):
    """A TensorRT backend on the fakes, device-resident as with torch on CUDA, whose
    ``run_tensors`` takes CPU torch tensors as CUDA ones: the fake engines read and write
    them at their addresses, enqueued on a fake stream standing in for torch's current one.
    Also its cuda-python stand-in and the cudaMemcpyAsync calls it gets."""
    from synboost_ros.backends.tensorrt import backend as backend_module
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend
    from synboost_ros.export import cached_onnx

    modules = fake_modules("10.3.0")
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    cudart = modules["cuda.bindings.runtime"]
    monkeypatch.setattr(backend_module, "torch_with_cuda", lambda: True)
    backend = TensorRTBackend(cached_onnx(model), model.config, "cuda", cache_dir=tmp_path)
    cudart.foreign = True
    stream = cudart.cudaStreamCreate()[1]
    monkeypatch.setattr(backend_module, "on_device", lambda tensor: True)
    monkeypatch.setattr(backend_module, "current_stream", lambda torch, device: stream)
    copies = []
    copy = cudart.cudaMemcpyAsync
    monkeypatch.setattr(cudart, "cudaMemcpyAsync", lambda *args: copies.append(args) or copy(*args))
    return backend, stream, copies


def test_run_tensors_binds_the_tensors_themselves_and_copies_nothing_to_the_host(
    monkeypatch, tmp_path, edge_random_model
):
    from synboost_ros.stage_io import stage_specs

    backend, stream, copies = _device_resident_fakes(monkeypatch, tmp_path, edge_random_model)
    assert backend.device_resident
    config, rng = edge_random_model.config, np.random.default_rng(1)
    for stage, spec in stage_specs(config).items():
        inputs = _stage_inputs(spec, config, rng)
        tensors = [torch.from_numpy(inputs[t.name]) for t in spec.inputs]
        copies.clear()
        outputs = backend.run_tensors(stage, *tensors)
        assert copies == [], stage  # nothing went through the host
        context = backend._runners[stage]._context
        assert context.streams[-1] == stream  # enqueued on torch's current stream
        bound = {t.name: x.data_ptr() for t, x in zip(spec.inputs, tensors, strict=True)}
        bound.update({t.name: x.data_ptr() for t, x in zip(spec.outputs, outputs, strict=True)})
        assert context.addresses == bound, stage
        for t, out in zip(spec.outputs, outputs, strict=True):
            dtype = getattr(torch, np.dtype(t.dtype).name)
            assert (tuple(out.shape), out.dtype) == (t.shape, dtype), f"{stage} {t.name}"
        want = backend.run(stage, inputs)  # binds its own buffers again
        assert context.addresses != bound and copies
        for t, out in zip(spec.outputs, outputs, strict=True):
            np.testing.assert_array_equal(out.numpy(), want[t.name], err_msg=f"{stage} {t.name}")
    # Other dtypes and non-contiguous inputs are converted before they are bound.
    spec = stage_specs(config)["synthesis"]
    semantic = torch.from_numpy(_stage_inputs(spec, config, rng)["semantic"])
    (got,) = backend.run_tensors("synthesis", semantic.long().transpose(1, 2).contiguous().mT)
    (want,) = backend.run_tensors("synthesis", semantic)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match=r"input 'semantic' must have shape"):
        backend.run_tensors("synthesis", semantic[0])


def test_the_pipeline_keeps_frames_on_the_tensorrt_device(monkeypatch, tmp_path, edge_random_model):
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend
    from synboost_ros.pipeline import AnomalyPipeline
    from synboost_ros.self_test import self_test_image

    backend, _, copies = _device_resident_fakes(monkeypatch, tmp_path, edge_random_model)
    monkeypatch.setattr(TensorRTBackend, "torch_device", torch.device("cpu"))
    pipeline = AnomalyPipeline(edge_random_model.config, backend)
    assert pipeline.device_resident
    image = self_test_image()
    device = pipeline(image)
    assert copies == []  # the frame never went through cuda-python's host copies
    pipeline.device_resident = False
    host = pipeline(image)
    assert copies
    np.testing.assert_array_equal(device.semantic, host.semantic)
    for name in ("entropy", "distance", "perceptual", "dissimilarity", "anomaly"):
        np.testing.assert_allclose(getattr(device, name), getattr(host, name), atol=1e-4)


def test_without_torch_on_cuda_the_tensorrt_backend_runs_from_the_host(
    monkeypatch, tmp_path, edge_random_model
):
    from synboost_ros.backends.tensorrt import backend as backend_module
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend
    from synboost_ros.export import cached_onnx
    from synboost_ros.pipeline import AnomalyPipeline

    assert backend_module.torch_with_cuda() == torch.cuda.is_available()
    monkeypatch.setattr(backend_module.importlib.util, "find_spec", lambda name: None)
    assert not backend_module.torch_with_cuda()
    for name, module in fake_modules("10.3.0").items():
        monkeypatch.setitem(sys.modules, name, module)
    model = edge_random_model
    backend = TensorRTBackend(cached_onnx(model), model.config, "cuda", cache_dir=tmp_path)
    assert not backend.device_resident
    assert not AnomalyPipeline(model.config, backend).device_resident


# --- keys and build policy -----------------------------------------------------------------

KEY_ARGS = {
    "graph_fingerprint": "ab" * 32,
    "stage": "synthesis",
    "trt_version": "10.3.0",
    "gpu_name": H100.name,
    "compute_capability": (9, 0),
    "precision": "fp16",
    "input_shapes": {"image": (1, 3, 8, 16), "weights": (4,)},
}


def test_cache_key_is_stable_and_every_component_changes_it():
    base = engine_cache_key(**KEY_ARGS)
    assert base == engine_cache_key(**KEY_ARGS)
    assert len(base) == 64 and int(base, 16) >= 0
    reordered = dict(KEY_ARGS, input_shapes={"weights": [4], "image": [1, 3, 8, 16]})
    assert engine_cache_key(**reordered) == base
    changes = {
        "graph_fingerprint": "cd" * 32,
        "stage": "dissimilarity",
        "trt_version": "10.4.0",
        "gpu_name": "NVIDIA H100 PCIe",
        "compute_capability": (8, 9),
        "precision": "fp32",
        "input_shapes": {"image": (1, 3, 16, 16), "weights": (4,)},
    }
    keys = {
        engine_cache_key(**dict(KEY_ARGS, **{field: value})) for field, value in changes.items()
    }
    assert len(keys) == len(changes) and base not in keys


def test_engine_file_name_is_readable():
    key = EngineKey.create(**KEY_ARGS)
    assert key.file_name() == f"synthesis-fp16-sm90-trt10.3.0-{key.digest()[:16]}.engine"


@pytest.mark.parametrize(
    ("version", "has_flag", "usable"),
    [
        ("10.0.1.6", True, True),
        ("10.11.0", True, True),
        ("10.12.0.36", True, False),
        ("10.13.2", True, False),
        ("11.0.0", False, False),
        ("10.3.0", False, False),
    ],
)
def test_fp16_builder_flag_only_before_its_deprecation(version, has_flag, usable):
    assert fp16_builder_flag_usable(version, has_flag) is usable


def test_version_tuple_rejects_nonsense():
    assert version_tuple("10.12.0.36") == (10, 12)
    with pytest.raises(ValueError, match="cannot read a TensorRT version"):
        version_tuple("dev")


def test_parser_errors_name_the_failing_node():
    class Error:
        def __init__(self, desc, node=""):
            self._desc, self._node = desc, node

        def desc(self):
            return self._desc

        def node_name(self):
            return self._node

        def node_operator(self):
            return "Unique"

    errors = [Error("No importer registered for op: Unique", "u0"), Error("graph invalid")]
    parser = types.SimpleNamespace(num_errors=2, get_error=errors.__getitem__)
    assert parser_errors(parser) == [
        "node u0 (Unique): No importer registered for op: Unique",
        "graph invalid",
    ]


def _fake_builder_module(version, graph_dtype="float", parses=True):
    """A ``tensorrt`` stand-in that records what the build configured (8.6 / 10.x names)."""
    trt = types.SimpleNamespace(__version__=version, calls=[])
    trt.Logger = _fake_tensorrt_module(version).Logger
    trt.BuilderFlag = types.SimpleNamespace(
        FP16="FP16", TF32="TF32", INT8="INT8", GPU_FALLBACK="GPU_FALLBACK"
    )
    trt.DeviceType = types.SimpleNamespace(GPU="gpu", DLA="dla")
    trt.IInt8EntropyCalibrator2 = FakeCalibratorBase
    if version_tuple(version) >= (11, 0):  # TensorRT 11 drops weak typing
        del trt.BuilderFlag.FP16, trt.BuilderFlag.INT8, trt.IInt8EntropyCalibrator2
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)
    if version_tuple(version) >= (10, 0):
        trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED = 1
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.DataType = types.SimpleNamespace(HALF="half", FLOAT="float")
    output = types.SimpleNamespace(dtype=graph_dtype)
    layer = types.SimpleNamespace(num_outputs=1, get_output=lambda index: output)
    network = types.SimpleNamespace(num_layers=1, get_layer=lambda index: layer)

    class Cache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return self.data + b"+timings"

    class Config:
        def __setattr__(self, name, value):
            trt.calls.append(("config", name, value))
            super().__setattr__(name, value)

        def set_memory_pool_limit(self, pool, size):
            trt.calls.append(("pool", pool, size))

        def clear_flag(self, flag):
            trt.calls.append(("clear", flag))

        def set_flag(self, flag):
            trt.calls.append(("set", flag))

        def create_timing_cache(self, data):
            return Cache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            trt.calls.append(("network", flags))
            return network

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            return b"serialized"

    class OnnxParser:
        num_errors = 0 if parses else 1

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return parses

        def get_error(self, index):
            return types.SimpleNamespace(desc=lambda: "unsupported op")

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


def test_build_sets_fp16_flag_before_10_12_and_saves_the_timing_cache(onnx_file, tmp_path):
    trt = _fake_builder_module("10.3.0")
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"old")
    data, used = TensorRTModule(trt).build(onnx_file, BuildSettings("fp16", 1 << 20), timing)
    assert (data, used) == (b"serialized", "fp16")
    assert ("network", 0) in trt.calls and ("set", "FP16") in trt.calls
    assert ("clear", "TF32") in trt.calls and ("pool", "workspace", 1 << 20) in trt.calls
    assert timing.read_bytes() == b"old+timings"


@pytest.mark.parametrize("version", ["10.12.0.36", "11.0.0"])
def test_build_from_10_12_is_strongly_typed_and_says_fp32(onnx_file, caplog, version):
    trt = _fake_builder_module(version)
    with caplog.at_level(logging.WARNING):
        data, used = TensorRTModule(trt).build(onnx_file, BuildSettings("fp16", 1 << 20), None)
    assert data == b"serialized"
    assert used == "fp32" and ("network", 1 << 1) in trt.calls
    assert ("set", "FP16") not in trt.calls
    assert "fp16 asked, engine runs fp32" in caplog.text
    half = _fake_builder_module(version, graph_dtype="half")
    assert TensorRTModule(half).build(onnx_file, BuildSettings("fp16"), None)[1] == "fp16"


def test_tensorrt_8_6_networks_are_explicit_batch_and_never_strongly_typed(onnx_file):
    trt = _fake_builder_module("8.6.1")
    assert TensorRTModule(trt).build(onnx_file, BuildSettings("fp16"), None)[1] == "fp16"
    assert ("network", 1 << 0) in trt.calls and ("set", "FP16") in trt.calls
    fp32 = _fake_builder_module("8.6.1")
    TensorRTModule(fp32).build(onnx_file, BuildSettings("fp32"), None)
    assert ("network", 1 << 0) in fp32.calls  # strongly typed asked, absent before 10
    ten = _fake_builder_module("10.3.0")
    TensorRTModule(ten).build(onnx_file, BuildSettings("fp32"), None)
    assert ("network", 1 << 1) in ten.calls  # EXPLICIT_BATCH implied, STRONGLY_TYPED set


@pytest.mark.parametrize("version", ["8.6.1", "10.3.0", "10.13.0"])
def test_int8_on_a_dla_sets_calibrator_device_and_gpu_fallback(onnx_file, version):
    trt = _fake_builder_module(version)
    calibrator = object()
    settings = BuildSettings("int8", dla_core=1)
    built = TensorRTModule(trt).build(onnx_file, settings, None, calibrator)
    assert built == (b"serialized", "int8")
    strongly_typed = 1 << 1
    ((_, flags),) = [c for c in trt.calls if c[0] == "network"]
    assert not flags & strongly_typed  # implicit INT8 needs a weakly typed network
    assert ("set", "INT8") in trt.calls and ("config", "int8_calibrator", calibrator) in trt.calls
    assert (("set", "FP16") in trt.calls) is (version_tuple(version) < (10, 12))
    assert ("config", "default_device_type", "dla") in trt.calls
    assert ("config", "DLA_core", 1) in trt.calls and ("set", "GPU_FALLBACK") in trt.calls
    gpu = _fake_builder_module(version)
    TensorRTModule(gpu).build(onnx_file, BuildSettings("fp16"), None)
    assert not [c for c in gpu.calls if c[0] == "config" or c == ("set", "GPU_FALLBACK")]


def test_int8_and_dla_refusals(onnx_file):
    with pytest.raises(EngineBuildError, match=r"11\.0\.0 has no INT8 calibration"):
        TensorRTModule(_fake_builder_module("11.0.0")).build(
            onnx_file, BuildSettings("int8"), None, object()
        )
    with pytest.raises(ValueError, match="int8 needs a calibrator"):
        TensorRTModule(_fake_builder_module("10.3.0")).build(onnx_file, BuildSettings("int8"), None)
    with pytest.raises(ValueError, match="a DLA runs fp16 or int8 only"):
        BuildSettings("fp32", dla_core=0)


def test_runtime_deserializes_on_the_dla_core(monkeypatch):
    class Runtime:
        def __init__(self, logger):
            self.DLA_core = -1

        def deserialize_cuda_engine(self, data):
            return ("engine", self.DLA_core)

    trt = _fake_tensorrt_module("8.6.1")
    trt.Runtime = Runtime
    api = TensorRTModule(trt)
    assert api.deserialize(b"x") == ("engine", -1)
    assert api.deserialize(b"x", dla_core=1) == ("engine", 1)


def test_build_of_an_unparsable_graph_names_the_problem(onnx_file):
    trt = _fake_builder_module("10.3.0", parses=False)
    with pytest.raises(EngineBuildError, match=r"could not parse .*unsupported op"):
        TensorRTModule(trt).build(onnx_file, BuildSettings("fp32"), None)


# --- the engine cache ----------------------------------------------------------------------


def test_first_call_builds_then_cache_hits(onnx_file, tmp_path):
    api = FakeTensorRT()
    first = _load(api, onnx_file, tmp_path / "cache")
    second = _load(api, onnx_file, tmp_path / "cache")
    assert len(api.builds) == 1
    assert first.path == second.path and first.path.read_bytes() == MAGIC + b"graph-bytes"
    assert second.precision == "fp16" and second.io == IO
    sidecar = json.loads(first.path.with_suffix(".json").read_text())
    assert sidecar["key"]["trt_version"] == "10.3.0" and sidecar["key"]["gpu_name"] == H100.name
    assert {t["name"]: t["shape"] for t in sidecar["io"]} == {
        "image": [1, 3, 8, 16],
        "semantic": [1, 8, 16],
    }
    assert api.builds[0].parent == tmp_path / "cache"
    assert api.builds[0].name.startswith("timing-fp16-sm90-trt10.3.0-")


def test_another_graph_fingerprint_builds_a_new_engine(onnx_file, tmp_path):
    api = FakeTensorRT()
    old = _load(api, onnx_file, tmp_path)
    onnx_file.write_bytes(b"retrained-graph")
    new = _load(api, onnx_file, tmp_path, graph="2e" * 32)
    assert len(api.builds) == 2 and new.path != old.path
    assert new.path.read_bytes() == MAGIC + b"retrained-graph"
    assert json.loads(new.path.with_suffix(".json").read_text())["key"]["graph_fingerprint"] == (
        "2e" * 32
    )


def test_the_key_trusts_the_fingerprint_and_tells_stages_apart(onnx_file, tmp_path):
    api = FakeTensorRT()
    first = _load(api, onnx_file, tmp_path)
    onnx_file.write_bytes(b"same-graph-exported-again")  # the file is not hashed again
    again = _load(api, onnx_file, tmp_path)
    other_stage = _load(api, onnx_file, tmp_path, stage="synthesis")
    assert len(api.builds) == 2 and again.path == first.path
    assert other_stage.path != first.path and other_stage.path.name.startswith("synthesis-")


def test_sidecar_shape_mismatch_rebuilds(onnx_file, tmp_path, caplog):
    _load(FakeTensorRT(), onnx_file, tmp_path)
    other_output = (IO[0], TensorInfo("semantic", (1, 4, 8), "int32", False))
    api = FakeTensorRT(io=other_output)
    with caplog.at_level(logging.WARNING):
        cached = _load(api, onnx_file, tmp_path, expected_io=other_output)
    assert len(api.builds) == 1
    assert "does not match" in caplog.text
    sidecar = json.loads(cached.path.with_suffix(".json").read_text())
    assert [1, 4, 8] in [t["shape"] for t in sidecar["io"]]


def test_missing_sidecar_rebuilds(onnx_file, tmp_path):
    cached = _load(FakeTensorRT(), onnx_file, tmp_path)
    cached.path.with_suffix(".json").unlink()
    api = FakeTensorRT()
    _load(api, onnx_file, tmp_path)
    assert len(api.builds) == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda path: path.write_bytes(b"garbage"), id="corrupt"),
        # each of these still deserializes: only the recorded sha256 tells them apart
        pytest.param(lambda path: path.write_bytes(path.read_bytes()[:-3]), id="truncated"),
        pytest.param(lambda path: path.write_bytes(MAGIC + b"another-graph"), id="foreign"),
    ],
)
def test_a_damaged_engine_is_rebuilt_with_one_log_line(onnx_file, tmp_path, caplog, damage):
    cached = _load(FakeTensorRT(), onnx_file, tmp_path)
    damage(cached.path)
    api = FakeTensorRT()
    with caplog.at_level(logging.WARNING):
        again = _load(api, onnx_file, tmp_path)
    assert len(api.builds) == 1
    (line,) = [r.getMessage() for r in caplog.records if "cached engine" in r.getMessage()]
    assert "(corrupt, truncated or replaced); rebuilding" in line and "\n" not in line
    assert again.engine == again.path.read_bytes() == MAGIC + b"graph-bytes"


@pytest.mark.parametrize("linked", ["engine", "sidecar"])
def test_a_symlink_in_the_engine_cache_is_not_followed(onnx_file, tmp_path, caplog, linked):
    cache = tmp_path / "cache"
    cached = _load(FakeTensorRT(), onnx_file, cache)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = cached.path if linked == "engine" else cached.path.with_suffix(".json")
    (elsewhere / path.name).write_bytes(path.read_bytes())  # the same, valid bytes
    path.unlink()
    path.symlink_to(elsewhere / path.name)
    api = FakeTensorRT()
    with caplog.at_level(logging.WARNING):
        again = _load(api, onnx_file, cache)
    assert len(api.builds) == 1 and "symbolic link (not followed)" in caplog.text
    assert not again.path.is_symlink() and not again.path.with_suffix(".json").is_symlink()
    assert (elsewhere / path.name).is_file()  # only the link went


def test_an_engine_of_an_older_sidecar_format_is_rebuilt(onnx_file, tmp_path, caplog):
    cached = _load(FakeTensorRT(), onnx_file, tmp_path)
    sidecar_path = cached.path.with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    del sidecar["sha256"]
    sidecar["format"] = 2
    sidecar_path.write_text(json.dumps(sidecar))
    api = FakeTensorRT()
    with caplog.at_level(logging.WARNING):
        _load(api, onnx_file, tmp_path)
    assert len(api.builds) == 1 and "does not match" in caplog.text


def test_engine_that_never_loads_raises_instead_of_looping(onnx_file, tmp_path):
    api = FakeTensorRT()
    api.build = lambda *args: (b"garbage", "fp16")
    with pytest.raises(EngineLoadError):
        _load(api, onnx_file, tmp_path)
    assert not list(tmp_path.glob("*.engine"))


def test_built_engine_with_wrong_io_is_an_error_and_not_cached(onnx_file, tmp_path):
    wrong = (IO[0], TensorInfo("semantic", (1, 8, 16), "float32", False))
    with pytest.raises(EngineBuildError, match="expects"):
        _load(FakeTensorRT(io=wrong), onnx_file, tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_failed_write_leaves_no_partial_file(onnx_file, tmp_path, monkeypatch, caplog):
    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING):
        cached = _load(FakeTensorRT(), onnx_file, cache)
    assert cached.path is None and cached.engine == MAGIC + b"graph-bytes"
    assert "cannot save TensorRT engine" in caplog.text
    assert not list(cache.iterdir())


def test_unwritable_cache_dir_falls_back_to_a_private_temp_dir(
    onnx_file, tmp_path, monkeypatch, caplog
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    api = FakeTensorRT()
    with caplog.at_level(logging.WARNING):
        cached = _load(api, onnx_file, blocker / "cache")
        again = _load(api, onnx_file, blocker / "cache")
    assert "is not writable" in caplog.text
    assert cached.path.is_file() and (tmp_path / "tmp") in cached.path.parents
    assert again.path == cached.path and len(api.builds) == 1


def test_missing_onnx_and_unknown_precision_are_clear_errors(onnx_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX graph for stage 'segmentation' not found"):
        _load(FakeTensorRT(), tmp_path / "absent.onnx", tmp_path)
    with pytest.raises(ValueError, match="precision must be one of"):
        BuildSettings("int4")
    with pytest.raises(ValueError, match="int8 needs calibration images"):
        load_or_build_engine(
            "synthesis", onnx_file, GRAPH, tmp_path, BuildSettings("int8"), H100, IO, FakeTensorRT()
        )


# --- INT8 calibration ----------------------------------------------------------------------

CAL_INPUTS = (
    TensorInfo("image", (1, 3, 4, 8), "float32", True),
    TensorInfo("semantic", (1, 4, 8), "int32", True),
)


def _frame(value):
    return {
        "image": np.full((1, 3, 4, 8), value, dtype=np.float64),
        "semantic": np.full((1, 4, 8), value, dtype=np.int64),
    }


def test_calibration_batches_take_the_engine_shapes_and_dtypes():
    batches = list(calibration_batches([_frame(1), _frame(2)], CAL_INPUTS))
    assert [b["image"][0, 0, 0, 0] for b in batches] == [1.0, 2.0]
    for batch in batches:
        assert batch["image"].dtype == np.float32 and batch["semantic"].dtype == np.int32
        assert batch["image"].flags.c_contiguous and batch["semantic"].shape == (1, 4, 8)
    wrong = dict(_frame(3), image=np.zeros((1, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"frame 1: input 'image' has shape \(1, 3, 8, 8\)"):
        list(calibration_batches([_frame(1), wrong], CAL_INPUTS))
    with pytest.raises(ValueError, match="frame 0 has no input 'semantic'"):
        list(calibration_batches([{"image": _frame(1)["image"]}], CAL_INPUTS))


def test_entropy_calibrator_uploads_each_batch_then_keeps_the_cache(tmp_path):
    uploaded = []

    def upload(name, array):
        uploaded.append((name, array.copy()))
        return 1000 + len(uploaded)

    cache = tmp_path / "stage.calibration"
    batches = calibration_batches([_frame(1), _frame(2)], CAL_INPUTS)
    calibrator = entropy_calibrator(FAKE_CALIBRATOR_MODULE, batches, upload, cache)
    assert isinstance(calibrator, FakeCalibratorBase) and calibrator.get_batch_size() == 1
    assert calibrator.read_calibration_cache() is None
    assert calibrator.get_batch(["semantic", "image"]) == [1001, 1002]
    assert calibrator.get_batch(["image", "semantic"]) == [1003, 1004]
    assert calibrator.get_batch(["image", "semantic"]) is None
    assert [name for name, _ in uploaded] == ["semantic", "image", "image", "semantic"]
    assert uploaded[2][1][0, 0, 0, 0] == 2.0
    calibrator.write_calibration_cache(memoryview(b"scales"))
    assert cache.read_bytes() == b"scales"
    again = entropy_calibrator(FAKE_CALIBRATOR_MODULE, iter(()), upload, cache)
    assert again.read_calibration_cache() == b"scales"


def _calibration_set(digest, asked):
    def stage_inputs(stage):
        asked.append(stage)
        return [{"image": np.zeros((1, 3, 8, 16), np.float32)}] * 3

    return CalibrationSet(digest, stage_inputs)


def _load_int8(api, onnx_file, cache_dir, calibration, dla_core=-1):
    return load_or_build_engine(
        "segmentation",
        onnx_file,
        GRAPH,
        cache_dir,
        BuildSettings("int8", dla_core=dla_core),
        H100,
        IO,
        api=api,
        calibration=calibration,
        upload=lambda name, array: 1,
    )


def test_int8_engines_and_their_calibration_cache_are_keyed_by_the_image_set(
    onnx_file, tmp_path, caplog
):
    api, asked = FakeTensorRT(precision_used="int8"), []
    with caplog.at_level(logging.WARNING):
        first = _load_int8(api, onnx_file, tmp_path, _calibration_set("a" * 64, asked))
    assert "building TensorRT engines, this takes minutes: stage segmentation" in caplog.text
    assert asked == ["segmentation"] and first.precision == "int8"
    calibration_cache = first.path.with_suffix(".calibration")
    assert calibration_cache.read_bytes() == b"scales"
    sidecar = json.loads(first.path.with_suffix(".json").read_text())
    assert sidecar["key"]["options"] == [["calibration", "a" * 64]]
    _load_int8(api, onnx_file, tmp_path, _calibration_set("a" * 64, asked))
    assert len(api.builds) == 1  # cache hit
    first.path.unlink()  # the engine is rebuilt; TensorRT reads the calibration cache
    _load_int8(api, onnx_file, tmp_path, _calibration_set("a" * 64, asked))
    assert len(api.builds) == 2 and asked == ["segmentation"]
    other = _load_int8(api, onnx_file, tmp_path, _calibration_set("b" * 64, asked))
    assert other.path != first.path and asked == ["segmentation", "segmentation"]
    on_dla = _load_int8(api, onnx_file, tmp_path, _calibration_set("b" * 64, asked), 0)
    assert on_dla.path not in (first.path, other.path) and api.dla_cores[-1] == 0


def test_keys_without_options_keep_their_old_digest():
    key = EngineKey.create(**KEY_ARGS)
    assert "options" not in key.canonical()
    assert key.digest() == EngineKey.create(**KEY_ARGS, options={}).digest()
    assert key.digest() != EngineKey.create(**KEY_ARGS, options={"dla_core": "0"}).digest()


def test_calibration_images_are_the_pipelines_stage_inputs(tmp_path):
    from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from synboost_ros.backends.tensorrt.backend import spec_tensors
    from synboost_ros.calibration import calibration_set, record_stage_inputs
    from synboost_ros.stage_io import stage_specs

    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        image = rng.integers(0, 255, (40 + index, 70, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{index}.png"), image)
    (folder / "notes.txt").write_text("not an image")
    source = ModelSource.open("edge")  # its shipped graphs: no export, no torch
    images = calibration_set(source, folder, limit=2)
    assert images.digest == calibration_set(source, folder, limit=2).digest
    assert images.digest != calibration_set(source, folder, limit=3).digest
    specs = stage_specs(source.config)
    for stage, spec in specs.items():
        frames = images.stage_inputs(stage)
        batches = list(calibration_batches(frames, spec_tensors(spec)[: len(spec.inputs)]))
        assert len(batches) == 2
    backend = OnnxRuntimeBackend(source.onnx_graphs("onnxruntime"), "cpu")
    first = cv2.cvtColor(cv2.imread(str(folder / "0.png")), cv2.COLOR_BGR2RGB)
    recorded = record_stage_inputs(source.config, [first], backend)
    for stage in specs:  # the set's first frame is what the pipeline gave each stage for 0.png
        for name, array in recorded[stage][0].items():
            np.testing.assert_array_equal(images.stage_inputs(stage)[0][name], array)
    synthesis = recorded["synthesis"][0]["semantic"]
    segmentation = backend.run("segmentation", recorded["segmentation"][0])["semantic"]
    assert set(np.unique(synthesis)) <= set(np.unique(segmentation))  # real upstream outputs
    with pytest.raises(ValueError, match=r"holds no \.png"):
        calibration_set(source, tmp_path, limit=2)


# --- real TensorRT -------------------------------------------------------------------------


def _tensorrt_and_gpu() -> bool:
    cuda_python = importlib.util.find_spec("cuda") is not None
    return tensorrt_installed() and cuda_python and torch.cuda.is_available()


def _stage_inputs(spec, config, rng):
    inputs = {}
    for t in spec.inputs:
        if t.name == "ensemble_weights":
            inputs[t.name] = np.asarray(config.ensemble_weights, dtype=np.float32)
        elif t.dtype is np.int32:
            inputs[t.name] = rng.integers(0, config.num_classes, t.shape, dtype=np.int32)
        else:
            inputs[t.name] = rng.random(t.shape, dtype=np.float32)
    return inputs


@pytest.mark.skipif(not _tensorrt_and_gpu(), reason="needs TensorRT, cuda-python and a GPU")
def test_real_edge_engines_match_onnxruntime(edge_random_model, tmp_path, caplog):
    from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend
    from synboost_ros.export import cached_onnx
    from synboost_ros.stage_io import stage_specs

    graphs, config = cached_onnx(edge_random_model), edge_random_model.config
    trt_backend = TensorRTBackend(graphs, config, "cuda", "fp32", cache_dir=tmp_path)
    assert trt_backend.precision == "fp32"
    reference = OnnxRuntimeBackend(graphs, "cpu")
    rng = np.random.default_rng(0)
    for stage, spec in stage_specs(edge_random_model.config).items():
        inputs = _stage_inputs(spec, edge_random_model.config, rng)
        got, want = trt_backend.run(stage, inputs), reference.run(stage, inputs)
        for t in spec.outputs:
            assert got[t.name].dtype == t.dtype and got[t.name].shape == t.shape
            if t.name == "semantic":
                assert np.mean(got[t.name] == want[t.name]) > 0.99
            else:
                np.testing.assert_allclose(got[t.name], want[t.name], atol=2e-3, err_msg=stage)
    with caplog.at_level(logging.WARNING):
        TensorRTBackend(graphs, config, "cuda", "fp32", cache_dir=tmp_path)
    assert "building the TensorRT" not in caplog.text  # second start loads the cache


# --- synboost export tensorrt (build only) -------------------------------------------------


def test_export_tensorrt_builds_the_engines_of_the_options_and_exits(
    monkeypatch, tmp_path, capsys, caplog
):
    from synboost_ros.backends import factory as factory_module
    from synboost_ros.backends.tensorrt import backend as backend_module
    from synboost_ros.cli.main import main

    made = []

    class Built:
        def __init__(self, graphs, config, device, precision, cache_dir, dla_core, calibration):
            assert set(graphs) == set(STAGE_NAMES) and config.preset == "edge"
            made.append((device, precision, cache_dir, dla_core, calibration))
            self.stage_precisions = dict.fromkeys(("segmentation", "synthesis"), "int8")
            self.stage_engines = {"segmentation": ("/c/s.engine", 61.5), "synthesis": ("/c/y", 1)}

    monkeypatch.setattr(backend_module, "TensorRTBackend", Built)
    monkeypatch.setattr(factory_module, "resolve_device", lambda device: device)
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((8, 8, 3), np.uint8))
    args = ["export", "tensorrt", "--random-weights", "--precision", "int8", "--dla-core", "0"]
    with caplog.at_level(logging.INFO):
        code = main([*args, "--calibration", str(images), "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    ((device, precision, cache_dir, dla_core, calibration),) = made
    assert (device, precision, cache_dir, dla_core) == ("cuda", "int8", tmp_path / "c", 0)
    assert isinstance(calibration, CalibrationSet) and len(calibration.digest) == 64
    summary = json.loads(capsys.readouterr().out)
    expected = {"engine": "/c/s.engine", "precision": "int8", "seconds": 61.5}
    assert summary["segmentation"] == expected
    assert "building TensorRT engines, this takes minutes" in caplog.text
    assert "TensorRT engines ready in" in caplog.text
    assert main(["export", "tensorrt", "--random-weights", "--precision", "int8"]) == 2
    assert "precision int8 needs calibration" in capsys.readouterr().err
    assert len(made) == 1
