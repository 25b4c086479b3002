"""The device-resident pipeline (``device_pipeline``, ``device_ops``) against today's OpenCV
path, on the CPU: the same code runs there as on a GPU.

Tolerances, and why. Shrinking resizes (every camera at least as large as the stage inputs)
reproduce OpenCV exactly: area weights and OpenCV's rounding of its uint8 result, nearest
indices computed as OpenCV does, bilinear maps in float. What is left is float arithmetic in
another order (torch's bilinear against OpenCV's, the stages on inputs of other strides):
measured at most 1.2e-5 on the maps, so ``MAP_TOLERANCE`` = 1e-4; semantic ids identical; the
synthesized image within one level, as OpenCV resizes uint8 images with 11-bit fixed-point
weights and torch in float. A camera smaller than a stage input is enlarged bilinearly, where
OpenCV's fixed-point weights round some pixels one level otherwise (about 12 % of them,
``GROWN_LEVEL_SHARE``); the networks turn such one-level changes into larger ones where a class
boundary moves, so there the maps are compared by their mean (``GROWN_MEAN_TOLERANCE``).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from synboost_ros import device_ops, preprocessing
from synboost_ros.pipeline import AnomalyPipeline
from synboost_ros.postprocess.options import PostprocessOptions
from synboost_ros.self_test import self_test_image

MAP_TOLERANCE = 1e-4
GROWN_LEVEL_SHARE = 0.2
GROWN_MEAN_TOLERANCE = 0.01
FLOAT_MAPS = ("entropy", "distance", "perceptual", "dissimilarity", "anomaly")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shipped() -> AnomalyPipeline:
    """The shipped edge weights on the torch backend, CPU."""
    return AnomalyPipeline.create("edge", backend="torch", device="cpu")


def camera_image(height: int, width: int) -> np.ndarray:
    """The self-test street at a camera size."""
    return cv2.resize(self_test_image(), (width, height), interpolation=cv2.INTER_AREA)


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (area sums with ties and without)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 2)


def run_both(pipeline: AnomalyPipeline, image: np.ndarray, **kwargs):
    pipeline.device_resident = True
    device = pipeline(image, **kwargs)
    pipeline.device_resident = False
    host = pipeline(image, **kwargs)
    return device, host


# --- resizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("camera", "size"),
    [((480, 640), (256, 512)), ((1024, 2048), (256, 512)), ((256, 512), (128, 256))],
)
def test_shrinking_images_labels_and_maps_match_opencv(camera, size):
    image = textured(*camera)
    levels = device_ops.upload_image(image, CPU)
    got = device_ops.resize_image(levels, size)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, preprocessing.resize_image(image, size))
    labels = np.random.default_rng(1).integers(0, 19, camera, dtype=np.uint8)
    got_labels = device_ops.resize_labels(torch.from_numpy(labels)[None], size)[0].numpy()
    np.testing.assert_array_equal(got_labels, preprocessing.resize_labels(labels, size))
    plane = np.random.default_rng(2).random(camera, dtype=np.float32)
    got_plane = device_ops.resize_map(torch.from_numpy(plane)[None, None], size)[0, 0].numpy()
    np.testing.assert_allclose(got_plane, preprocessing.resize_map(plane, size), atol=1e-6)


def test_grown_images_are_within_one_level_of_opencv():
    image = textured(200, 300)
    got = device_ops.resize_image(device_ops.upload_image(image, CPU), (256, 512))
    got = got[0].permute(1, 2, 0).numpy()
    difference = np.abs(got - preprocessing.resize_image(image, (256, 512)).astype(np.float32))
    assert difference.max() <= 1.0
    assert 0.0 < np.mean(difference > 0) < GROWN_LEVEL_SHARE


def test_area_weights_cover_each_output_once():
    weights = device_ops.area_weights(640, 512).numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(weights.sum(), 640 / 1.25, rtol=1e-6)  # each input 1 / scale
    assert np.count_nonzero(weights[0]) == 2  # 1.25 source pixels: one whole, a quarter


def test_levels_round_half_up_and_clip():
    image = torch.tensor([-0.1, 0.5 / 255, 1.5 / 255, 1.2]).reshape(1, 1, 1, 4)
    assert device_ops.image_levels(image).flatten().tolist() == [0.0, 1.0, 2.0, 255.0]


# --- whole frames ----------------------------------------------------------------------------


@pytest.mark.parametrize("camera", [(480, 640), (512, 1024)])
def test_device_frames_match_the_opencv_pipeline(shipped, camera):
    device, host = run_both(shipped, camera_image(*camera))
    for name in FLOAT_MAPS:
        got, want = getattr(device, name), getattr(host, name)
        assert got.dtype == np.float32 and got.shape == camera, name
        np.testing.assert_allclose(got, want, atol=MAP_TOLERANCE, err_msg=name)
    assert device.semantic.dtype == np.uint8
    np.testing.assert_array_equal(device.semantic, host.semantic)
    assert device.synthesized.shape == (*camera, 3) and device.synthesized.dtype == np.uint8
    levels = np.abs(device.synthesized.astype(int) - host.synthesized)
    assert levels.max() <= 1
    assert list(device.timings_ms) == list(host.timings_ms)


def test_a_camera_smaller_than_the_stages_matches_on_average(shipped):
    device, host = run_both(shipped, camera_image(200, 300))
    for name in FLOAT_MAPS:
        difference = np.abs(getattr(device, name) - getattr(host, name))
        assert difference.mean() < GROWN_MEAN_TOLERANCE, name
    assert np.mean(device.semantic == host.semantic) > 0.99


def test_only_the_requested_maps_come_back(shipped):
    shipped.device_resident = True
    result = shipped(camera_image(240, 320), outputs=["anomaly", "semantic"])
    assert result.anomaly.shape == result.semantic.shape == (240, 320)
    assert result.entropy is result.synthesized is result.perceptual is None
    assert set(result.timings_ms) == {
        "preprocess",
        "segmentation",
        "synthesis",
        "dissimilarity",
        "postprocess",
        "total",
    }


def test_temporal_fusion_and_gating_match_through_the_host(shipped):
    options = PostprocessOptions(temporal_fusion=True, drivable_gating=True)
    frames = [camera_image(480, 640), np.roll(camera_image(480, 640), 6, axis=1)]
    results = {}
    for resident in (True, False):
        pipeline = AnomalyPipeline(shipped.config, shipped.backend)
        pipeline.set_postprocess(options)
        pipeline.device_resident = resident
        results[resident] = [pipeline(frame, outputs=["anomaly"]) for frame in frames]
    for device, host in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(device.anomaly, host.anomaly, atol=MAP_TOLERANCE)
        assert {"temporal", "gating"} <= set(device.timings_ms)
    assert not np.allclose(results[True][1].anomaly, results[True][0].anomaly)


def test_torch_on_the_cpu_runs_the_opencv_path_unless_asked(shipped, onnx_pipeline):
    fresh = AnomalyPipeline(shipped.config, shipped.backend)
    assert not fresh.device_resident and fresh.graphs == "off"
    with pytest.raises(ValueError, match="backend onnxruntime cannot keep frames on its device"):
        onnx_pipeline.device_resident = True
