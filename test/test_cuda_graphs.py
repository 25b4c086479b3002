"""CUDA graphs: the replay logic of ``GraphRunner`` with a stand-in recorder (CPU), the stage
clocks, and the rule for where graphs run. Real capture: ``test_cuda_pipeline.py``."""

from __future__ import annotations

import logging
import time

import pytest
import torch

from synboost_ros.backends.factory import create_backend
from synboost_ros.backends.torch_backend import TorchBackend
from synboost_ros.cuda_graphs import GraphRunner
from synboost_ros.options import resolve_graphs
from synboost_ros.stage_clock import PerfClock


class ReplayByCalling:
    """A recorder that 'replays' by running the function again on the static inputs and
    writing into the outputs it returned at recording, as a graph writes its buffers."""

    def __init__(self) -> None:
        self.recorded = 0
        self.replayed = 0

    def record(self, fn, inputs):
        self.recorded += 1
        outputs = tuple(fn(*inputs))
        return (fn, inputs, outputs), outputs

    def replay(self, graph) -> None:
        self.replayed += 1
        fn, inputs, outputs = graph
        for static, fresh in zip(outputs, fn(*inputs), strict=True):
            static.copy_(fresh)


def add_and_scale(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return a + b, a * 2


def test_graph_runner_records_once_then_replays_on_its_static_buffers():
    recorder = ReplayByCalling()
    runner = GraphRunner(add_and_scale, recorder)
    assert not runner.recorded
    first = runner(torch.ones(2, 3), torch.full((2, 3), 2.0))
    assert runner.recorded and recorder.recorded == 1
    assert first[0].tolist() == [[3.0] * 3] * 2
    given = torch.arange(6.0).reshape(2, 3)
    second = runner(given, torch.zeros(2, 3))
    assert recorder.recorded == 1 and recorder.replayed == 2
    assert second[0] is first[0] and second[1] is first[1]  # the graph's own buffers
    assert torch.equal(second[0], given) and torch.equal(second[1], given * 2)
    given.add_(100.0)  # the caller's tensor is copied in, not kept
    assert torch.equal(runner(torch.zeros(2, 3), torch.zeros(2, 3))[0], torch.zeros(2, 3))


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ((torch.zeros(2, 4), torch.zeros(2, 3)), "graph input 0 was recorded as"),
        ((torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32)), "graph input 1"),
        ((torch.zeros(2, 3),), "graph takes 2 inputs, got 1"),
    ],
)
def test_graph_runner_refuses_other_shapes_and_dtypes(inputs, words):
    runner = GraphRunner(add_and_scale, ReplayByCalling())
    runner(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=words):
        runner(*inputs)


def test_perf_clock_laps_add_up_to_the_total():
    clock = PerfClock()
    time.sleep(0.01)
    clock.lap("a")
    clock.lap("b")
    times = clock.finish()
    assert list(times) == ["a", "b", "total"]
    assert times["a"] >= 9.0
    assert times["total"] == pytest.approx(times["a"] + times["b"])


@pytest.mark.parametrize(
    ("graphs", "device", "backend", "runs"),
    [
        ("on", "cuda", "torch", True),
        ("on", "cuda:1", "torch", True),
        ("on", "cpu", "torch", False),
        ("on", "cuda", "onnxruntime", False),
        ("on", "cuda", "tensorrt", False),
        ("off", "cuda", "torch", False),
    ],
)
def test_graphs_rule(graphs, device, backend, runs, caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_graphs(graphs, device, backend) is runs
    said = "CUDA graphs run with backend torch on a CUDA device only" in caplog.text
    assert said == (graphs == "on" and not runs)
    with pytest.raises(ValueError, match="graphs must be one of"):
        resolve_graphs("yes", device, backend)


def test_graphs_asked_for_on_the_cpu_run_eagerly_and_say_so(edge_random_model, caplog):
    with caplog.at_level(logging.WARNING):
        backend = create_backend(edge_random_model, "torch", "cpu", "fp32", graphs="on")
    assert backend.graphs is False
    assert "torch on cpu runs eagerly" in caplog.text
    assert backend.describe() == "torch on cpu (fp32, channels_last, eager)"
    with pytest.raises(ValueError, match="CUDA graphs need device 'cuda'"):
        TorchBackend(edge_random_model, "cpu", "fp32", graphs=True)
    with pytest.raises(ValueError, match="runs fp32, fp16 or bf16, not 'int8'"):
        TorchBackend(edge_random_model, "cpu", "int8")
