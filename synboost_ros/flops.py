"""Floating-point operations per inference stage, counted by torch's ``FlopCounterMode``.

One FLOP is one multiply or one add, so a multiply-accumulate counts 2. The stages run on the
meta device: shapes only, no weights in memory and no arithmetic, so even the light preset's
frame of about a TFLOP counts in seconds. ``FlopCounterMode`` counts convolutions, transposed
convolutions and matrix products (also those of the fixed adaptive pooling); element-wise
work, pooling, resizing, normalisation and softmax are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from synboost_ros.config import PipelineConfig
from synboost_ros.model import SynBoostModel
from synboost_ros.stage_io import stage_specs
from synboost_ros.stages import STAGE_NAMES, build_stages

TOTAL = "total"
_TORCH_DTYPES = {np.float32: torch.float32, np.int32: torch.int32}


def count_flops(module: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """FLOPs of one call ``module(*inputs)`` without gradients."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())


def stage_flops(config: PipelineConfig) -> dict[str, int]:
    """FLOPs of one frame per stage (``STAGE_NAMES``) and their ``"total"``, at the stage
    sizes of ``config``; independent of the weights."""
    meta = torch.device("meta")
    with meta:
        stages = build_stages(SynBoostModel(config).eval())
    flops = {}
    for name, spec in stage_specs(config).items():
        inputs = [
            torch.zeros(t.shape, dtype=_TORCH_DTYPES[t.dtype], device=meta) for t in spec.inputs
        ]
        flops[name] = count_flops(stages[name].eval(), inputs)
    flops[TOTAL] = sum(flops[name] for name in STAGE_NAMES)
    return flops
