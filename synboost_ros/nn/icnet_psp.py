"""ICNet in the layout of the public Cityscapes ICNet (lxtGH/Fast_Seg ``icnet_final.pth``).

The cascade of nn/icnet.py with other parts (``ICNetConfig.layout == "psp"``):

- full resolution: three stride-2 3x3 conv + BN + ReLU -> 1/8;
- the input bilinearly halved -> deep-stem ResNet-50 stem..layer2 (nn/resnet.py) -> 1/16;
  those features bilinearly halved -> layer3..layer4 (dilation 2, 4) -> PSPNet pyramid
  pooling: adaptive average pooling to 1, 2, 3 and 6 bins, each 1x1 conv + BN, upsampled and
  concatenated with the input, then 3x3 conv + BN + ReLU to ``8 * base_width`` channels;
- 1x1 conv + BN + ReLU projections of the 1/16 and 1/32 features to ``4 * base_width``;
- cascade feature fusion of 1/32 into 1/16 and of 1/16 into 1/8, whose auxiliary classifiers
  (no bias) read the low-resolution branch after its dilated conv + BN;
- 2x upsampling, a 1x1 classifier without bias, 4x upsampling to the input size.

Every resize is bilinear with ``align_corners=True``; halving rounds sizes down and the
max-pool rounds up, so feature sides need not be even (512x1024 input: 1/16 is 33x65, 1/32
16x32). All sizes are fixed at construction, and adaptive pooling is an exact linear map for
them (nn/adaptive_pooling.py), so the exported ONNX graph is static.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import ICNetConfig
from synboost_ros.nn.adaptive_pooling import FixedAdaptiveAvgPool2d
from synboost_ros.nn.icnet import ICNetTrainingOutput, check_icnet_input
from synboost_ros.nn.resnet import DilatedResNet, deep_stem_layer2_size

PSP_BINS: tuple[int, ...] = (1, 2, 3, 6)
# Input sides must be multiples of this: the full-resolution branch strides 8 times.
ICNET_PSP_STRIDE = 8

Size = tuple[int, int]


def _resize(x: torch.Tensor, size: Size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class PSPPooling(nn.Module):
    """PSPNet pyramid pooling for a fixed feature size: per bin count, adaptive average
    pooling, 1x1 conv + BN and an upsampling back; concatenated with the input (pooled maps
    first, in bin order), then 3x3 conv + BN + ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, feature_size: Size, bins=PSP_BINS
    ) -> None:
        super().__init__()
        self.feature_size = tuple(feature_size)
        self.stages = nn.ModuleList(
            nn.Sequential(
                FixedAdaptiveAvgPool2d(self.feature_size, (count, count)),
                nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
            for count in bins
        )
        self.bottleneck = _conv_bn_relu(in_channels + len(bins) * out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, *feature_size) -> (N, out_channels, *feature_size)."""
        pooled = [_resize(stage(x), self.feature_size) for stage in self.stages]
        return self.bottleneck(torch.cat([*pooled, x], dim=1))


class AlignedCascadeFusion(nn.Module):
    """Resize the low-resolution map to the high one's size; dilated 3x3 conv + BN on it,
    1x1 conv + BN on the high one, sum and ReLU. Training mode also returns the auxiliary
    logits: a bias-free 1x1 classifier on the low branch after its conv + BN."""

    def __init__(self, low_ch: int, high_ch: int, out_ch: int, num_classes: int) -> None:
        super().__init__()
        self.low_conv = nn.Sequential(
            nn.Conv2d(low_ch, out_ch, 3, padding=2, dilation=2, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.high_conv = nn.Sequential(
            nn.Conv2d(high_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)
        )
        self.aux_classifier = nn.Conv2d(out_ch, num_classes, 1, bias=False)

    def forward(
        self, low: torch.Tensor, high: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the fused map (at ``high``'s size) and the auxiliary logits or None."""
        low = self.low_conv(_resize(low, tuple(high.shape[-2:])))
        fused = F.relu(low + self.high_conv(high))
        return fused, self.aux_classifier(low) if self.training else None


class ICNetPSP(nn.Module):
    """ICNet in Fast_Seg's layout for normalised input of a fixed size.

    Eval mode: ``forward(x)`` returns logits (N, num_classes, H, W). Training mode: returns
    ``ICNetTrainingOutput`` (1/4-resolution logits plus the 1/8 and 1/16 auxiliary logits).
    """

    def __init__(self, num_classes: int, input_size: Size, config: ICNetConfig) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        height, width = input_size
        if height % ICNET_PSP_STRIDE or width % ICNET_PSP_STRIDE or min(height, width) < 32:
            raise ValueError(
                f"ICNet input_size {tuple(input_size)} must have sides of at least 32 that "
                f"are multiples of {ICNET_PSP_STRIDE}"
            )
        self.num_classes = num_classes
        self.input_size = (height, width)
        self.config = config
        self.half_size = (height // 2, width // 2)
        self.sixteenth_size = tuple(deep_stem_layer2_size(side) for side in self.half_size)
        self.thirty_second_size = tuple(side // 2 for side in self.sixteenth_size)
        self.eighth_size = (height // 8, width // 8)

        base, light, fusion = config.base_width, config.light_width, config.fusion_width
        self.full_res_branch = nn.Sequential(
            _conv_bn_relu(3, light, 3, stride=2),
            _conv_bn_relu(light, light, 3, stride=2),
            _conv_bn_relu(light, 2 * light, 3, stride=2),
        )
        self.backbone = DilatedResNet(base, config.blocks, stem="deep")
        self.pyramid_pooling = PSPPooling(
            self.backbone.out_channels_layer4, 8 * base, self.thirty_second_size
        )
        self.project_sixteenth = _conv_bn_relu(self.backbone.out_channels_layer2, 4 * base, 1)
        self.project_thirty_second = _conv_bn_relu(8 * base, 4 * base, 1)
        self.fuse_to_sixteenth = AlignedCascadeFusion(4 * base, 4 * base, fusion, num_classes)
        self.fuse_to_eighth = AlignedCascadeFusion(fusion, 2 * light, fusion, num_classes)
        self.classifier = nn.Conv2d(fusion, num_classes, 1, bias=False)

    @property
    def trunk(self) -> nn.Module:
        """The part ImageNet weights initialise: the ResNet backbone."""
        return self.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor | ICNetTrainingOutput:
        """Logits at input resolution (eval) or ``ICNetTrainingOutput`` (training)."""
        check_icnet_input(x, self.input_size)
        eighth = self.full_res_branch(x)
        sixteenth = self.backbone.forward_to_layer2(_resize(x, self.half_size))
        deep = self.backbone.forward_from_layer3(_resize(sixteenth, self.thirty_second_size))
        thirty_second = self.project_thirty_second(self.pyramid_pooling(deep))
        fused_sixteenth, aux_sixteenth = self.fuse_to_sixteenth(
            thirty_second, self.project_sixteenth(sixteenth)
        )
        fused_eighth, aux_eighth = self.fuse_to_eighth(fused_sixteenth, eighth)
        quarter_size = (2 * self.eighth_size[0], 2 * self.eighth_size[1])
        logits_quarter = self.classifier(_resize(fused_eighth, quarter_size))
        if self.training:
            return ICNetTrainingOutput(logits_quarter, (aux_eighth, aux_sixteenth))
        return _resize(logits_quarter, self.input_size)
