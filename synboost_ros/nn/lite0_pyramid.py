"""EfficientNet-Lite0 taps as the dissimilarity network's four-level image pyramid.

The fusion levels sit at 1, 1/2, 1/4 and 1/8 of the input, where the VGG16 taps relu1_2,
relu2_2, relu3_3 and relu4_3 are. A Lite0 trunk built to stride 8 gives taps at 1/2 (16
channels), 1/4 (24) and 1/8 (40); each level gets a 1x1 projection of the tap at its stride
to the width asked for, and the full-resolution level a projection of the 1/2 tap upsampled
2x (Lite0 has no stride-1 tap). Weights of the trunk: ``nn/pretrained.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.nn.efficientnet_lite import EfficientNetLite0

# Trunk tap feeding each level, finest level first (the 1/2 tap feeds levels 0 and 1).
LEVEL_TAPS: tuple[int, ...] = (2, 2, 4, 8)
TRUNK_TAPS: tuple[int, ...] = (2, 4, 8)
MAX_STRIDE = max(TRUNK_TAPS)


class Lite0Pyramid(nn.Module):
    """Lite0 trunk to stride 8 plus per-level 1x1 projections to ``widths`` channels.

    ``forward`` returns features at 1, 1/2, 1/4 and 1/8 of the input size, as
    ``VGGFeatures`` does for the VGG16 taps; input sides must divide by 8.
    """

    def __init__(self, widths: Iterable[int]) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) != len(LEVEL_TAPS) or min(widths) < 1:
            raise ValueError(f"need {len(LEVEL_TAPS)} positive widths, got {widths}")
        self.trunk = EfficientNetLite0(TRUNK_TAPS)
        channels = dict(zip(TRUNK_TAPS, self.trunk.tap_channels, strict=True))
        self.project = nn.ModuleList(
            nn.Conv2d(channels[tap], width, kernel_size=1)
            for tap, width in zip(LEVEL_TAPS, widths, strict=True)
        )
        self.tap_channels = widths

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-level features (N, widths[l], H / 2**l, W / 2**l), finest first."""
        taps = dict(zip(TRUNK_TAPS, self.trunk(x), strict=True))
        features = [
            project(taps[tap]) for project, tap in zip(self.project, LEVEL_TAPS, strict=True)
        ]
        features[0] = F.interpolate(
            features[0], scale_factor=2.0, mode="bilinear", align_corners=False
        )
        return features
