"""Uncertainty maps of the paper (eqs. 1-2) as export-friendly torch ops.

Normalisation (fixed, identical in training and inference, never per image):
- entropy: divided by log2(C), so a uniform softmax gives 1 and a one-hot gives 0;
- distance: 1 - p_max + p_second, already in [0, 1];
- perceptual difference V (eq. 3, ``nn.perceptual.PerceptualDifference``): mapped by
  1 - exp(-V / scale), monotone onto [0, 1); ``scale`` is part of the model configuration
  (``PipelineConfig.perceptual_scale``).

``segmentation_maps`` computes class ids, entropy and distance from the logits in one pass,
as the segmentation stage runs them; the per-map functions are the same definitions written
from the probabilities.
"""

from __future__ import annotations

import math

import torch

_PROBABILITY_FLOOR = 1e-12


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


def segmentation_maps(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class ids (int32), normalised entropy and distance from (N, C, H, W) logits.

    With s = logits - max and Z = sum exp(s): p_max = 1 / Z, p_second = exp(s_second) / Z and
    the entropy is ln Z - sum(exp(s) * s) / Z nats, so one log and one division per pixel
    replace C of each (the probabilities' log, division and clipping were most of the
    segmentation stage's time in ONNX Runtime). Equal to ``softmax_entropy`` and
    ``softmax_distance`` of the softmax within fp32 rounding.
    """
    top2 = torch.topk(logits, k=2, dim=1)
    shifted = logits - top2.values[:, :1]
    exp = torch.exp(shifted)
    total = exp.sum(dim=1, keepdim=True)
    nats = torch.log(total) - (exp * shifted).sum(dim=1, keepdim=True) / total
    entropy = (nats / math.log(logits.shape[1])).clamp(0.0, 1.0)
    second = torch.exp(top2.values[:, 1:2] - top2.values[:, :1])
    distance = ((total - 1.0 + second) / total).clamp(0.0, 1.0)
    return top2.indices[:, 0].to(torch.int32), entropy, distance
