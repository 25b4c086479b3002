"""One preprocessing path: its interpolation rules, and identical network inputs in the
inference pipeline and in training."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from training_helpers import TINY_CONFIG, single_torch_thread

from synboost_ros.backends.base import Backend
from synboost_ros.backends.torch_backend import TorchBackend
from synboost_ros.model_loading import random_model
from synboost_ros.pipeline import AnomalyPipeline
from synboost_ros.preprocessing import (
    image_array,
    network_input,
    resize_image,
    resize_labels,
    resize_map,
    to_uint8_image,
)
from synboost_ros.training.augment import random_scale_crop
from synboost_ros.training.inference_maps import InferenceMaps, MapExtractor, image_tensor

single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("source", "target", "interpolation"),
    [
        ((100, 200), (50, 80), cv2.INTER_AREA),  # both sides shrink
        ((100, 200), (100, 80), cv2.INTER_AREA),  # one side kept, one shrinks
        ((40, 60), (50, 80), cv2.INTER_LINEAR),  # both sides grow
        ((100, 60), (50, 80), cv2.INTER_LINEAR),  # one side grows
    ],
)
def test_images_shrink_with_area_and_grow_bilinear(source, target, interpolation) -> None:
    image = _image(*source)
    expected = cv2.resize(image, target[::-1], interpolation=interpolation)
    assert np.array_equal(resize_image(image, target), expected)


def test_same_size_is_returned_unchanged() -> None:
    image = _image(30, 40)
    assert resize_image(image, (30, 40)) is image
    labels = image[..., 0]
    assert resize_labels(labels, (30, 40)) is labels


def test_labels_are_nearest_and_maps_bilinear_then_clipped() -> None:
    labels = np.random.default_rng(1).integers(0, 19, (20, 30), dtype=np.uint8)
    nearest = cv2.resize(labels, (45, 10), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(resize_labels(labels, (10, 45)), nearest)
    plane = np.random.default_rng(2).uniform(-0.5, 1.5, (20, 30)).astype(np.float32)
    bilinear = np.clip(cv2.resize(plane, (45, 10), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    for batch_map in (plane, plane[None], plane[None, None]):
        resized = resize_map(batch_map, (10, 45))
        assert resized.dtype == np.float32 and np.array_equal(resized, bilinear)
    kept = resize_map(plane.astype(np.float64), (20, 30))
    assert kept.dtype == np.float32 and kept.min() == 0.0 and kept.max() == 1.0


def test_image_array_is_contiguous_chw_in_unit_range() -> None:
    image = _image(5, 7)
    array = image_array(image)
    assert array.shape == (1, 3, 5, 7) and array.dtype == np.float32
    assert array.flags.c_contiguous
    assert np.array_equal(array[0, 2, 3, 4], np.float32(image[3, 4, 2]) * np.float32(1 / 255))
    assert torch.equal(image_tensor(image), torch.from_numpy(array))


def test_to_uint8_image_clips_rounds_and_is_hwc() -> None:
    chw = np.array([-0.5, 0.0, 0.1, 0.5, 1.0, 1.7], dtype=np.float32).reshape(1, 1, 6)
    chw = np.concatenate([chw, chw * 0.0, 1.0 - chw])
    image = to_uint8_image(chw)
    assert image.shape == (1, 6, 3) and image.dtype == np.uint8
    assert image[0, :, 0].tolist() == [0, 0, 26, 128, 255, 255]
    assert image[0, :, 1].tolist() == [0] * 6
    assert image[0, :, 2].tolist() == [255, 255, 230, 128, 0, 0]
    assert np.array_equal(to_uint8_image(image_array(image)[0]), image)


class RecordingBackend(Backend):
    """Delegates to a backend and keeps a copy of every stage's inputs."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.inputs: dict[str, dict[str, np.ndarray]] = {}

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.inputs[stage] = {name: np.array(value, copy=True) for name, value in inputs.items()}
        return self.backend.run(stage, inputs)


def _recorded_segmentation_input(
    extractor: MapExtractor, image: np.ndarray
) -> tuple[np.ndarray, InferenceMaps]:
    seen: list[np.ndarray] = []
    hook = extractor.segmentation.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].cpu().numpy().copy())
    )
    try:
        maps = extractor(image)
    finally:
        hook.remove()
    assert len(seen) == 1
    return seen[0], maps


# shrinking both stage sizes; growing to one and shrinking to the other; one side growing
@pytest.mark.parametrize("size", [(375, 1242), (150, 300), (40, 60)])
def test_pipeline_and_training_feed_the_networks_identical_inputs(size) -> None:
    model = random_model(TINY_CONFIG, seed=4)
    config = model.config
    recorder = RecordingBackend(TorchBackend(model))
    pipeline = AnomalyPipeline(config, recorder)
    extractor = MapExtractor(model, torch.device("cpu"))
    image = _image(*size, seed=size[0])

    pipeline(image)
    training_seg_input, maps = _recorded_segmentation_input(extractor, image)
    seg = recorder.inputs["segmentation"]["image"]
    assert seg.dtype == training_seg_input.dtype == np.float32
    assert np.array_equal(seg, training_seg_input)
    assert np.array_equal(seg, network_input(image, config.segmentation_size))

    dis = recorder.inputs["dissimilarity"]
    assert np.array_equal(dis["image"], image_tensor(maps.image).numpy())
    assert np.array_equal(dis["semantic"][0], maps.semantic.astype(np.int32))
    assert np.array_equal(dis["entropy"][0, 0], maps.entropy)
    assert np.array_equal(dis["distance"][0, 0], maps.distance)
    assert np.array_equal(recorder.inputs["synthesis"]["semantic"][0], maps.semantic)


def test_segmentation_training_crop_at_factor_one_is_the_inference_input() -> None:
    image = _image(375, 1242)
    labels = np.zeros(image.shape[:2], dtype=np.uint8)
    size = TINY_CONFIG.segmentation_size
    rng = np.random.default_rng(0)
    crop, _ = random_scale_crop(image, labels, size, (1.0, 1.0), rng)
    assert np.array_equal(image_array(crop), network_input(image, size))
