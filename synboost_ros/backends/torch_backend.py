"""PyTorch backend (CPU or a CUDA device; fp32, or fp16 autocast; optionally CUDA graphs).

Stages run on tensors that stay on the device (``run_tensors``, the device-resident pipeline's
path) or on numpy arrays (``run``). The numerically delicate parts stay fp32 under fp16:
softmax, entropy and distance (``stages``) and the perceptual sums (``nn.perceptual``).
With ``graphs``, each stage is recorded once as a CUDA graph and replayed
(``cuda_graphs.GraphRunner``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from synboost_ros.backends.base import Backend
from synboost_ros.cuda_graphs import CudaGraphRecorder, GraphRunner
from synboost_ros.model import SynBoostModel
from synboost_ros.options import device_kind
from synboost_ros.stage_io import stage_specs
from synboost_ros.stages import build_stages


class TorchBackend(Backend):
    """Runs the stage modules directly; fp16 uses CUDA autocast."""

    name = "torch"

    def __init__(
        self,
        model: SynBoostModel,
        device: str = "cpu",
        precision: str = "fp32",
        graphs: bool = False,
    ) -> None:
        cuda = device_kind(device) == "cuda"
        if cuda and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch sees no CUDA device")
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"the torch backend runs fp32 or fp16, got {precision!r}")
        if precision == "fp16" and not cuda:
            raise ValueError("precision fp16 needs device 'cuda' for the torch backend")
        if graphs and not cuda:
            raise ValueError("CUDA graphs need device 'cuda' for the torch backend")
        self.device = device
        self.precision = precision
        self.graphs = graphs
        # On CUDA frames stay on the GPU; on the CPU OpenCV's resizes are faster than torch's
        # (the device path still runs there when the pipeline asks for it).
        self.device_resident = cuda
        self.torch_device = torch.device(device)
        self._specs = stage_specs(model.config)
        self._stages = {
            name: stage.to(device).eval() for name, stage in build_stages(model).items()
        }
        self._runners: dict[str, GraphRunner] = {}
        if graphs:
            recorder = CudaGraphRecorder()
            self._runners = {
                name: GraphRunner(self._stage_function(name), recorder) for name in self._stages
            }

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision != "fp16":
            return contextlib.nullcontext()
        # Graph capture must not reuse autocast's cast cache across replays.
        return torch.autocast("cuda", dtype=torch.float16, cache_enabled=not self.graphs)

    def _stage_function(self, stage: str) -> Callable[..., tuple[torch.Tensor, ...]]:
        module = self._stages[stage]

        def run(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
            with self._autocast():
                outputs = module(*args)
            return (outputs,) if isinstance(outputs, torch.Tensor) else tuple(outputs)

        return run

    def run_tensors(self, stage: str, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run one stage on tensors on this backend's device (call under inference mode).
        With graphs, the outputs are the graph's buffers, overwritten by the stage's next
        run."""
        if self._runners:
            return self._runners[stage](*args)
        return self._stage_function(stage)(*args)

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage on numpy arrays under inference mode."""
        spec = self._specs[stage]
        with torch.inference_mode():
            args = [
                torch.from_numpy(np.ascontiguousarray(inputs[t.name])).to(self.torch_device)
                for t in spec.inputs
            ]
            outputs = self.run_tensors(stage, *args)
            return {
                t.name: out.detach().to("cpu").numpy().astype(t.dtype, copy=False)
                for t, out in zip(spec.outputs, outputs, strict=True)
            }
