"""The stages' fixed input and output tensors (names, dtypes, shapes), without torch.

One ONNX graph / TensorRT engine per stage has exactly these inputs and outputs (the stage
modules are in ``synboost_ros.stages``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synboost_ros.config import PipelineConfig


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and fixed shape of one stage input or output."""

    name: str
    dtype: type
    shape: tuple[int, ...]


@dataclass(frozen=True)
class StageSpec:
    """Inputs and outputs of one stage, in call order."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def stage_specs(config: PipelineConfig, batch: int = 1) -> dict[str, StageSpec]:
    """Fixed input/output shapes of each stage for a configuration."""
    sh, sw = config.segmentation_size
    dh, dw = config.synthesis_size
    f32, i32 = np.float32, np.int32
    return {
        "segmentation": StageSpec(
            "segmentation",
            (TensorSpec("image", f32, (batch, 3, sh, sw)),),
            (
                TensorSpec("semantic", i32, (batch, sh, sw)),
                TensorSpec("entropy", f32, (batch, 1, sh, sw)),
                TensorSpec("distance", f32, (batch, 1, sh, sw)),
            ),
        ),
        "synthesis": StageSpec(
            "synthesis",
            (TensorSpec("semantic", i32, (batch, dh, dw)),),
            (TensorSpec("synthesized", f32, (batch, 3, dh, dw)),),
        ),
        "dissimilarity": StageSpec(
            "dissimilarity",
            (
                TensorSpec("image", f32, (batch, 3, dh, dw)),
                TensorSpec("synthesized", f32, (batch, 3, dh, dw)),
                TensorSpec("semantic", i32, (batch, dh, dw)),
                TensorSpec("entropy", f32, (batch, 1, dh, dw)),
                TensorSpec("distance", f32, (batch, 1, dh, dw)),
                TensorSpec("ensemble_weights", f32, (4,)),
            ),
            (
                TensorSpec("perceptual", f32, (batch, 1, dh, dw)),
                TensorSpec("dissimilarity", f32, (batch, 1, dh, dw)),
                TensorSpec("anomaly", f32, (batch, 1, dh, dw)),
            ),
        ),
    }
