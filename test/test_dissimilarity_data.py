"""The dissimilarity training-data generator: instance swaps, void anomalies and the cache."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from training_helpers import TINY_CONFIG, single_torch_thread

from synboost_ros.classes import CLASS_NAMES, label_ids_to_train_ids
from synboost_ros.config import InputNormalization
from synboost_ros.model_loading import random_model, rebuilt_model
from synboost_ros.preprocessing import to_uint8_image
from synboost_ros.training.dissimilarity import DissimilarityTrainSet
from synboost_ros.training.dissimilarity_data import (
    DissimilarityCache,
    GeneratorSettings,
    anomaly_label,
    cache_key,
    generate_examples,
    load_example,
    swap_instances,
    swap_target,
)
from synboost_ros.training.inference_maps import MapExtractor
from synboost_ros.training.runtime import Runtime
from synboost_ros.training.sampling import sample_rng

single_thread = pytest.fixture(scope="module", autouse=True)(single_torch_thread)

HEIGHT, WIDTH = TINY_CONFIG.synthesis_size  # samples at the synthesis size: no resampling
CAR, PERSON, ROAD, BUILDING, STATIC, UNLABELED = 26, 24, 7, 11, 4, 0
CPU = Runtime(device=torch.device("cpu"), amp=False)


def make_sample(seed: int = 0, stem: str = "frame") -> SimpleNamespace:
    """Road and building, two car and one person instance, a crowd car, void and unlabeled."""
    label_ids = np.full((HEIGHT, WIDTH), BUILDING, np.uint8)
    label_ids[16:] = ROAD
    instance_ids = label_ids.astype(np.int32).copy()
    for instance_id, (rows, cols) in {
        CAR * 1000: (slice(15, 22), slice(2, 15)),
        CAR * 1000 + 1: (slice(17, 25), slice(20, 35)),
        PERSON * 1000: (slice(10, 25), slice(40, 44)),
    }.items():
        label_ids[rows, cols] = instance_id // 1000
        instance_ids[rows, cols] = instance_id
    label_ids[25:30, 50:60] = CAR  # a crowd region: class car, no instance id
    instance_ids[25:30, 50:60] = CAR
    label_ids[3:8, 3:13] = STATIC
    instance_ids[3:8, 3:13] = STATIC
    label_ids[0:2, :] = UNLABELED
    instance_ids[0:2, :] = UNLABELED
    rng = np.random.default_rng(seed)
    return SimpleNamespace(
        image=rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
        train_ids=label_ids_to_train_ids(label_ids),
        label_ids=label_ids,
        instance_ids=instance_ids,
        stem=stem,
    )


def instance_masks(sample: SimpleNamespace) -> list[np.ndarray]:
    return [sample.instance_ids == i for i in np.unique(sample.instance_ids) if i >= 1000]


@pytest.fixture(scope="module")
def extractor() -> MapExtractor:
    return MapExtractor(random_model(TINY_CONFIG, seed=3), torch.device("cpu"))


def test_swap_changes_only_whole_thing_instances_and_labels_exactly_them() -> None:
    sample = make_sample()
    masks = instance_masks(sample)
    counts = set()
    for seed in range(20):
        altered, swapped = swap_instances(
            sample.train_ids, sample.label_ids, sample.instance_ids, np.random.default_rng(seed)
        )
        changed = altered != sample.train_ids
        assert np.array_equal(changed, swapped)  # never swapped to the same class
        touched = [mask for mask in masks if swapped[mask].any()]
        assert all(swapped[mask].all() for mask in touched)  # whole instances only
        assert np.array_equal(swapped, np.logical_or.reduce([*touched, np.zeros_like(swapped)]))
        counts.add(len(touched))
        label = anomaly_label(sample.train_ids, swapped)
        assert np.array_equal(label == 1, swapped)
        assert np.array_equal(label == 255, (sample.train_ids == 255) & ~swapped)
        assert set(np.unique(label).tolist()) <= {0, 1, 255}
    assert counts == {1, 2, 3}  # a random number of the three instances


def test_swap_target_is_never_the_same_class_and_favours_cars() -> None:
    rng = np.random.default_rng(0)
    person = CLASS_NAMES.index("person")
    draws = Counter(swap_target(person, rng) for _ in range(3000))
    assert person not in draws
    car, road = CLASS_NAMES.index("car"), CLASS_NAMES.index("road")
    assert draws.most_common(1)[0][0] == car
    assert draws[road] > 2 * draws[CLASS_NAMES.index("sky")]


def test_void_example_uses_predicted_maps_and_marks_void_objects(extractor) -> None:
    sample = make_sample()
    examples = generate_examples(
        sample, extractor, GeneratorSettings(("void",)), sample_rng(0, 0, 0)
    )
    assert set(examples) == {"void"}
    void = examples["void"]
    maps = extractor(sample.image)  # what the inference pipeline would compute
    assert np.array_equal(void.semantic, maps.semantic)
    assert np.array_equal(void.image, sample.image)
    assert np.array_equal(void.synthesized, to_uint8_image(maps.synthesized))
    np.testing.assert_allclose(void.uncertainty[0], maps.entropy, atol=1e-6)
    np.testing.assert_allclose(void.uncertainty[1], maps.perceptual, atol=1e-6)
    np.testing.assert_allclose(void.uncertainty[2], maps.distance, atol=1e-6)
    assert np.array_equal(void.label == 1, sample.label_ids == STATIC)
    assert np.array_equal(void.label == 255, sample.label_ids == UNLABELED)


def test_swap_example_pairs_real_image_with_synthesis_of_the_altered_map(extractor) -> None:
    sample = make_sample()
    settings = GeneratorSettings(("swap",))
    swap = generate_examples(sample, extractor, settings, np.random.default_rng(5))["swap"]
    altered, swapped = swap_instances(
        sample.train_ids, sample.label_ids, sample.instance_ids, np.random.default_rng(5)
    )
    assert np.array_equal(swap.semantic, altered)
    assert np.array_equal(swap.image, sample.image)  # the real image
    assert np.array_equal(swap.synthesized, to_uint8_image(extractor.synthesize(altered)))
    assert np.array_equal(swap.label == 1, swapped)
    predicted = extractor.segment(sample.image)  # uncertainty of the real image
    np.testing.assert_allclose(swap.uncertainty[0], predicted.entropy, atol=1e-6)
    np.testing.assert_allclose(swap.uncertainty[2], predicted.distance, atol=1e-6)


class CountingExtractor(MapExtractor):
    """Counts synthesis calls (one per generated example)."""

    calls = 0

    def synthesize(self, semantic: np.ndarray) -> np.ndarray:
        CountingExtractor.calls += 1
        return super().synthesize(semantic)


def test_cache_is_reused_without_recomputation(tmp_path) -> None:
    model = random_model(TINY_CONFIG, seed=3)
    extractor = CountingExtractor(model, torch.device("cpu"))
    samples = [make_sample(seed, f"frame{seed}") for seed in range(2)]
    settings = GeneratorSettings(seed=1)
    key = cache_key(model, settings, "test-data")
    cache = DissimilarityCache(tmp_path, key)
    CountingExtractor.calls = 0
    first = cache.build(samples, extractor, settings, CPU)
    assert CountingExtractor.calls == 4  # swap + void for each frame
    second = cache.build(samples, extractor, settings, CPU)
    assert CountingExtractor.calls == 4  # second epoch / run: read from disk only
    assert first == second
    assert [e.source for e in first] == ["swap", "void", "swap", "void"]
    stored = load_example(first[1].path)
    assert np.array_equal(stored.label == 1, samples[0].label_ids == STATIC)
    assert first[1].anomaly_pixels == int((stored.label == 1).sum())
    other_model = random_model(TINY_CONFIG, seed=4)
    assert cache_key(other_model, settings, "test-data") != key
    assert cache_key(model, GeneratorSettings(("void",), seed=1), "test-data") != key
    bgr = InputNormalization("bgr", 255.0, (104.0, 116.7, 122.7), (1.0, 1.0, 1.0))
    for field in ("segmentation_normalization", "perceptual_normalization"):
        renormalized = rebuilt_model(model, model.config.replace(**{field: bgr}))
        assert cache_key(renormalized, settings, "test-data") != key, field


def test_train_set_mirrors_all_inputs_together(tmp_path, extractor) -> None:
    settings = GeneratorSettings(("void",))
    cache = DissimilarityCache(tmp_path, "key")
    examples = cache.build([make_sample()], extractor, settings, CPU)
    dataset = DissimilarityTrainSet(examples, seed=0)
    stored = load_example(examples[0].path)
    flipped_epochs = 0
    for epoch in range(6):
        item = dataset[(0, epoch)]
        flip = not np.array_equal(item["label"].numpy(), stored.label)
        flipped_epochs += flip
        expect = (lambda a: a[..., ::-1]) if flip else (lambda a: a)
        assert np.array_equal(item["label"].numpy(), expect(stored.label))
        assert np.array_equal(item["semantic"].numpy(), expect(stored.semantic))
        np.testing.assert_allclose(item["uncertainty"].numpy(), expect(stored.uncertainty))
        image = (item["image"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        assert np.array_equal(image, expect(stored.image.transpose(2, 0, 1)).transpose(1, 2, 0))
    assert 0 < flipped_epochs < 6
