"""Adaptive average pooling of a fixed input size as an exact linear map (ONNX / TensorRT).

``nn.AdaptiveAvgPool2d`` to bin counts that do not divide the input size has no ONNX
equivalent. For a size known in advance it is a fixed linear map: output bin i of a side of
``size`` cells averages the cells ``floor(i * size / bins)`` to ``ceil((i + 1) * size / bins)``
(exclusive), so pooling is ``rows @ x @ cols`` with two constant averaging matrices.
"""

from __future__ import annotations

import torch
from torch import nn


def adaptive_pooling_matrix(size: int, bins: int) -> torch.Tensor:
    """(bins, size) float32 matrix whose row i averages the cells of adaptive bin i."""
    if size < 1 or bins < 1:
        raise ValueError(f"size and bins must be >= 1, got size {size}, bins {bins}")
    matrix = torch.zeros(bins, size, dtype=torch.float32)
    for index in range(bins):
        start = (index * size) // bins
        end = -(-((index + 1) * size) // bins)
        matrix[index, start:end] = 1.0 / (end - start)
    return matrix


class FixedAdaptiveAvgPool2d(nn.Module):
    """``F.adaptive_avg_pool2d(x, output_size)`` for inputs of ``input_size`` only, as two
    matrix products (the matrices are buffers, not saved in state dicts)."""

    def __init__(self, input_size: tuple[int, int], output_size: tuple[int, int]) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.output_size = tuple(output_size)
        rows = adaptive_pooling_matrix(self.input_size[0], self.output_size[0])
        cols = adaptive_pooling_matrix(self.input_size[1], self.output_size[1])
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols.t().contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *input_size) -> (N, C, *output_size)."""
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"adaptive pooling built for input size {self.input_size}, "
                f"got {tuple(x.shape[-2:])}"
            )
        return self.rows @ x @ self.cols
