"""The perceptual difference of the paper (eq. 3) between an image and its resynthesis."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.config import (
    IMAGENET_NORMALIZATION,
    PERCEPTUAL_BACKBONES,
    InputNormalization,
)
from synboost_ros.nn.efficientnet_lite import EfficientNetLite0
from synboost_ros.nn.input_normalization import normalize_input
from synboost_ros.nn.vgg import VGGFeatures

# Official perceptual-difference taps of VGG19 and their weights.
PERCEPTUAL_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PERCEPTUAL_TAP_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
# EfficientNet-Lite0 taps (output strides) and their weights. Stride 32 is left out: at the
# edge synthesis size (128x256) it is a 4x8 grid, and it would hold 76 % of the trunk's
# parameters. The weights halve with each stride, finest first: on the validation scenes the
# finest tap alone locates anomalies best and the stride-16 tap worst, and this weighting
# scored above equal weights and above the paper's VGG19 pattern by stride (1/16, 1/8, 1/4, 1)
# (models/edge/MODEL_CARD.md, "Pretrained features: measurements").
LITE0_PERCEPTUAL_TAPS = (2, 4, 8, 16)
LITE0_PERCEPTUAL_TAP_WEIGHTS = (1.0, 1 / 2, 1 / 4, 1 / 8)


class PerceptualDifference(nn.Module):
    """Eq. 3: weighted sum over feature taps of the channel-mean L1 feature difference.

    ``backbone`` "vgg19" (the paper's taps, module ``vgg``) or "efficientnet_lite0" (module
    ``trunk``, ``LITE0_PERCEPTUAL_TAPS``; ``width_multiplier`` does not apply). V is mapped to
    1 - exp(-V / scale), monotone onto [0, 1); ``normalization`` is the input the backbone's
    weights expect.
    """

    def __init__(
        self,
        width_multiplier: float = 1.0,
        scale: float = 1.0,
        normalization: InputNormalization = IMAGENET_NORMALIZATION,
        backbone: str = "vgg19",
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"perceptual scale must be positive, got {scale}")
        if backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(
                f"perceptual backbone must be one of {PERCEPTUAL_BACKBONES}, got {backbone!r}"
            )
        self.backbone = backbone
        if backbone == "vgg19":
            self.vgg = VGGFeatures(19, PERCEPTUAL_TAPS, width_multiplier)
            self.tap_weights = PERCEPTUAL_TAP_WEIGHTS
        else:
            self.trunk = EfficientNetLite0(LITE0_PERCEPTUAL_TAPS)
            self.tap_weights = LITE0_PERCEPTUAL_TAP_WEIGHTS
        self.scale = scale
        self.normalization = normalization

    @property
    def features(self) -> nn.Module:
        """The feature network: a ``VGGFeatures`` or an ``EfficientNetLite0``."""
        return self.vgg if self.backbone == "vgg19" else self.trunk

    def forward(self, image: torch.Tensor, synthesized: torch.Tensor) -> torch.Tensor:
        """Both inputs RGB in [0, 1], (N, 3, H, W); returns (N, 1, H, W) in [0, 1)."""
        return 1.0 - torch.exp(-self.raw_difference(image, synthesized) / self.scale)

    def raw_difference(self, image: torch.Tensor, synthesized: torch.Tensor) -> torch.Tensor:
        """V of eq. 3 before normalisation, (N, 1, H, W), >= 0."""
        size = image.shape[-2:]
        pair = normalize_input(torch.cat([image, synthesized], dim=0), self.normalization)
        difference = image.new_zeros((image.shape[0], 1, *size))
        for weight, features in zip(self.tap_weights, self.features(pair), strict=True):
            real, fake = features.float().chunk(2, dim=0)  # the sums in fp32 under autocast
            tap = (real - fake).abs().mean(dim=1, keepdim=True)
            if tap.shape[-2:] != size:
                tap = F.interpolate(tap, size=size, mode="bicubic", align_corners=False)
            difference = difference + weight * tap
        return difference.clamp_min(0.0)
