"""ICNet (Zhao et al., ECCV 2018): real-time segmentation with a three-resolution cascade.

Branches, as fractions of the input size:
- full resolution: three stride-2 3x3 convs -> 1/8;
- 1/2-resolution input: backbone stem..layer2 -> 1/16;
- those features downsampled 2x: dilated backbone layer3..layer4 + pyramid pooling -> 1/32.
Two cascade feature fusion (CFF) units merge 1/32 into 1/16 and 1/16 into 1/8; the result is
upsampled to 1/4 and classified. All resampling uses fixed scale factors or sizes, so the
exported ONNX graph is static.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import ICNetConfig
from synboost_ros.nn.pyramid_pooling import PYRAMID_BINS, PyramidPooling
from synboost_ros.nn.resnet import DilatedResNet

# Cascade label guidance (ICNet paper): loss weights in the order
# (logits_quarter, aux_logits[0] at 1/8, aux_logits[1] at 1/16).
CASCADE_LOSS_WEIGHTS: tuple[float, float, float] = (1.0, 0.4, 0.4)

# Coarsest feature stride of the network; input sides must be multiples of it.
ICNET_STRIDE = 32


class ICNetTrainingOutput(NamedTuple):
    """Training-mode outputs for cascade label guidance."""

    logits_quarter: torch.Tensor  # (N, num_classes, H/4, W/4)
    aux_logits: tuple[torch.Tensor, torch.Tensor]  # at (H/8, W/8) and (H/16, W/16)


def _upsample2x(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def full_resolution_branch(light_width: int) -> nn.Sequential:
    """Three stride-2 3x3 conv + BN + ReLU: input -> 1/8 with ``2 * light_width`` channels."""
    return nn.Sequential(
        _conv_bn_relu(3, light_width, stride=2),
        _conv_bn_relu(light_width, light_width, stride=2),
        _conv_bn_relu(light_width, 2 * light_width, stride=2),
    )


class CascadeFeatureFusion(nn.Module):
    """Fuse a low-resolution map into a 2x larger high-resolution one.

    low -> 2x bilinear upsample -> 3x3 conv (dilation 2) + BN; high -> 1x1 conv + BN;
    sum and ReLU. In training mode it also returns the auxiliary 1x1 classifier output on the
    upsampled low-resolution features (cascade label guidance); in eval mode that is None.
    """

    def __init__(
        self, low_channels: int, high_channels: int, out_channels: int, num_classes: int
    ) -> None:
        super().__init__()
        self.low_conv = nn.Sequential(
            nn.Conv2d(low_channels, out_channels, 3, padding=2, dilation=2, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.high_conv = nn.Sequential(
            nn.Conv2d(high_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.aux_classifier = nn.Conv2d(low_channels, num_classes, 1)

    def forward(
        self, low: torch.Tensor, high: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the fused map (at ``high``'s size) and the auxiliary logits or None."""
        low_up = _upsample2x(low)
        fused = F.relu(self.low_conv(low_up) + self.high_conv(high))
        aux = self.aux_classifier(low_up) if self.training else None
        return fused, aux


def check_icnet_sizes(num_classes: int, input_size: tuple[int, int]) -> tuple[int, int]:
    """``input_size`` of an ICNet with ``num_classes`` classes, or ValueError: sides divisible by
    the network's stride and large enough for the pyramid pooling bins."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    height, width = input_size
    if height % ICNET_STRIDE or width % ICNET_STRIDE:
        raise ValueError(
            f"ICNet input_size {input_size} must have sides divisible by {ICNET_STRIDE}"
        )
    min_side = ICNET_STRIDE * max(PYRAMID_BINS)
    if min(height, width) < min_side:
        raise ValueError(
            f"ICNet input_size {input_size} is too small: both sides must be >= {min_side} "
            f"so the 1/{ICNET_STRIDE} map holds {max(PYRAMID_BINS)} pyramid pooling bins"
        )
    return height, width


def check_icnet_input(x: torch.Tensor, input_size: tuple[int, int]) -> None:
    """ValueError unless ``x`` is an (N, 3, H, W) batch of the size the network was built for."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"ICNet expects an (N, 3, H, W) tensor, got shape {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != input_size:
        raise ValueError(f"ICNet was built for input size {input_size}, got {tuple(x.shape[-2:])}")


class ICNet(nn.Module):
    """ICNet for normalised RGB input of a fixed size (``segmentation_normalization``).

    Eval mode: ``forward(x)`` returns logits (N, num_classes, H, W). Training mode: returns
    ``ICNetTrainingOutput`` (1/4-resolution logits plus the 1/8 and 1/16 auxiliary logits).
    """

    def __init__(self, num_classes: int, input_size: tuple[int, int], config: ICNetConfig) -> None:
        super().__init__()
        height, width = check_icnet_sizes(num_classes, input_size)
        self.num_classes = num_classes
        self.input_size = (height, width)
        self.config = config

        light = config.light_width
        self.full_res_branch = full_resolution_branch(light)
        self.backbone = DilatedResNet(config.base_width, config.blocks)
        pooled_channels = 4 * config.base_width
        self.pyramid_pooling = PyramidPooling(
            self.backbone.out_channels_layer4,
            pooled_channels,
            feature_size=(height // ICNET_STRIDE, width // ICNET_STRIDE),
        )
        self.fuse_to_sixteenth = CascadeFeatureFusion(
            pooled_channels, self.backbone.out_channels_layer2, config.fusion_width, num_classes
        )
        self.fuse_to_eighth = CascadeFeatureFusion(
            config.fusion_width, 2 * light, config.fusion_width, num_classes
        )
        self.classifier = nn.Conv2d(config.fusion_width, num_classes, 1)

    @property
    def trunk(self) -> nn.Module:
        """The part ImageNet weights initialise: the ResNet backbone."""
        return self.backbone

    def _check_input(self, x: torch.Tensor) -> None:
        check_icnet_input(x, self.input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor | ICNetTrainingOutput:
        """Logits at input resolution (eval) or ``ICNetTrainingOutput`` (training)."""
        self._check_input(x)
        eighth = self.full_res_branch(x)
        half_input = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        sixteenth = self.backbone.forward_to_layer2(half_input)
        thirty_second = F.interpolate(
            sixteenth, scale_factor=0.5, mode="bilinear", align_corners=False
        )
        thirty_second = self.pyramid_pooling(self.backbone.forward_from_layer3(thirty_second))
        fused_sixteenth, aux_sixteenth = self.fuse_to_sixteenth(thirty_second, sixteenth)
        fused_eighth, aux_eighth = self.fuse_to_eighth(fused_sixteenth, eighth)
        logits_quarter = self.classifier(_upsample2x(fused_eighth))
        if self.training:
            return ICNetTrainingOutput(logits_quarter, (aux_eighth, aux_sixteenth))
        return F.interpolate(logits_quarter, scale_factor=4.0, mode="bilinear", align_corners=False)
