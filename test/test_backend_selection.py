"""backend auto's choice on the CPU, with fake backends and a fake clock."""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest

from synboost_ros import options as options_module
from synboost_ros.backends import factory, selection
from synboost_ros.backends.base import Backend
from synboost_ros.config import STAGE_NAMES, get_preset
from synboost_ros.stage_io import stage_specs


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeBackend(Backend):
    """Costs ``seconds[i]`` of fake time per frame i (the last one repeats)."""

    def __init__(self, name: str, precision: str, seconds: list[float], clock: FakeClock, log):
        self.name, self.precision = name, precision
        self._seconds, self._clock, self._log, self._frames = seconds, clock, log, 0

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if stage == STAGE_NAMES[-1]:
            self._clock.now += self._seconds[min(self._frames, len(self._seconds) - 1)]
            self._frames += 1
            self._log.append(self.name)
        return {}


def test_the_fastest_median_wins_and_candidates_take_turns():
    clock, log = FakeClock(), []
    steady = FakeBackend("onnxruntime", "fp32", [0.05], clock, log)
    # slow warm-up and one stall: the median of the timed frames still says 0.03 s
    bursty = FakeBackend("torch", "bf16", [9.0, 0.03, 0.5, 0.03], clock, log)
    inputs = selection.probe_inputs(get_preset("edge"))
    chosen, seconds = selection.fastest([steady, bursty], inputs, rounds=3, clock=clock)
    assert chosen is bursty
    assert seconds == pytest.approx({"onnxruntime fp32": 0.05, "torch bf16": 0.03})
    assert log == ["onnxruntime", "torch"] * 4  # warm-up, then three rounds in turn


def test_no_candidates_or_rounds_is_an_error():
    with pytest.raises(ValueError, match="no backend"):
        selection.fastest([], {})
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        selection.fastest([FakeBackend("torch", "fp32", [1.0], FakeClock(), [])], {}, rounds=0)


def test_probe_inputs_have_the_stage_shapes():
    config = get_preset("edge")
    inputs = selection.probe_inputs(config)
    for stage, spec in stage_specs(config).items():
        for tensor in spec.inputs:
            value = inputs[stage][tensor.name]
            assert value.shape == tensor.shape and value.dtype == tensor.dtype
    semantic = inputs["synthesis"]["semantic"]
    assert semantic.min() >= 0 and semantic.max() < config.num_classes


@pytest.fixture
def fake_builds(monkeypatch):
    """factory._build makes fakes: onnxruntime 50 ms, torch 30 ms per frame; names recorded."""
    clock, built = FakeClock(), []
    cost = {"onnxruntime": 0.05, "torch": 0.03}

    def build(name, source, device, precision, explicit, dla_core, calibration, graphs):
        built.append((name, precision))
        ran = "fp32" if name == "onnxruntime" else precision
        return FakeBackend(name, ran, [cost[name]], clock, [])

    monkeypatch.setattr(factory, "_build", build)
    monkeypatch.setattr(factory, "available_backends", lambda device: ["onnxruntime", "torch"])
    timed = functools.partial(selection.fastest, clock=clock)
    monkeypatch.setattr(selection, "fastest", timed)
    return built


def test_auto_on_a_bf16_cpu_times_both_and_keeps_the_faster(
    monkeypatch, caplog, fake_builds, edge_random_model
):
    monkeypatch.setattr(options_module, "native_bf16", lambda: True)
    with caplog.at_level(logging.INFO):
        backend = factory.create_backend(edge_random_model, "auto", "cpu", "auto")
    assert (backend.name, backend.precision) == ("torch", "bf16")
    assert fake_builds == [("onnxruntime", "bf16"), ("torch", "bf16")]
    assert "onnxruntime fp32 50.0 ms, torch bf16 30.0 ms per frame" in caplog.text
    assert "running torch" in caplog.text


def test_auto_on_a_bf16_cpu_without_torch_takes_onnxruntime_untimed(
    monkeypatch, caplog, fake_builds, edge_random_model
):
    monkeypatch.setattr(options_module, "native_bf16", lambda: True)
    build = factory._build

    def no_torch(name, *args):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return build(name, *args)

    monkeypatch.setattr(factory, "_build", no_torch)
    with caplog.at_level(logging.INFO):
        backend = factory.create_backend(edge_random_model, "auto", "cpu", "auto")
    assert (backend.name, backend.precision) == ("onnxruntime", "fp32")
    assert "backend torch unavailable" in caplog.text and "per frame" not in caplog.text


def test_auto_without_bf16_takes_onnxruntime_untimed(monkeypatch, fake_builds, edge_random_model):
    monkeypatch.setattr(options_module, "native_bf16", lambda: False)
    backend = factory.create_backend(edge_random_model, "auto", "cpu", "auto")
    assert (backend.name, backend.precision) == ("onnxruntime", "fp32")
    assert fake_builds == [("onnxruntime", "fp32")]


@pytest.mark.parametrize("native", [True, False])
def test_bf16_asked_for_runs_on_torch(monkeypatch, fake_builds, edge_random_model, native):
    monkeypatch.setattr(options_module, "native_bf16", lambda: native)
    backend = factory.create_backend(edge_random_model, "auto", "cpu", "bf16")
    assert (backend.name, backend.precision) == ("torch", "bf16")
    assert fake_builds == [("torch", "bf16")]


def test_bf16_on_onnxruntime_runs_fp32_and_says_so(monkeypatch, caplog, edge_random_model):
    from synboost_ros.backends import onnxruntime_backend

    monkeypatch.setattr(options_module, "native_bf16", lambda: True)
    monkeypatch.setattr(onnxruntime_backend, "OnnxRuntimeBackend", lambda graphs, device: device)
    monkeypatch.setattr(factory.ModelSource, "onnx_graphs", lambda self, backend: {})
    with caplog.at_level(logging.WARNING):
        factory.create_backend(edge_random_model, "onnxruntime", "cpu", "bf16")
    assert "onnxruntime runs the fp32 graphs; precision is fp32" in caplog.text
