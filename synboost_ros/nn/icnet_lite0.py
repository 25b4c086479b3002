"""ICNet cascade with an EfficientNet-Lite0 trunk as its deep branch (layout "lite0").

nn/icnet.py's cascade, with the ResNet replaced by Lite0 (fractions of the input size):

- full resolution: three stride-2 3x3 convs -> 1/8;
- the input bilinearly halved -> Lite0 trunk built to stride 16: its stride-8 tap is the
  1/16 branch (40 channels), its stride-16 tap (112 channels) the 1/32 deep branch, which
  gets pyramid pooling (fixed windows) to ``4 * base_width`` channels;
- CFF units merge 1/32 into 1/16 and 1/16 into 1/8 (auxiliary heads for cascade label
  guidance), then 2x upsampling, 1x1 classifier and 4x upsampling to the input size.

As in ICNet the 1/16 and 1/32 branches share their first layers (here the trunk to stride
8). Lite0's ImageNet weights: ``nn/pretrained.py``; its input: ``LITE0_NORMALIZATION``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import ICNetConfig
from synboost_ros.nn.efficientnet_lite import EfficientNetLite0
from synboost_ros.nn.icnet import (
    ICNET_STRIDE,
    CascadeFeatureFusion,
    ICNetTrainingOutput,
    check_icnet_input,
    check_icnet_sizes,
    full_resolution_branch,
)
from synboost_ros.nn.pyramid_pooling import PyramidPooling

# Trunk taps on the half-resolution input: 1/16 and 1/32 of the network input.
TRUNK_TAPS: tuple[int, int] = (8, 16)


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class ICNetLite0(nn.Module):
    """ICNet with a Lite0 deep branch for normalised RGB input of a fixed size.

    Eval mode: ``forward(x)`` returns logits (N, num_classes, H, W). Training mode: returns
    ``ICNetTrainingOutput`` (1/4-resolution logits plus the 1/8 and 1/16 auxiliary logits).
    """

    def __init__(self, num_classes: int, input_size: tuple[int, int], config: ICNetConfig) -> None:
        super().__init__()
        height, width = check_icnet_sizes(num_classes, input_size)
        self.num_classes = num_classes
        self.input_size = (height, width)
        self.half_size = (height // 2, width // 2)
        self.config = config

        self.full_res_branch = full_resolution_branch(config.light_width)
        self.backbone = EfficientNetLite0(TRUNK_TAPS)
        sixteenth_channels, thirty_second_channels = self.backbone.tap_channels
        pooled_channels = 4 * config.base_width
        self.pyramid_pooling = PyramidPooling(
            thirty_second_channels,
            pooled_channels,
            feature_size=(height // ICNET_STRIDE, width // ICNET_STRIDE),
        )
        self.fuse_to_sixteenth = CascadeFeatureFusion(
            pooled_channels, sixteenth_channels, config.fusion_width, num_classes
        )
        self.fuse_to_eighth = CascadeFeatureFusion(
            config.fusion_width, 2 * config.light_width, config.fusion_width, num_classes
        )
        self.classifier = nn.Conv2d(config.fusion_width, num_classes, 1)

    @property
    def trunk(self) -> nn.Module:
        """The part ImageNet weights initialise: the Lite0 trunk."""
        return self.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor | ICNetTrainingOutput:
        """Logits at input resolution (eval) or ``ICNetTrainingOutput`` (training)."""
        check_icnet_input(x, self.input_size)
        eighth = self.full_res_branch(x)
        half = F.interpolate(x, size=self.half_size, mode="bilinear", align_corners=False)
        sixteenth, thirty_second = self.backbone(half)
        thirty_second = self.pyramid_pooling(thirty_second)
        fused_sixteenth, aux_sixteenth = self.fuse_to_sixteenth(thirty_second, sixteenth)
        fused_eighth, aux_eighth = self.fuse_to_eighth(fused_sixteenth, eighth)
        logits_quarter = self.classifier(_resize(fused_eighth, 2.0))
        if self.training:
            return ICNetTrainingOutput(logits_quarter, (aux_eighth, aux_sixteenth))
        return _resize(logits_quarter, 4.0)
