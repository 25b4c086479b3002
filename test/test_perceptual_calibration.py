"""Perceptual-scale calibration: the chosen scale puts the quantile where it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synboost_ros.config import get_preset
from synboost_ros.model_loading import random_model
from synboost_ros.nn.perceptual import PerceptualDifference
from synboost_ros.training.perceptual_calibration import (
    calibrate_perceptual_scale,
    raw_perceptual_differences,
)

TINY = get_preset("edge").replace(segmentation_size=(192, 256), synthesis_size=(64, 128))


def _images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(count)]


def test_forward_is_the_normalised_raw_difference() -> None:
    torch.manual_seed(0)
    module = PerceptualDifference(width_multiplier=0.125, scale=0.5).eval()
    a, b = torch.rand(1, 3, 32, 64), torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        expected = 1.0 - torch.exp(-module.raw_difference(a, b) / 0.5)
        assert torch.allclose(module(a, b), expected)


def test_calibrated_scale_maps_the_quantile_to_one_minus_1_over_e() -> None:
    model = random_model(TINY)
    images = _images(2)
    calibrated = calibrate_perceptual_scale(model, images, quantile=0.9)
    raw = raw_perceptual_differences(model, images)
    scale = calibrated.config.perceptual_scale
    assert scale == pytest.approx(float(np.quantile(raw, 0.9)))
    assert calibrated.perceptual.scale == scale
    normalised = 1.0 - np.exp(-raw / scale)
    assert np.mean(normalised <= 1.0 - np.exp(-1.0)) == pytest.approx(0.9, abs=1e-3)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, calibrated.state_dict()[name]), name


@pytest.mark.parametrize("quantile", [0.0, 1.0, 1.5])
def test_quantile_outside_the_open_unit_interval_is_refused(quantile: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        calibrate_perceptual_scale(random_model(TINY), _images(1), quantile=quantile)
