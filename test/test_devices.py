"""GPU choice: ``device`` takes ``cuda:N`` in the schema, is checked at pipeline creation and
reaches the backends."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from synboost_ros.backends.base import BackendUnavailableError
from synboost_ros.backends.factory import resolve_device
from synboost_ros.cli.common import add_model_arguments
from synboost_ros.options import ModelOptions, cuda_index, device_kind, resolve_precision
from synboost_ros.pipeline import AnomalyPipeline
from synboost_ros.ros.parameters import NodeParameters

REFUSED = ["cuda:x", "gpu", "cuda:", "cuda:-1", "cuda:1.5", "cpu:0", "CUDA:0", "cuda:٣"]


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:3", "cuda:12"])
def test_schema_accepts_cuda_n(device):
    assert ModelOptions(device=device).problems() == []
    assert NodeParameters(device=device).problems() == []


@pytest.mark.parametrize("device", REFUSED)
def test_schema_refuses_other_device_names(device):
    assert ModelOptions(device=device).problems() == [
        f"device must be one of auto, cpu, cuda, cuda:N; got {device!r}"
    ]


def test_device_flag_takes_cuda_n_and_refuses_other_names(capsys):
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert parser.parse_args(["--device", "cuda:3"]).device == "cuda:3"
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "cuda:x"])
    error = capsys.readouterr().err
    assert "--device: must be one of auto, cpu, cuda, cuda:N, got 'cuda:x'" in error


def test_device_names_split_without_torch():
    assert (device_kind("cuda:2"), cuda_index("cuda:2")) == ("cuda", 2)
    assert (device_kind("cuda"), cuda_index("cuda")) == ("cuda", None)
    assert (device_kind("cpu"), cuda_index("cpu")) == ("cpu", None)
    assert resolve_precision("auto", "cuda:1") == "fp16"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_a_gpu_on_a_cpu_machine_is_a_clean_error_before_the_weights_load(device):
    with pytest.raises(BackendUnavailableError, match=f"'{device}' requested but torch sees no"):
        AnomalyPipeline.create(weights="/nonexistent/weights", device=device)


def test_gpu_index_is_checked_against_the_gpus_torch_sees(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("cuda") == "cuda"
    with pytest.raises(BackendUnavailableError, match=r"sees 2 CUDA device\(s\): cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, cuda:N"):
        resolve_device("gpu")


def test_onnxruntime_gets_the_gpu_index(monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    made = []

    class Session:
        def __init__(self, path, sess_options=None, providers=None):
            made.append(providers)

        def get_outputs(self):
            return []

    monkeypatch.setattr(ort, "InferenceSession", Session)
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    backend = OnnxRuntimeBackend({"segmentation": Path("graph.onnx")}, device="cuda:2")
    OnnxRuntimeBackend({"segmentation": Path("graph.onnx")}, device="cuda")
    assert backend.device == "cuda:2"
    assert made == [
        [("CUDAExecutionProvider", {"device_id": 2}), "CPUExecutionProvider"],
        [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"],
    ]
