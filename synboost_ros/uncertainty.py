"""Uncertainty maps of the paper (eqs. 1-3) as export-friendly torch ops.

Normalisation (fixed, identical in training and inference, never per image):
- entropy: divided by log2(C), so a uniform softmax gives 1 and a one-hot gives 0;
- distance: 1 - p_max + p_second, already in [0, 1];
- perceptual difference V: mapped by 1 - exp(-V / scale), monotone onto [0, 1); ``scale``
  is part of the model configuration (``PipelineConfig.perceptual_scale``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.nn.vgg import VGGFeatures

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Official perceptual-difference taps of VGG19 and their weights.
PERCEPTUAL_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PERCEPTUAL_TAP_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

_PROBABILITY_FLOOR = 1e-12


def imagenet_normalize(image: torch.Tensor) -> torch.Tensor:
    """Normalise an RGB tensor in [0, 1] with ImageNet statistics."""
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the class axis, written out (exp / sum): much faster in ONNX Runtime."""
    exp = torch.exp(logits - logits.amax(dim=1, keepdim=True))
    return exp / exp.sum(dim=1, keepdim=True)


def softmax_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Normalised softmax entropy (eq. 1 / log2 C): (N, C, H, W) -> (N, 1, H, W) in [0, 1]."""
    num_classes = probs.shape[1]
    entropy = -(probs * torch.log2(probs.clamp_min(_PROBABILITY_FLOOR))).sum(dim=1, keepdim=True)
    return (entropy / math.log2(num_classes)).clamp(0.0, 1.0)


def softmax_distance(probs: torch.Tensor) -> torch.Tensor:
    """Softmax distance (eq. 2): 1 - p_max + p_second, (N, C, H, W) -> (N, 1, H, W)."""
    return distance_from_top2(torch.topk(probs, k=2, dim=1).values)


def distance_from_top2(top2: torch.Tensor) -> torch.Tensor:
    """Softmax distance from the two largest probabilities, (N, 2, H, W) -> (N, 1, H, W)."""
    return (1.0 - top2[:, :1] + top2[:, 1:2]).clamp(0.0, 1.0)


class PerceptualDifference(nn.Module):
    """Eq. 3: weighted sum over VGG19 taps of the channel-mean L1 feature difference."""

    def __init__(self, width_multiplier: float = 1.0, scale: float = 1.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"perceptual scale must be positive, got {scale}")
        self.vgg = VGGFeatures(19, PERCEPTUAL_TAPS, width_multiplier)
        self.scale = scale

    def forward(self, image: torch.Tensor, synthesized: torch.Tensor) -> torch.Tensor:
        """Both inputs RGB in [0, 1], (N, 3, H, W); returns (N, 1, H, W) in [0, 1)."""
        return 1.0 - torch.exp(-self.raw_difference(image, synthesized) / self.scale)

    def raw_difference(self, image: torch.Tensor, synthesized: torch.Tensor) -> torch.Tensor:
        """V of eq. 3 before normalisation, (N, 1, H, W), >= 0."""
        size = image.shape[-2:]
        pair = imagenet_normalize(torch.cat([image, synthesized], dim=0))
        difference = image.new_zeros((image.shape[0], 1, *size))
        for weight, features in zip(PERCEPTUAL_TAP_WEIGHTS, self.vgg(pair), strict=True):
            real, fake = features.chunk(2, dim=0)
            tap = (real - fake).abs().mean(dim=1, keepdim=True)
            if tap.shape[-2:] != size:
                tap = F.interpolate(tap, size=size, mode="bicubic", align_corners=False)
            difference = difference + weight * tap
        return difference.clamp_min(0.0)
