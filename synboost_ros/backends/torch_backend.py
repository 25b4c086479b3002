"""PyTorch eager backend (CPU or a CUDA device; fp32, or fp16 / bf16 autocast)."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from synboost_ros.backends.base import Backend
from synboost_ros.model import SynBoostModel
from synboost_ros.options import device_kind
from synboost_ros.stage_io import stage_specs
from synboost_ros.stages import build_stages

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    """Runs the stage modules directly; fp16 and bf16 run under autocast, whose fp32 ops and the
    stages' own casts keep softmax, entropy, distance, the perceptual sums and the ensemble in
    fp32.

    ``channels_last`` (default: on the CPU) stores the weights channels-last, so that every
    convolution, and the activations it writes, run in that layout: oneDNN's fastest on CPUs.
    """

    name = "torch"

    def __init__(
        self,
        model: SynBoostModel,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool | None = None,
    ) -> None:
        kind = device_kind(device)
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but torch sees no CUDA device")
        if precision not in ("fp32", *AUTOCAST_DTYPES):
            raise ValueError(f"the torch backend runs fp32, fp16 or bf16, not {precision!r}")
        if precision == "fp16" and kind != "cuda":
            raise ValueError("precision fp16 needs device 'cuda' for the torch backend")
        if channels_last is None:
            channels_last = kind == "cpu"
        self.device = device
        self.precision = precision
        self.layout = "channels_last" if channels_last else "nchw"
        self._kind = kind
        self._specs = stage_specs(model.config)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._stages = {
            name: stage.to(device, memory_format=memory_format).eval()
            for name, stage in build_stages(model).items()
        }

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage under inference mode."""
        spec = self._specs[stage]
        args = [
            torch.from_numpy(np.ascontiguousarray(inputs[t.name])).to(self.device)
            for t in spec.inputs
        ]
        autocast = (
            torch.autocast(device_type=self._kind, dtype=AUTOCAST_DTYPES[self.precision])
            if self.precision in AUTOCAST_DTYPES
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
