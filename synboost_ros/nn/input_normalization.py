"""A network's input normalisation applied to an RGB image tensor in [0, 1]."""

from __future__ import annotations

import torch

from synboost_ros.config import InputNormalization


def normalize_input(image: torch.Tensor, normalization: InputNormalization) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> the input ``normalization`` describes: channels in its
    order, then (x * scale - mean) / std per channel."""
    if normalization.channel_order == "bgr":
        image = image.flip(1)
    if normalization.scale != 1.0:
        image = image * normalization.scale
    mean = image.new_tensor(normalization.mean).view(1, 3, 1, 1)
    std = image.new_tensor(normalization.std).view(1, 3, 1, 1)
    return (image - mean) / std
