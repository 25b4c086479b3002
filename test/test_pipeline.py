"""AnomalyPipeline: sizes, ranges, batches, determinism and backend parity."""

from __future__ import annotations

import numpy as np
import pytest

from synboost_ros.pipeline import OUTPUT_NAMES, InvalidImageError
from synboost_ros.postprocess.options import PostprocessOptions
from synboost_ros.postprocess.temporal import TemporalFusion
from synboost_ros.stage_io import stage_specs

FLOAT_MAPS = ("entropy", "distance", "perceptual", "dissimilarity", "anomaly")


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(375, 1242), (720, 1280), (2, 2), (257, 31)])
def test_every_map_has_input_size_and_range(torch_pipeline, size) -> None:
    result = torch_pipeline(_image(*size))
    assert result.semantic.shape == size and result.semantic.dtype == np.uint8
    assert result.semantic.max() < torch_pipeline.config.num_classes
    for name in FLOAT_MAPS:
        values = getattr(result, name)
        assert values.shape == size and values.dtype == np.float32, name
        assert np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0, name
    assert result.synthesized.shape == (*size, 3) and result.synthesized.dtype == np.uint8
    for stage in ("preprocess", "segmentation", "synthesis", "dissimilarity", "total"):
        assert result.timings_ms[stage] >= 0.0


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 5, 3), np.uint8), "image is empty: 5x0 pixels"),
        (np.zeros((4, 0, 3), np.uint8), "image is empty: 0x4 pixels"),
        (np.zeros((8, 8), np.uint8), "HxWx3"),
        (np.zeros((8, 8, 4), np.uint8), "HxWx3"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_images_are_refused_clearly(torch_pipeline, image, message) -> None:
    with pytest.raises(InvalidImageError, match=message):
        torch_pipeline(image)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 400, 3), (400, 1, 3)])
def test_a_one_pixel_line_gets_maps_of_its_size(torch_pipeline, shape) -> None:
    image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    temporal = TemporalFusion()
    torch_pipeline.set_postprocess(PostprocessOptions(temporal_fusion=True, drivable_gating=True))
    try:
        for _ in range(2):  # the second frame runs the optical flow
            result = torch_pipeline(image, temporal=temporal)
    finally:
        torch_pipeline.set_postprocess(PostprocessOptions())
    assert result.anomaly.shape == result.semantic.shape == shape[:2]
    assert np.isfinite(result.anomaly).all()


def test_only_requested_outputs_are_returned(torch_pipeline) -> None:
    result = torch_pipeline(_image(64, 96), outputs={"anomaly", "semantic"})
    assert result.anomaly is not None and result.semantic is not None
    assert all(getattr(result, n) is None for n in OUTPUT_NAMES if n not in {"anomaly", "semantic"})
    with pytest.raises(ValueError, match="unknown outputs"):
        torch_pipeline(_image(64, 96), outputs={"nope"})


def test_batch_equals_single_and_runs_are_deterministic(torch_pipeline) -> None:
    images = np.stack([_image(120, 200, seed) for seed in range(2)])
    batch = torch_pipeline.run_batch(images)
    for image, from_batch in zip(images, batch, strict=True):
        single = torch_pipeline(image)
        for name in OUTPUT_NAMES:
            np.testing.assert_array_equal(getattr(single, name), getattr(from_batch, name))
    with pytest.raises(InvalidImageError, match="NxHxWx3"):
        torch_pipeline.run_batch(images[0])


def test_ensemble_weights_change_the_anomaly_map(torch_pipeline) -> None:
    image = _image(64, 128)
    try:
        torch_pipeline.set_ensemble_weights((0, 1, 0, 0))
        entropy_only = torch_pipeline(image)
        np.testing.assert_allclose(entropy_only.anomaly, entropy_only.entropy, atol=1e-4)
        torch_pipeline.set_ensemble_weights((1, 0, 0, 0))
        dissim_only = torch_pipeline(image)
        np.testing.assert_allclose(dissim_only.anomaly, dissim_only.dissimilarity, atol=1e-4)
    finally:
        torch_pipeline.set_ensemble_weights(torch_pipeline.config.ensemble_weights)


def test_onnxruntime_matches_torch_for_every_output(torch_pipeline, onnx_pipeline) -> None:
    image = _image(256, 512, seed=3)
    expected, actual = torch_pipeline(image), onnx_pipeline(image)
    assert np.mean(expected.semantic == actual.semantic) > 0.999
    for name in FLOAT_MAPS:
        assert np.abs(getattr(expected, name) - getattr(actual, name)).max() <= 1e-3, name


def test_each_stage_matches_between_backends(torch_pipeline, onnx_pipeline) -> None:
    rng = np.random.default_rng(1)
    specs = stage_specs(torch_pipeline.config)
    for stage, spec in specs.items():
        inputs = {}
        for tensor in spec.inputs:
            if tensor.dtype is np.int32:
                inputs[tensor.name] = rng.integers(0, 19, tensor.shape, dtype=np.int32)
            else:
                inputs[tensor.name] = rng.random(tensor.shape, dtype=np.float32)
        expected = torch_pipeline.backend.run(stage, inputs)
        actual = onnx_pipeline.backend.run(stage, inputs)
        for tensor in spec.outputs:
            assert actual[tensor.name].shape == tensor.shape
            if tensor.dtype is np.int32:
                assert np.mean(expected[tensor.name] == actual[tensor.name]) > 0.999
            else:
                diff = np.abs(expected[tensor.name] - actual[tensor.name]).max()
                assert diff <= 1e-3, f"{stage}.{tensor.name}: {diff}"
