"""Training losses: hinge GAN, feature matching, perceptual (VGG19 or EfficientNet-Lite0
features), class weights, ICNet guidance."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synboost_ros.classes import IGNORE_ID
from synboost_ros.config import (
    IMAGENET_NORMALIZATION,
    LITE0_NORMALIZATION,
    InputNormalization,
)
from synboost_ros.nn.efficientnet_lite import EfficientNetLite0
from synboost_ros.nn.icnet import CASCADE_LOSS_WEIGHTS, ICNetTrainingOutput
from synboost_ros.nn.input_normalization import normalize_input
from synboost_ros.nn.perceptual import (
    LITE0_PERCEPTUAL_TAPS,
    PERCEPTUAL_TAP_WEIGHTS,
    PERCEPTUAL_TAPS,
)
from synboost_ros.nn.vgg import VGGFeatures

# Lite0 loss weights of the strides 2, 4, 8, 16 taps: SPADE's VGG19 loss weights by stride.
LITE0_LOSS_TAP_WEIGHTS = (1 / 16, 1 / 8, 1 / 4, 1.0)
# Per-scale discriminator outputs: a list of layer features whose last entry is the logits.
DiscriminatorOutput = Sequence[Sequence[torch.Tensor]]


def hinge_discriminator_loss(
    real_outputs: DiscriminatorOutput, fake_outputs: DiscriminatorOutput
) -> torch.Tensor:
    """Hinge loss of the discriminator, mean over scales: relu(1 - D(real)) + relu(1 + D(fake))."""
    _check_scales(real_outputs, fake_outputs)
    total = 0.0
    for real, fake in zip(real_outputs, fake_outputs, strict=True):
        real_term = F.relu(1.0 - real[-1].float()).mean()
        total = total + real_term + F.relu(1.0 + fake[-1].float()).mean()
    return total / len(real_outputs)


def hinge_generator_loss(fake_outputs: DiscriminatorOutput) -> torch.Tensor:
    """Hinge loss of the generator, mean over scales: -D(fake)."""
    if not fake_outputs:
        raise ValueError("need at least one discriminator scale")
    total = 0.0
    for fake in fake_outputs:
        total = total - fake[-1].float().mean()
    return total / len(fake_outputs)


def feature_matching_loss(
    fake_outputs: DiscriminatorOutput, real_outputs: DiscriminatorOutput
) -> torch.Tensor:
    """L1 between the discriminator's intermediate features on fake and (detached) real inputs.

    Summed over the intermediate layers (all but the logits) and averaged over scales.
    """
    _check_scales(real_outputs, fake_outputs)
    total = 0.0
    for fake, real in zip(fake_outputs, real_outputs, strict=True):
        if len(fake) != len(real) or len(fake) < 2:
            raise ValueError("each scale needs the same number (>= 2) of fake and real features")
        for fake_feature, real_feature in zip(fake[:-1], real[:-1], strict=True):
            total = total + F.l1_loss(fake_feature.float(), real_feature.detach().float())
    return total / len(fake_outputs)


class FeaturePerceptualLoss(nn.Module):
    """pix2pixHD / SPADE perceptual loss: sum over taps of w_i * L1(F_i(x), F_i(y)).

    ``features`` is a frozen network returning a list of tap features; inputs are images in
    [-1, 1] (generator range), mapped to [0, 1] and given the network's input ``normalization``.
    The network stays in eval mode (fixed batch-norm statistics) whatever the parent does.
    """

    def __init__(
        self,
        features: nn.Module,
        tap_weights: Sequence[float],
        normalization: InputNormalization,
    ) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.tap_weights = tuple(tap_weights)
        self.normalization = normalization

    def train(self, mode: bool = True) -> FeaturePerceptualLoss:
        """Keep the feature network in eval mode whatever the parent module does."""
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted L1 feature distance between ``generated`` and ``target`` (N, 3, H, W)."""
        pair = (torch.cat([generated, target.detach()], dim=0) + 1.0) * 0.5
        pair = normalize_input(pair, self.normalization)
        total = 0.0
        for weight, features in zip(self.tap_weights, self.features(pair), strict=True):
            fake, real = features.float().chunk(2, dim=0)
            total = total + weight * F.l1_loss(fake, real.detach())
        return total


