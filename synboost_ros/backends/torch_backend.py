"""PyTorch eager backend (CPU or a CUDA device, fp32 or fp16 autocast)."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from synboost_ros.backends.base import Backend
from synboost_ros.model import SynBoostModel
from synboost_ros.options import device_kind
from synboost_ros.stage_io import stage_specs
from synboost_ros.stages import build_stages


class TorchBackend(Backend):
    """Runs the stage modules directly; fp16 uses CUDA autocast."""

    name = "torch"

    def __init__(self, model: SynBoostModel, device: str = "cpu", precision: str = "fp32") -> None:
        if device_kind(device) == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch sees no CUDA device")
        if precision == "fp16" and device_kind(device) != "cuda":
            raise ValueError("precision fp16 needs device 'cuda' for the torch backend")
        self.device = device
        self.precision = precision
        self._specs = stage_specs(model.config)
        self._stages = {
            name: stage.to(device).eval() for name, stage in build_stages(model).items()
        }

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage under inference mode."""
        spec = self._specs[stage]
        args = [
            torch.from_numpy(np.ascontiguousarray(inputs[t.name])).to(self.device)
            for t in spec.inputs
        ]
        autocast = (
            torch.autocast(device_type="cuda", dtype=torch.float16)
            if self.precision == "fp16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            outputs = self._stages[stage](*args)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {
            t.name: out.detach().to("cpu").numpy().astype(t.dtype, copy=False)
            for t, out in zip(spec.outputs, outputs, strict=True)
        }
