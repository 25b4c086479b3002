"""EfficientNet-Lite0 (Tan & Le, ICML 2019; the TensorFlow "lite" variant) with stride taps.

Lite0 is EfficientNet-B0's layout without squeeze-excitation, with ReLU6 in place of swish and
a fixed 32-channel stem and 1280-channel head. Convolutions pad as TensorFlow's ``"SAME"`` does
for inputs whose sides divide by the deepest stride built; that padding is fixed at
construction, so the module exports to a static ONNX graph. Batch norms use TensorFlow's
epsilon 1e-3 and decay 0.99 (PyTorch momentum 0.01). Weights: ``nn/pretrained.py``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
DROPOUT = 0.2
TAP_STRIDES = (2, 4, 8, 16, 32)


class Stage(NamedTuple):
    """A run of MBConv blocks; only the first one strides and changes the width."""

    repeats: int
    kernel: int
    stride: int
    expand_ratio: int
    out_channels: int


# EfficientNet-B0's seven stages (Lite0 scales neither width nor depth).
STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)


def same_padding(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow "SAME" padding (left, right, top, bottom) for sides that divide by ``stride``.

    The total is ``kernel - stride``; TensorFlow puts the odd pixel after the image, so a
    stride-2 3x3 conv pads 0 before and 1 after.
    """
    total = kernel - stride
    before = total // 2
    return (before, total - before, before, total - before)


class SamePad(nn.Module):
    """Zero padding (left, right, top, bottom) by concatenating zero rows and columns.

    ``nn.ZeroPad2d`` exports as an ONNX Pad whose pads are computed by a subgraph that the
    exporter does not fold, which leaves the graph's shapes dynamic; slices, a product and
    concatenation keep them static.
    """

    def __init__(self, left: int, right: int, top: int, bottom: int) -> None:
        super().__init__()
        self.width_pad = (left, right)
        self.height_pad = (top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, top + H + bottom, left + W + right)."""
        x = _pad_dim(x, 2, *self.height_pad)
        return _pad_dim(x, 3, *self.width_pad)


def _pad_dim(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    if not before and not after:
        return x
    zero = x.narrow(dim, 0, 1) * 0
    return torch.cat([zero] * before + [x] + [zero] * after, dim=dim)


class ConvBN(nn.Sequential):
    """Bias-free convolution with "SAME" padding, batch norm, and ReLU6 unless ``linear``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        linear: bool = False,
    ) -> None:
        left, right, top, bottom = same_padding(kernel, stride)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        symmetric = left == right == top == bottom
        if not symmetric:
            layers["pad"] = SamePad(left, right, top, bottom)
        layers["conv"] = nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=left if symmetric else 0,
            groups=groups,
            bias=False,
        )
        layers["bn"] = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        if not linear:
            layers["act"] = nn.ReLU6()
        super().__init__(layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise conv, linear 1x1 projection.

    The input is added back where the block keeps stride 1 and width.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvBN(in_channels, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, out_channels, linear=True)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 trunk returning the features at the requested output strides.

    ``taps`` picks strides among 2, 4, 8, 16 and 32; each tap is the output of the last block
    at that stride (16, 24, 40, 112 and 320 channels). Without ``head`` the trunk ends at the
    deepest tap. ``head=True`` builds every block plus the classifier (1x1 conv to 1280
    channels, global average pool, dropout 0.2, 1000-way fc), used by :meth:`classify`.
    Input sides must divide by ``max_stride`` (the deepest stride built).
    """

    def __init__(self, taps: Sequence[int] = TAP_STRIDES, head: bool = False) -> None:
        super().__init__()
        taps = tuple(taps)
        if not taps:
            raise ValueError("at least one tap is needed")
        unknown = [t for t in taps if t not in TAP_STRIDES]
        if unknown or len(set(taps)) != len(taps):
            raise ValueError(f"taps must be distinct strides among {TAP_STRIDES}, got {taps}")
        self.taps = taps
        self.max_stride = TAP_STRIDES[-1] if head else max(taps)
        self.stem = ConvBN(3, STEM_CHANNELS, kernel=3, stride=2)
        blocks: list[nn.Module] = []
        channels: dict[int, int] = {}
        last_block: dict[int, int] = {}
        in_channels, stride = STEM_CHANNELS, 2
        for stage in STAGES:
            if stride * stage.stride > self.max_stride:
                break
            for index in range(stage.repeats):
                first = index == 0
                blocks.append(
                    MBConv(
                        in_channels,
                        stage.out_channels,
                        stage.kernel,
                        stage.stride if first else 1,
                        stage.expand_ratio,
                    )
                )
                in_channels = stage.out_channels
            stride *= stage.stride
            channels[stride] = stage.out_channels
            last_block[stride] = len(blocks) - 1
        self.blocks = nn.ModuleList(blocks)
        self.tap_channels = tuple(channels[t] for t in taps)
        self._tap_at_block = {last_block[t]: t for t in taps}
        self._blocks_for_taps = max(self._tap_at_block) + 1
        self.head: nn.Sequential | None = None
        if head:
            self.head = nn.Sequential(
                OrderedDict(
                    widen=ConvBN(in_channels, HEAD_CHANNELS),
                    pool=nn.AdaptiveAvgPool2d(1),
                    flatten=nn.Flatten(),
                    dropout=nn.Dropout(DROPOUT),
                    fc=nn.Linear(HEAD_CHANNELS, NUM_CLASSES),
                )
            )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"EfficientNetLite0 expects an (N, 3, H, W) tensor, got shape {tuple(x.shape)}"
            )
        if x.shape[-2] % self.max_stride or x.shape[-1] % self.max_stride:
            raise ValueError(
                f"EfficientNetLite0 built to stride {self.max_stride} needs H and W divisible "
                f"by {self.max_stride}, got {tuple(x.shape[-2:])}"
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Tap features, in the order of ``self.taps``: (N, C, H/stride, W/stride) each."""
        self._check_input(x)
        x = self.stem(x)
        found: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self.blocks[: self._blocks_for_taps]):
            x = block(x)
            stride = self._tap_at_block.get(index)
            if stride is not None:
                found[stride] = x
        return [found[t] for t in self.taps]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000); needs ``head=True``."""
        if self.head is None:
            raise RuntimeError("this EfficientNetLite0 was built without its classifier head")
        self._check_input(x)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
