"""Multi-scale PatchGAN discriminator for training the SPADE generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.nn.normalization import add_spectral_norm


class PatchDiscriminator(nn.Module):
    """PatchGAN: a stack of 4x4 convs ending in one logit per patch.

    Every hidden layer has LeakyReLU(0.2); the inner ones also spectral and instance norm.
    ``num_layers`` hidden layers double the width up to 8*ndf; all but the last hidden
    layer have stride 2 (as in SPADE's discriminator). The first and last convs stay plain.
    """

    def __init__(self, input_channels: int, ndf: int, num_layers: int) -> None:
        super().__init__()
        layers = [nn.Sequential(_conv4x4(input_channels, ndf, 2, bias=True), nn.LeakyReLU(0.2))]
        in_ch = ndf
        for index in range(1, num_layers):
            out_ch = ndf * min(2**index, 8)
            stride = 1 if index == num_layers - 1 else 2
            layers.append(
                nn.Sequential(
                    add_spectral_norm(_conv4x4(in_ch, out_ch, stride, bias=False)),
                    nn.InstanceNorm2d(out_ch, affine=False),
                    nn.LeakyReLU(0.2),
                )
            )
            in_ch = out_ch
        layers.append(_conv4x4(in_ch, 1, 1, bias=True))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return every layer's output; the last one holds the patch logits."""
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscalePatchDiscriminator(nn.Module):
    """Independent PatchGANs on the input and on 3x3 stride-2 average-pooled copies of it.

    The input is concat(one-hot labels, image) with ``input_channels`` channels. ``forward``
    returns, per scale (full size first), the list of ``num_layers + 1`` features whose last
    entry is the patch logits, so feature-matching losses can use the rest.
    """

    def __init__(
        self, input_channels: int, num_scales: int = 2, ndf: int = 64, num_layers: int = 4
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_channels", input_channels),
            ("num_scales", num_scales),
            ("ndf", ndf),
            ("num_layers", num_layers),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.input_channels = input_channels
        self.scales = nn.ModuleList(
            PatchDiscriminator(input_channels, ndf, num_layers) for _ in range(num_scales)
        )

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Score ``x`` (N, input_channels, H, W) at every scale."""
        if x.dim() != 4 or x.shape[1] != self.input_channels:
            raise ValueError(
                f"discriminator expects (N, {self.input_channels}, H, W), got {tuple(x.shape)}"
            )
        outputs = []
        for index, discriminator in enumerate(self.scales):
            if index > 0:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs


def _conv4x4(in_ch: int, out_ch: int, stride: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=stride, padding=2, bias=bias)
