"""ICNet-style pyramid pooling with fixed pooling windows (ONNX / TensorRT friendly).

Adaptive pooling depends on the runtime size and, for sizes a bin count does not divide,
has no ONNX equivalent. Here every bin count gets a plain ``AvgPool2d`` whose kernel and
stride are computed once from the feature size given at construction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PYRAMID_BINS: tuple[int, ...] = (1, 2, 3, 6)


def pooling_window(size: int, bins: int) -> tuple[int, int]:
    """Kernel and stride that split ``size`` cells into exactly ``bins`` windows.

    stride = size // bins and kernel = size - (bins - 1) * stride: the first window starts
    at 0 and the last ends at ``size``, so every cell is covered; when ``bins`` does not
    divide ``size`` neighbouring windows overlap instead of leaving cells out. When it does
    divide, this is the same partition as adaptive average pooling.
    """
    if bins < 1:
        raise ValueError(f"bin count must be >= 1, got {bins}")
    if size < bins:
        raise ValueError(f"cannot pool {size} cells into {bins} bins: need size >= bins")
    stride = size // bins
    return size - (bins - 1) * stride, stride


class PyramidPooling(nn.Module):
    """Average-pool to each bin grid, upsample bilinearly, sum with the input, 1x1-reduce.

    This is ICNet's variant of the PSP module: pooled maps are added to the input rather
    than concatenated, then a 1x1 conv + BN + ReLU maps to ``out_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        feature_size: tuple[int, int],
        bins: tuple[int, ...] = PYRAMID_BINS,
    ) -> None:
        super().__init__()
        height, width = feature_size
        if min(height, width) < max(bins):
            raise ValueError(
                f"feature_size {feature_size} is too small for pyramid bins {bins}: "
                f"both sides must be >= {max(bins)}"
            )
        self.feature_size = (height, width)
        self.bins = tuple(bins)
        self.pools = nn.ModuleList()
        for count in self.bins:
            kernel_h, stride_h = pooling_window(height, count)
            kernel_w, stride_w = pooling_window(width, count)
            self.pools.append(
                nn.AvgPool2d(kernel_size=(kernel_h, kernel_w), stride=(stride_h, stride_w))
            )
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, *feature_size) -> (N, out_channels, *feature_size)."""
        if tuple(x.shape[-2:]) != self.feature_size:
            raise ValueError(
                f"pyramid pooling built for feature size {self.feature_size}, "
                f"got {tuple(x.shape[-2:])}"
            )
        total = x
        for pool in self.pools:
            pooled = pool(x)
            total = total + F.interpolate(
                pooled, size=self.feature_size, mode="bilinear", align_corners=False
            )
        return self.reduce(total)
