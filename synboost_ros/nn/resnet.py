"""Dilated ResNet-50-style bottleneck backbone with output stride 8.

Parameter names follow torchvision's ``resnet50`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0`` ...), so its ImageNet weights load without renaming. Stems:

- ``"torchvision"``: a 7x7 stride-2 convolution, BN, ReLU and a 3x3 stride-2 max-pool;
- ``"deep"`` (PSPNet's "deep base", as in lxtGH/Fast_Seg's ICNet): three 3x3 convolutions
  (``conv1`` stride 2 to ``base_width``, ``conv2``, ``conv3`` to ``2 * base_width``), each with
  BN (``bn1``-``bn3``) and ReLU, then a 3x3 stride-2 max-pool with ceil mode.
"""

from __future__ import annotations

import torch
from torch import nn

BOTTLENECK_EXPANSION = 4
STEMS = ("torchvision", "deep")


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride or dilation) -> 1x1 expand, plus a residual shortcut."""

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = width * BOTTLENECK_EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width,
            width,
            kernel_size=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual bottleneck transform of ``x``."""
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


def _make_stage(
    in_channels: int, width: int, num_blocks: int, stride: int, dilation: int
) -> nn.Sequential:
    """One ResNet stage; only its first block changes stride or channel count."""
    blocks = [Bottleneck(in_channels, width, stride=stride, dilation=dilation)]
    out_channels = width * BOTTLENECK_EXPANSION
    blocks += [Bottleneck(out_channels, width, dilation=dilation) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class DilatedResNet(nn.Module):
    """ResNet-50-style backbone whose layer3 / layer4 use dilation 2 / 4 instead of stride.

    ``forward_to_layer2`` (stem..layer2) reduces the resolution 8x; ``forward_from_layer3``
    (layer3..layer4) keeps it. ICNet runs the two halves on different input resolutions.
    With the defaults (``base_width=64``, ``blocks=(3, 4, 6, 3)``) this is torchvision's
    resnet50 without ``avgpool`` / ``fc``; ``stem="deep"`` gives the deep-stem ResNet-50.
    """

    def __init__(
        self,
        base_width: int = 64,
        blocks: tuple[int, int, int, int] = (3, 4, 6, 3),
        in_channels: int = 3,
        stem: str = "torchvision",
    ) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        if len(blocks) != 4 or any(n < 1 for n in blocks):
            raise ValueError(f"blocks must be four counts >= 1, got {blocks}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        self.base_width = base_width
        self.blocks = tuple(blocks)
        self.in_channels = in_channels
        self.stem = stem
        widths = [base_width * 2**stage for stage in range(4)]
        stage_out = [w * BOTTLENECK_EXPANSION for w in widths]

        self.relu = nn.ReLU(inplace=True)
        if stem == "torchvision":
            self.conv1 = nn.Conv2d(
                in_channels, base_width, kernel_size=7, stride=2, padding=3, bias=False
            )
            self.bn1 = nn.BatchNorm2d(base_width)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            stem_out = base_width
        else:
            stem_out = 2 * base_width
            self.conv1 = nn.Conv2d(in_channels, base_width, 3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(base_width)
            self.conv2 = nn.Conv2d(base_width, base_width, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(base_width)
            self.conv3 = nn.Conv2d(base_width, stem_out, 3, padding=1, bias=False)
            self.bn3 = nn.BatchNorm2d(stem_out)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)
        self.layer1 = _make_stage(stem_out, widths[0], blocks[0], stride=1, dilation=1)
        self.layer2 = _make_stage(stage_out[0], widths[1], blocks[1], stride=2, dilation=1)
        self.layer3 = _make_stage(stage_out[1], widths[2], blocks[2], stride=1, dilation=2)
        self.layer4 = _make_stage(stage_out[2], widths[3], blocks[3], stride=1, dilation=4)
        self.out_channels_layer2 = stage_out[1]
        self.out_channels_layer4 = stage_out[3]
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_to_layer2(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, layer1 and layer2: (N, in_channels, H, W) -> (N, out_channels_layer2, H/8, W/8)
        (the deep stem's ceil-mode max-pool rounds up: ``deep_stem_layer2_size``)."""
        x = self.relu(self.bn1(self.conv1(x)))
        if self.stem == "deep":
            x = self.relu(self.bn3(self.conv3(self.relu(self.bn2(self.conv2(x))))))
        return self.layer2(self.layer1(self.maxpool(x)))

    def forward_from_layer3(self, x: torch.Tensor) -> torch.Tensor:
        """Dilated layer3 and layer4; keeps the spatial size, outputs out_channels_layer4."""
        return self.layer4(self.layer3(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whole backbone at one resolution: output stride 8."""
        return self.forward_from_layer3(self.forward_to_layer2(x))


def deep_stem_layer2_size(size: int) -> int:
    """Side of ``forward_to_layer2``'s output for an input side ``size`` with the deep stem:
    stride-2 conv, ceil-mode 3x3 stride-2 max-pool (padding 1), stride-2 layer2."""
    conv = (size - 1) // 2 + 1
    pooled = -(-(conv - 1) // 2) + 1  # ceil mode
    if (pooled - 1) * 2 >= conv + 1:  # a last window starting in the padding is dropped
        pooled -= 1
    return (pooled - 1) // 2 + 1
