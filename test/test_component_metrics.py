"""SegmentMeIfYouCan component metrics (sIoU, PPV, mean F1) against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator
from synboost_ros.metrics.components import (
    SIOU_THRESHOLDS,
    ComponentMetrics,
    component_result,
    frame_components,
)


def two_squares() -> np.ndarray:
    label = np.zeros((10, 10), np.uint8)
    label[1:4, 1:4] = 1  # component A, 9 pixels
    label[6:9, 6:9] = 1  # component B, 9 pixels
    return label


def test_siou_and_ppv_of_an_overlapping_prediction():
    prediction = np.zeros((10, 10), bool)
    prediction[1:4, 1:6] = True  # covers A and 6 background pixels
    frame = frame_components(prediction, two_squares(), min_gt_area=1, min_pred_area=1)
    # sIoU(A) = 9 / (9 + 6); B is missed; PPV = 9 / 15.
    np.testing.assert_allclose(frame.siou, [0.6, 0.0])
    np.testing.assert_allclose(frame.ppv, [0.6])
    result = component_result([frame], score_threshold=0.5)
    # t <= 0.6 (8 thresholds): TP 1, FN 1, FP 0 -> F1 2/3; t in 0.65..0.75: TP 0, FN 2, FP 1.
    assert result.f1[0.25] == pytest.approx(2 / 3) and result.f1[0.6] == pytest.approx(2 / 3)
    assert result.f1[0.65] == 0.0 and result.f1[0.75] == 0.0
    assert result.mean_f1 == pytest.approx(8 * (2 / 3) / 11)
    assert (result.mean_siou, result.mean_ppv) == (pytest.approx(0.3), pytest.approx(0.6))
    assert (result.gt_components, result.predicted_components) == (2, 1)


def test_the_other_components_pixels_are_taken_out_of_the_union():
    label = np.zeros((3, 8), np.uint8)
    label[:, 0:3] = 1  # A
    label[:, 5:8] = 1  # B
    prediction = np.ones((3, 8), bool)  # one component over both and the 6 pixels between
    frame = frame_components(prediction, label, min_gt_area=1, min_pred_area=1)
    # Plain IoU of A would be 9 / 24; without B's pixels the union is 9 + 6.
    np.testing.assert_allclose(frame.siou, [0.6, 0.6])
    np.testing.assert_allclose(frame.ppv, [18 / 24])


def test_two_predictions_on_one_component_are_one_union():
    label = np.zeros((4, 10), np.uint8)
    label[:, 2:8] = 1  # 24 pixels
    prediction = np.zeros((4, 10), bool)
    prediction[:, 0:4] = True  # 8 on it, 8 beside it
    prediction[:, 6:8] = True  # 8 on it
    frame = frame_components(prediction, label, min_gt_area=1, min_pred_area=1)
    np.testing.assert_allclose(frame.siou, [16 / (24 + 8)])
    np.testing.assert_allclose(sorted(frame.ppv), [0.5, 1.0])


def test_void_and_small_components_follow_the_benchmark():
    label = np.zeros((12, 12), np.uint8)
    label[0:2, 0:2] = 1  # 4 pixels: below min_gt_area -> void
    label[5:9, 5:9] = 1  # 16 pixels
    label[:, 11] = 255  # void column
    prediction = np.zeros((12, 12), bool)
    prediction[0:2, 0:2] = True  # on the small component: outside the ROI, not counted
    prediction[5:9, 5:9] = True
    prediction[10, 0:3] = True  # 3 pixels: below min_pred_area, dropped (no FP)
    prediction[:, 11] = True  # on void only: dropped
    frame = frame_components(prediction, label, min_gt_area=5, min_pred_area=4)
    np.testing.assert_allclose(frame.siou, [1.0])
    np.testing.assert_allclose(frame.ppv, [1.0])
    result = component_result([frame], 0.5)
    assert result.mean_f1 == 1.0 and result.predicted_components == 1


def test_a_false_positive_far_from_anything():
    label = np.zeros((10, 10), np.uint8)
    label[0:3, 0:3] = 1
    prediction = np.zeros((10, 10), bool)
    prediction[0:3, 0:3] = True
    prediction[7:10, 7:10] = True  # PPV 0
    frame = frame_components(prediction, label, min_gt_area=1, min_pred_area=1)
    result = component_result([frame], 0.5)
    assert sorted(frame.ppv.tolist()) == [0.0, 1.0]
    assert all(f1 == pytest.approx(2 / 3) for f1 in result.f1.values())  # TP 1, FP 1, FN 0
    assert len(result.f1) == len(SIOU_THRESHOLDS) == 11


def test_counts_are_pooled_over_frames_and_empty_sets_have_no_value():
    empty = component_result([], 0.5)
    assert (empty.mean_siou, empty.mean_ppv, empty.mean_f1) == (None, None, None)
    label = two_squares()
    hit = np.zeros((10, 10), bool)
    hit[1:4, 1:4] = True
    frames = [frame_components(hit, label, 1, 1), frame_components(np.zeros((10, 10)), label, 1, 1)]
    result = component_result(frames, 0.5)
    # 4 components, one found exactly: TP 1, FN 3, FP 0.
    assert result.mean_siou == pytest.approx(0.25)
    assert result.mean_f1 == pytest.approx(2 / 5)


def test_the_accumulator_reports_the_grid_threshold_nearest_the_asked_one():
    label = np.zeros((10, 10), np.uint8)
    label[2:6, 2:6] = 1
    scores = np.zeros((10, 10), np.float32)
    scores[2:6, 2:6] = 0.7
    scores[8:10, 8:10] = 0.4  # a false positive below 0.5 only
    metrics = ComponentMetrics(score_thresholds=(0.3, 0.5), min_gt_area=1, min_pred_area=1)
    metrics.update(scores, label)
    at_half = metrics.compute(0.55)
    assert at_half.score_threshold == 0.5 and at_half.mean_f1 == 1.0
    low = metrics.compute(0.2)
    assert low.score_threshold == 0.3 and low.mean_f1 == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="differ in size"):
        metrics.update(scores[:5], label)


def test_best_f1_threshold_of_the_pixel_curve():
    accumulator = AnomalyMetricAccumulator()
    scores = np.array([[0.9, 0.8, 0.3, 0.2]], np.float32)
    labels = np.array([[1, 1, 0, 0]], np.uint8)
    accumulator.update(scores, labels)
    assert accumulator.threshold_best_f1() == pytest.approx(0.8)  # flags exactly the anomalies
