"""VGG16 / VGG19 feature extractors with named taps (torchvision ``features`` layout)."""

from __future__ import annotations

import torch
from torch import nn

# Conv widths per block; "M" is a 2x2 max-pool. Same layer order as torchvision.
_LAYOUTS: dict[int, tuple[tuple[int, ...], ...]] = {
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


def scaled_width(width: int, width_multiplier: float) -> int:
    """A conv width times the multiplier, rounded, at least 1."""
    return max(1, round(width * width_multiplier))


class VGGFeatures(nn.Module):
    """Convolutional part of VGG, truncated after the last requested tap.

    Taps are named ``relu<block>_<conv>`` (e.g. ``relu4_3``). With ``width_multiplier=1``
    the module indices of ``self.features`` equal torchvision's, so its state dicts load.
    """

    def __init__(self, depth: int, taps: tuple[str, ...], width_multiplier: float = 1.0) -> None:
        super().__init__()
        if depth not in _LAYOUTS:
            raise ValueError(f"VGG depth must be 16 or 19, got {depth}")
        if not taps:
            raise ValueError("at least one tap is needed")
        self.depth = depth
        self.taps = tuple(taps)
        self.width_multiplier = width_multiplier
        layers: list[nn.Module] = []
        tap_index: dict[str, int] = {}
        in_channels = 3
        for block, widths in enumerate(_LAYOUTS[depth], start=1):
            if block > 1:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for conv, width in enumerate(widths, start=1):
                out_channels = scaled_width(width, width_multiplier)
                layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
                layers.append(nn.ReLU(inplace=False))
                tap_index[f"relu{block}_{conv}"] = len(layers) - 1
                in_channels = out_channels
        unknown = [t for t in self.taps if t not in tap_index]
        if unknown:
            raise ValueError(f"unknown VGG{depth} taps {unknown}; valid: {sorted(tap_index)}")
        last = max(tap_index[t] for t in self.taps)
        self.features = nn.Sequential(*layers[: last + 1])
        self._tap_positions = {tap_index[t]: t for t in self.taps}
        self.tap_channels = tuple(self.features[tap_index[t] - 1].out_channels for t in self.taps)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the tap activations, in the order of ``self.taps``."""
        found: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            name = self._tap_positions.get(index)
            if name is not None:
                found[name] = x
        return [found[t] for t in self.taps]
