"""Entropy, distance, perceptual difference and ensemble: closed-form cases."""

from __future__ import annotations

import pytest
import torch

from synboost_ros.ensemble import validate_weights, weighted_average
from synboost_ros.nn.perceptual import PerceptualDifference
from synboost_ros.uncertainty import (
    class_probabilities,
    segmentation_maps,
    softmax_distance,
    softmax_entropy,
)


def test_entropy_of_uniform_softmax_is_one() -> None:
    probs = torch.full((1, 19, 4, 5), 1 / 19)
    assert torch.allclose(softmax_entropy(probs), torch.ones(1, 1, 4, 5), atol=1e-6)


def test_entropy_of_one_hot_is_zero() -> None:
    probs = torch.zeros(2, 19, 3, 3)
    probs[:, 7] = 1.0
    assert torch.allclose(softmax_entropy(probs), torch.zeros(2, 1, 3, 3), atol=1e-6)


def test_entropy_matches_formula_for_two_classes() -> None:
    probs = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1)
    expected = -(0.25 * torch.log2(torch.tensor(0.25)) + 0.75 * torch.log2(torch.tensor(0.75)))
    assert softmax_entropy(probs).item() == pytest.approx(expected.item(), abs=1e-6)


def test_distance_extremes() -> None:
    one_hot = torch.zeros(1, 19, 1, 1)
    one_hot[0, 3] = 1.0
    tie = torch.zeros(1, 19, 1, 1)
    tie[0, 3] = tie[0, 5] = 0.5
    assert softmax_distance(one_hot).item() == pytest.approx(0.0, abs=1e-7)
    assert softmax_distance(tie).item() == pytest.approx(1.0, abs=1e-7)
    mixed = torch.zeros(1, 19, 1, 1)
    mixed[0, 0], mixed[0, 1], mixed[0, 2] = 0.6, 0.3, 0.1
    assert softmax_distance(mixed).item() == pytest.approx(1 - 0.6 + 0.3, abs=1e-6)


def test_perceptual_difference_is_zero_for_identical_images_and_grows() -> None:
    torch.manual_seed(0)
    module = PerceptualDifference(width_multiplier=0.125).eval()
    image = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        same = module(image, image)
        other = module(image, 1.0 - image)
    assert same.shape == (1, 1, 32, 64)
    assert torch.all(same.abs() < 1e-6)
    assert other.mean() > 0.0
    assert torch.all((other >= 0) & (other < 1))


def test_ensemble_is_l1_normalised_weighted_average() -> None:
    a, b = torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), 0.0)
    out = weighted_average([a, b], torch.tensor([3.0, 1.0]))
    assert torch.allclose(out, torch.full((1, 1, 2, 2), 0.75))


@pytest.mark.parametrize("bad", [(1, 1, 1), (0, 0, 0, 0), (-1, 1, 0, 0), (float("nan"), 1, 0, 0)])
def test_invalid_ensemble_weights_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="ensemble weights"):
        validate_weights(bad)


def test_explicit_softmax_equals_torch_softmax() -> None:
    logits = torch.randn(2, 19, 5, 7) * 10
    assert torch.allclose(class_probabilities(logits), torch.softmax(logits, dim=1), atol=1e-6)


@pytest.mark.parametrize("spread", [0.1, 3.0, 40.0])
def test_segmentation_maps_equal_the_probability_definitions(spread):
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 19, 16, 24, generator=generator) * spread
    logits[0, :, 0, 0] = 0.0  # a full tie: entropy 1, distance 1
    semantic, entropy, distance = segmentation_maps(logits)
    probs = torch.softmax(logits, dim=1)
    assert torch.equal(semantic, torch.topk(probs, k=2, dim=1).indices[:, 0].to(torch.int32))
    assert semantic.dtype == torch.int32
    assert torch.allclose(entropy, softmax_entropy(probs), atol=2e-6)
    assert torch.allclose(distance, softmax_distance(probs), atol=2e-6)
    assert entropy[0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert distance[0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-6)
