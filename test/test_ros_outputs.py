"""Output rendering without a node: maps needed per topic, images, timing values."""

from __future__ import annotations

import numpy as np
import pytest

from synboost_ros.classes import colorize
from synboost_ros.pipeline import PipelineResult
from synboost_ros.ros.frame_outputs import (
    TOPIC_MAPS,
    RenderSettings,
    render_topic,
    required_maps,
    timing_values,
)
from synboost_ros.visualize import heatmap

RNG = np.random.default_rng(3)
HEIGHT, WIDTH = 9, 11
RGB = RNG.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def result() -> PipelineResult:
    score = np.linspace(0, 1, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)
    return PipelineResult(
        semantic=RNG.integers(0, 19, (HEIGHT, WIDTH), dtype=np.uint8),
        entropy=score,
        distance=score,
        perceptual=score,
        anomaly=score,
        synthesized=RGB[::-1].copy(),
    )


def test_only_the_maps_of_the_subscribed_topics_are_requested():
    assert required_maps([]) == set()
    assert required_maps(["overlay", "anomaly_mask"]) == {"anomaly"}
    assert required_maps(["semantic_color", "entropy"]) == {"semantic", "entropy"}
    assert required_maps(TOPIC_MAPS) == {
        "semantic", "entropy", "distance", "perceptual", "anomaly", "synthesized",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "encoding"),
    [
        ("semantic", "mono8"),
        ("semantic_color", "rgb8"),
        ("entropy", "32FC1"),
        ("distance", "32FC1"),
        ("perceptual", "32FC1"),
        ("anomaly", "32FC1"),
        ("anomaly_mask", "mono8"),
        ("overlay", "rgb8"),
        ("synthesized", "rgb8"),
    ],
)
def test_every_topic_renders_at_input_size_with_its_encoding(topic, encoding):
    array, got = render_topic(topic, result(), RGB, RenderSettings())
    assert got == encoding
    assert array.shape[:2] == (HEIGHT, WIDTH)


def test_semantic_colour_uses_the_palette():
    maps = result()
    array, _ = render_topic("semantic_color", maps, RGB, RenderSettings())
    np.testing.assert_array_equal(array, colorize(maps.semantic))


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.0])
def test_anomaly_mask_is_255_at_or_above_the_threshold(threshold):
    maps = result()
    mask, _ = render_topic("anomaly_mask", maps, RGB, RenderSettings(anomaly_threshold=threshold))
    assert set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask == 255, maps.anomaly >= threshold)


def test_overlay_blends_the_heat_map_in_proportion_to_the_score():
    score = np.array([[0.0, 1.0]], dtype=np.float32)
    rgb = np.full((1, 2, 3), 100, dtype=np.uint8)
    maps = PipelineResult(anomaly=score)
    unchanged, encoding = render_topic("overlay", maps, rgb, RenderSettings(overlay_alpha=0.0))
    assert encoding == "rgb8"
    np.testing.assert_array_equal(unchanged, rgb)
    full, _ = render_topic("overlay", maps, rgb, RenderSettings(overlay_alpha=1.0))
    np.testing.assert_array_equal(full[0, 0], rgb[0, 0])  # score 0: the camera image
    np.testing.assert_array_equal(full[0, 1], heatmap(score)[0, 1])  # score 1: pure heat


def test_timing_values_carry_every_stage_in_milliseconds():
    pairs = timing_values({"decode": 1.25, "segmentation": 10.0})
    assert pairs == [("decode_ms", "1.250"), ("segmentation_ms", "10.000")]