class VGGPerceptualLoss(FeaturePerceptualLoss):
    """SPADE's VGG loss: VGG19 relu1_1..relu5_1, tap weights 1/32, 1/16, 1/8, 1/4, 1."""

    def __init__(
        self, vgg: VGGFeatures, normalization: InputNormalization = IMAGENET_NORMALIZATION
    ) -> None:
        if vgg.depth != 19 or tuple(vgg.taps) != PERCEPTUAL_TAPS:
            raise ValueError(f"the VGG loss needs a VGG19 with taps {PERCEPTUAL_TAPS}")
        super().__init__(vgg, PERCEPTUAL_TAP_WEIGHTS, normalization)


class Lite0PerceptualLoss(FeaturePerceptualLoss):
    """The same loss on an (ImageNet) EfficientNet-Lite0 trunk: taps at strides 2, 4, 8, 16
    with SPADE's VGG weights of those strides, 1/16, 1/8, 1/4, 1 (deep features count most)."""

    def __init__(
        self,
        trunk: EfficientNetLite0,
        normalization: InputNormalization = LITE0_NORMALIZATION,
    ) -> None:
        if tuple(trunk.taps) != LITE0_PERCEPTUAL_TAPS:
            raise ValueError(f"the Lite0 loss needs a trunk with taps {LITE0_PERCEPTUAL_TAPS}")
        super().__init__(trunk, LITE0_LOSS_TAP_WEIGHTS, normalization)


def enet_class_weights(
    label_histogram: Sequence[float] | np.ndarray, c: float = 1.02
) -> torch.Tensor:
    """ENet class weights w = 1 / ln(c + frequency), frequency = count / total count."""
    counts = np.asarray(label_histogram, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(
            f"need a 1-D histogram of non-negative counts with a positive sum, got {counts}"
        )
    if c <= 1.0:
        raise ValueError(f"c must be > 1 so that ln(c + frequency) > 0, got {c}")
    frequency = counts / counts.sum()
    return torch.tensor([1.0 / math.log(c + f) for f in frequency], dtype=torch.float32)


def downsample_labels(labels: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resize of an (N, H, W) integer label map to ``size``."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    resized = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")
    return resized[:, 0].long()


def cascade_label_guidance_loss(
    output: ICNetTrainingOutput,
    labels: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    ignore_index: int = IGNORE_ID,
) -> torch.Tensor:
    """ICNet cascade label guidance: weighted CE of the main (1/4) and auxiliary heads.

    ``labels`` (N, H, W) are nearest-downsampled to each head's resolution; ``ignore_index``
    pixels do not count. Weights are ``CASCADE_LOSS_WEIGHTS``.
    """
    heads = (output.logits_quarter, *output.aux_logits)
    total = 0.0
    for weight, logits in zip(CASCADE_LOSS_WEIGHTS, heads, strict=True):
        target = downsample_labels(labels, logits.shape[-2:])
        total = total + weight * safe_cross_entropy(logits, target, class_weights, ignore_index)
    return total


def safe_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    ignore_index: int = IGNORE_ID,
) -> torch.Tensor:
    """Weighted mean cross-entropy over non-ignored pixels; 0 (not NaN) when all are ignored."""
    if not bool((target != ignore_index).any()):
        return logits.float().sum() * 0.0
    return F.cross_entropy(logits.float(), target, weight=class_weights, ignore_index=ignore_index)


def _check_scales(real_outputs: DiscriminatorOutput, fake_outputs: DiscriminatorOutput) -> None:
    if not real_outputs or len(real_outputs) != len(fake_outputs):
        raise ValueError(
            f"need the same non-zero number of scales, got {len(real_outputs)} real and "
            f"{len(fake_outputs)} fake"
        )
