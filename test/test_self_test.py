"""The start-up self-test: a generated frame through the real pipeline, outputs checked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from synboost_ros.pipeline import AnomalyPipeline, PipelineResult
from synboost_ros.self_test import SELF_TEST_SIZE, output_problems, run_self_test, self_test_image


def nan_weights(folder):
    """A proper weights folder (manifest, hashes) whose segmentation tensors are all NaN."""
    from synboost_ros.config import get_preset
    from synboost_ros.model_loading import random_model
    from synboost_ros.weights import save_weights

    model = random_model(get_preset("edge"))
    with torch.no_grad():
        for tensor in model.segmentation.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(float("nan"))
    save_weights(model, folder)
    return folder


def test_the_generated_frame_is_a_street():
    image = self_test_image()
    assert image.shape == (*SELF_TEST_SIZE, 3) and image.dtype == np.uint8
    assert image.std() > 10  # not a blank frame


def test_random_weights_pass_and_a_tiny_budget_is_reported_as_slow(torch_pipeline):
    result = run_self_test(torch_pipeline, budget_ms=1e6)
    assert result.passed and result.within_budget, result.describe()
    assert result.describe().startswith("passed: ") and result.latency_ms > 0
    slow = run_self_test(torch_pipeline, budget_ms=1e-3)
    assert slow.passed and not slow.within_budget
    assert "passed, but slow" in slow.describe() and "latency_budget_ms 0.001" in slow.describe()


def test_weights_that_give_nan_fail(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = AnomalyPipeline.create(
            "edge", weights=nan_weights(tmp_path / "nan"), backend="torch", device="cpu"
        )
    result = run_self_test(pipeline, budget_ms=1e6)
    assert not result.passed
    text = result.describe()
    assert text.startswith("failed: ") and "entropy has" in text and "non-finite" in text


def test_each_broken_output_is_named():
    size = (4, 6)
    good = PipelineResult(
        semantic=np.zeros(size, np.uint8),
        entropy=np.zeros(size, np.float32),
        distance=np.zeros(size, np.float32),
        perceptual=np.zeros(size, np.float32),
        dissimilarity=np.zeros(size, np.float32),
        anomaly=np.zeros(size, np.float32),
        synthesized=np.zeros((*size, 3), np.uint8),
    )
    assert output_problems(good, size) == []
    good.anomaly = np.full(size, 1.5, np.float32)
    good.semantic = np.full(size, 19, np.uint8)
    good.perceptual = None
    good.distance = np.zeros((3, 6), np.float32)
    problems = output_problems(good, size)
    assert problems == [
        "semantic has class id 19 >= 19",
        "distance is (3, 6), not the frame's (4, 6)",
        "perceptual is missing",
        "anomaly leaves [0, 1]: 1.5..1.5",
    ]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_maps_are_counted(bad):
    result = PipelineResult(anomaly=np.array([[0.1, bad]], np.float32))
    assert "anomaly has 1 non-finite values of 2" in output_problems(result, (1, 2))
