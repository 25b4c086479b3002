"""Replay a fixed-shape tensor function as one captured CUDA graph (``torch.cuda.CUDAGraph``).

``GraphRunner`` keeps static input buffers: the first call copies its inputs into them and
records the graph (after warm-up runs on a side stream, as CUDA graph capture requires);
every later call copies the new inputs into the same buffers and replays. The outputs are
the graph's own tensors, overwritten by the next replay: use or copy them before. How a
graph is recorded and replayed is a ``GraphRecorder``, so the buffer logic runs on the CPU
with a stand-in recorder in the tests; ``CudaGraphRecorder`` is the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

TensorFunction = Callable[..., Sequence[torch.Tensor]]


class GraphRecorder(Protocol):
    """Records ``fn`` on static inputs into a replayable graph."""

    def record(
        self, fn: TensorFunction, inputs: Sequence[torch.Tensor]
    ) -> tuple[Any, tuple[torch.Tensor, ...]]:
        """The graph and its output tensors (valid after each replay)."""

    def replay(self, graph: Any) -> None:
        """Run the recorded graph again on its static buffers."""


class CudaGraphRecorder:
    """``torch.cuda.CUDAGraph`` capture: ``warmup`` eager runs on a side stream first."""

    def __init__(self, warmup: int = 2) -> None:
        if not torch.cuda.is_available():
            raise ValueError("CUDA graphs need a CUDA device; torch sees none")
        self.warmup = warmup

    def record(
        self, fn: TensorFunction, inputs: Sequence[torch.Tensor]
    ) -> tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, ...]]:
        """Warm up, then capture ``fn(*inputs)``."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                fn(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = tuple(fn(*inputs))
        return graph, outputs

    def replay(self, graph: torch.cuda.CUDAGraph) -> None:
        """Launch the graph on the current stream."""
        graph.replay()


class GraphRunner:
    """``fn`` (tensors in, a sequence of tensors out) replayed from one recorded graph."""

    def __init__(self, fn: TensorFunction, recorder: GraphRecorder) -> None:
        self._fn = fn
        self._recorder = recorder
        self._inputs: tuple[torch.Tensor, ...] | None = None
        self._graph: Any = None
        self._outputs: tuple[torch.Tensor, ...] = ()

    @property
    def recorded(self) -> bool:
        """Whether the graph exists (after the first call)."""
        return self._graph is not None

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Copy ``inputs`` into the static buffers and replay; the first call records."""
        if self._inputs is None:
            self._inputs = tuple(t.clone() for t in inputs)
            self._graph, self._outputs = self._recorder.record(self._fn, self._inputs)
        else:
            self._check(inputs)
            for static, given in zip(self._inputs, inputs, strict=True):
                static.copy_(given)
        self._recorder.replay(self._graph)
        return self._outputs

    def _check(self, inputs: Sequence[torch.Tensor]) -> None:
        """The recorded shapes, dtypes and devices, else ValueError."""
        assert self._inputs is not None
        if len(inputs) != len(self._inputs):
            raise ValueError(f"graph takes {len(self._inputs)} inputs, got {len(inputs)}")
        for index, (static, given) in enumerate(zip(self._inputs, inputs, strict=True)):
            recorded = (tuple(static.shape), static.dtype, static.device)
            if (tuple(given.shape), given.dtype, given.device) != recorded:
                raise ValueError(
                    f"graph input {index} was recorded as {recorded}, got "
                    f"{(tuple(given.shape), given.dtype, given.device)}"
                )
