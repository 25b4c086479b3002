"""Temporal fusion and drivable-area gating on generated maps, and in the pipeline."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from synboost_ros.postprocess.gating import GatingSettings, gate_anomaly, gating_weight
from synboost_ros.postprocess.options import PostprocessOptions
from synboost_ros.postprocess.temporal import MAX_GAP_NS, TemporalFusion, stream_jumped

ROAD, BUILDING = 0, 2


def texture(height: int = 64, width: int = 96, seed: int = 3) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def test_a_one_frame_spike_fades_and_a_steady_score_stays():
    gray, semantic = texture(), np.zeros((64, 96), np.uint8)
    fusion = TemporalFusion(weight=0.5)
    calm = np.full((64, 96), 0.2, np.float32)
    spike = calm.copy()
    spike[20:30, 40:50] = 1.0
    np.testing.assert_array_equal(fusion(gray, semantic, calm), calm)  # first frame: as is
    fused = fusion(gray, semantic, spike)
    np.testing.assert_allclose(fused[22:28, 42:48], 0.6, atol=0.02)  # (1.0 + 0.2) / 2
    np.testing.assert_allclose(fused[:10], 0.2, atol=1e-5)
    after = fusion(gray, semantic, calm)
    np.testing.assert_allclose(after[22:28, 42:48], 0.4, atol=0.02)  # (0.2 + 0.6) / 2
    for _ in range(8):
        steady = fusion(gray, semantic, spike)
    assert steady[22:28, 42:48].min() > 0.95


def test_a_stream_jumps_when_its_stamp_goes_back_or_skips_more_than_the_gap():
    assert not stream_jumped(None, 5)  # the first frame
    assert not stream_jumped(100, 100) and not stream_jumped(100, 100 + MAX_GAP_NS)
    assert stream_jumped(100, 99)  # a bag that loops
    assert stream_jumped(100, 101 + MAX_GAP_NS)
    assert not stream_jumped(0, 40, max_gap_ns=50) and stream_jumped(0, 60, max_gap_ns=50)


def test_follow_restarts_the_fusion_when_the_stream_jumps():
    gray, semantic = texture(), np.zeros((64, 96), np.uint8)
    calm, hot = np.zeros((64, 96), np.float32), np.ones((64, 96), np.float32)
    fusion = TemporalFusion(weight=0.5)
    second, tenth = 1_000_000_000, 100_000_000
    assert not fusion.follow(10 * second)
    fusion(gray, semantic, hot)
    assert not fusion.follow(10 * second + tenth)  # fused with the previous frame
    assert fusion(gray, semantic, calm).mean() == pytest.approx(0.5, abs=0.02)
    assert fusion.follow(9 * second)  # the bag looped: as if first
    np.testing.assert_array_equal(fusion(gray, semantic, hot), hot)
    assert fusion.follow(11 * second)  # a 2 s gap: as if first
    np.testing.assert_array_equal(fusion(gray, semantic, calm), calm)
    assert not fusion.follow(11 * second + tenth)
    assert fusion(gray, semantic, hot).mean() == pytest.approx(0.5, abs=0.02)


def test_the_previous_map_follows_the_motion():
    gray = texture(width=120)
    semantic = np.zeros(gray.shape, np.uint8)
    fusion = TemporalFusion(weight=0.5)
    previous = np.zeros(gray.shape, np.float32)
    previous[20:40, 30:50] = 1.0
    fusion(gray, semantic, previous)
    shifted = np.roll(gray, 6, axis=1)  # the scene moved 6 pixels to the right
    fused = fusion(shifted, semantic, np.zeros(gray.shape, np.float32))
    np.testing.assert_allclose(fused[24:36, 40:52], 0.5, atol=0.05)  # 30+6 .. 50+6, inner part
    assert fused[24:36, 26:33].max() < 0.05  # the old place is empty


def test_pixels_whose_class_changed_keep_the_current_score():
    gray = texture()
    fusion = TemporalFusion(weight=0.5)
    fusion(gray, np.zeros(gray.shape, np.uint8), np.ones(gray.shape, np.float32))
    semantic = np.zeros(gray.shape, np.uint8)
    semantic[:, 48:] = BUILDING
    fused = fusion(gray, semantic, np.zeros(gray.shape, np.float32))
    np.testing.assert_allclose(fused[:, 50:], 0.0)
    np.testing.assert_allclose(fused[5:-5, 5:40], 0.5, atol=0.02)
    fusion.reset()
    np.testing.assert_array_equal(fusion(gray, semantic, fused), fused)
    with pytest.raises(ValueError, match="temporal weight"):
        TemporalFusion(weight=1.0)
    with pytest.raises(ValueError, match="one size"):
        fusion(gray, semantic[:10], fused)


def test_gating_weight_is_one_within_the_margin_then_falls_off():
    semantic = np.full((100, 40), BUILDING, np.uint8)
    semantic[60:, :] = ROAD
    settings = GatingSettings(margin=0.1, falloff=0.2)
    weight = gating_weight(semantic, (ROAD,), settings)
    assert weight[60:].min() == 1.0 and weight[50:60].min() == pytest.approx(1.0)
    # Row 30 is 30 pixels (0.3 of the height) above the road: exp(-(0.3 - 0.1) / 0.2).
    assert weight[30, 20] == pytest.approx(math.exp(-1.0), rel=1e-3)
    anomaly = np.ones((100, 40), np.float32)
    gated = gate_anomaly(anomaly, semantic, (ROAD,), settings)
    np.testing.assert_allclose(gated, weight)


def test_an_obstacle_enclosed_by_the_road_is_not_damped_and_no_road_means_no_gating():
    semantic = np.full((60, 60), ROAD, np.uint8)
    semantic[:10] = BUILDING
    semantic[30:45, 20:35] = BUILDING  # an obstacle classified as something else
    weight = gating_weight(semantic, (ROAD,), GatingSettings(margin=0.0, falloff=0.01))
    assert weight[30:45, 20:35].min() == 1.0
    assert weight[0, 30] < 0.01
    anomaly = np.full((60, 60), 0.7, np.float32)
    no_road = np.full((60, 60), BUILDING, np.uint8)
    assert gate_anomaly(anomaly, no_road, (ROAD,)) is anomaly
    with pytest.raises(ValueError, match="falloff"):
        GatingSettings(falloff=0.0)


def test_the_pipeline_fuses_and_gates_at_the_synthesis_size(torch_pipeline):
    from synboost_ros.preprocessing import resize_map

    pipeline = torch_pipeline
    height, width = pipeline.config.synthesis_size  # camera = synthesis size: no resizing
    rng = np.random.default_rng(5)
    frames = [cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 2)]
    frames.append(np.roll(frames[0], 3, axis=1))
    plain = [pipeline(frame, outputs=("anomaly", "semantic")) for frame in frames]
    fusion = TemporalFusion(weight=0.3)
    expected = [
        fusion(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), result.semantic, result.anomaly)
        for frame, result in zip(frames, plain, strict=True)
    ]
    try:
        pipeline.set_postprocess(PostprocessOptions(temporal_fusion=True, temporal_weight=0.3))
        fused = [pipeline(frame, outputs=("anomaly",)) for frame in frames]
        for got, want in zip(fused, expected, strict=True):
            np.testing.assert_allclose(got.anomaly, resize_map(want, (height, width)), atol=1e-6)
        assert "temporal" in fused[1].timings_ms and "gating" not in fused[1].timings_ms
        options = PostprocessOptions(drivable_gating=True, gating=GatingSettings(0.0, 0.05))
        pipeline.set_postprocess(options)
        gated = pipeline(frames[1], outputs=("anomaly", "semantic"))
        want = gate_anomaly(plain[1].anomaly, plain[1].semantic, (ROAD,), options.gating)
        np.testing.assert_allclose(gated.anomaly, want, atol=1e-6)
        assert gated.timings_ms["gating"] >= 0.0 and "temporal" not in gated.timings_ms
    finally:
        pipeline.set_postprocess(PostprocessOptions())
