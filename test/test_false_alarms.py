"""False alarms by ground-truth class and by distance to an anomaly, checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.metrics import AnomalyMetricAccumulator
from synboost_ros.metrics.anomaly import MIN_MAX_DISTINCT
from synboost_ros.metrics.false_alarms import (
    NO_ANOMALY_IN_FRAME,
    UNLABELLED,
    FalseAlarmsByClass,
    FalseAlarmsByDistance,
)

SHAPE = (16, 24)


def random_frames(seed: int, count: int = 3) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(scores, anomaly labels, train ids) with ties, ignored pixels and unlabelled ground truth."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        scores = (rng.integers(0, 50, SHAPE) / 50).astype(np.float32)
        labels = (rng.random(SHAPE) < 0.05 + 0.5 * scores).astype(np.uint8)
        labels[rng.random(SHAPE) < 0.1] = IGNORE_ID
        train_ids = rng.integers(0, len(CLASS_NAMES), SHAPE).astype(np.uint8)
        train_ids[rng.random(SHAPE) < 0.05] = IGNORE_ID
        frames.append((scores, labels, train_ids))
    return frames


def pooled(frames: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = [labels != IGNORE_ID for _, labels, _ in frames]
    return tuple(
        np.concatenate([frame[part][k] for frame, k in zip(frames, keep, strict=True)])
        for part in range(3)
    )


def test_threshold_and_counts_match_the_roc_curve() -> None:
    frames = random_frames(0)
    accumulator = AnomalyMetricAccumulator()
    for scores, labels, _ in frames:
        accumulator.update(scores, labels)
    y_score, y_true, _ = pooled(frames)
    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    first = np.argmax(tpr >= 0.95)
    threshold = accumulator.threshold_at_tpr()
    assert threshold == pytest.approx(thresholds[first])
    flagged = y_score >= threshold
    positives, negatives = accumulator.counts_at_or_above(threshold)
    assert positives == int((flagged & (y_true == 1)).sum())
    assert negatives == int((flagged & (y_true == 0)).sum())
    assert negatives / accumulator.num_normal_pixels == pytest.approx(fpr[first])
    assert positives / accumulator.num_anomaly_pixels >= 0.95
    assert accumulator.threshold_at_tpr(1.0) <= threshold


def test_breakdown_counts_each_class_and_sums_to_the_pooled_false_alarms() -> None:
    frames = random_frames(1)
    accumulator, by_class = AnomalyMetricAccumulator(), FalseAlarmsByClass()
    for scores, labels, train_ids in frames:
        accumulator.update(scores, labels)
        by_class.update(scores, labels, train_ids)
    threshold = accumulator.threshold_at_tpr()
    breakdown = by_class.compute(threshold)
    y_score, y_true, y_class = pooled(frames)
    false_alarm = (y_score >= threshold) & (y_true == 0)
    assert breakdown.exact
    assert breakdown.total_false_alarms == accumulator.counts_at_or_above(threshold)[1]
    assert [c.name for c in breakdown.groups] == [*CLASS_NAMES, UNLABELLED]
    for train_id, result in zip(
        [*range(len(CLASS_NAMES)), IGNORE_ID], breakdown.groups, strict=True
    ):
        normal = (y_class == train_id) & (y_true == 0)
        assert result.normal_pixels == int(normal.sum())
        assert result.false_alarms == int((false_alarm & normal).sum())
        assert result.rate == pytest.approx(result.false_alarms / result.normal_pixels)
        assert result.share == pytest.approx(result.false_alarms / false_alarm.sum())
    assert sum(c.share for c in breakdown.groups) == pytest.approx(1.0)


def test_a_class_that_never_appears_has_no_rate() -> None:
    by_class = FalseAlarmsByClass()
    scores = np.array([[0.9, 0.1]], np.float32)
    by_class.update(scores, np.array([[0, 1]], np.uint8), np.array([[13, 13]], np.uint8))
    breakdown = by_class.compute(0.5)
    car = breakdown.groups[CLASS_NAMES.index("car")]
    road = breakdown.groups[CLASS_NAMES.index("road")]
    assert (car.normal_pixels, car.false_alarms, car.rate, car.share) == (1, 1, 1.0, 1.0)
    assert (road.normal_pixels, road.rate, road.share) == (0, None, 0.0)
    assert by_class.compute(0.95).groups[CLASS_NAMES.index("car")].share is None


def test_coarsened_tables_are_flagged_and_stay_close() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random((64, 64)).astype(np.float32)
    labels = np.zeros(scores.shape, np.uint8)
    train_ids = np.full(scores.shape, CLASS_NAMES.index("building"), np.uint8)
    by_class = FalseAlarmsByClass(max_distinct_per_class=MIN_MAX_DISTINCT)
    by_class.update(scores, labels, train_ids)
    breakdown = by_class.compute(0.5)
    assert not breakdown.exact
    building = breakdown.groups[CLASS_NAMES.index("building")]
    assert building.false_alarms == pytest.approx((scores >= 0.5).sum(), rel=0.02)


@pytest.mark.parametrize(
    ("train_ids", "message"),
    [
        (np.zeros((2, 3), np.uint8), "differs from the anomaly label shape"),
        (np.full((2, 2), 19, np.uint8), "found [19]"),
    ],
)
def test_bad_ground_truth_is_rejected(train_ids: np.ndarray, message: str) -> None:
    by_class = FalseAlarmsByClass()
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        by_class.update(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), train_ids)


def test_distance_bands_match_a_brute_force_distance() -> None:
    """Each normal pixel's band from the exact distance to the nearest anomaly pixel."""
    frames = random_frames(3, count=2)
    empty_scores = np.linspace(0, 1, SHAPE[0] * SHAPE[1], dtype=np.float32).reshape(SHAPE)
    frames.append((empty_scores, np.zeros(SHAPE, np.uint8), None))  # a frame without anomalies
    accumulator, by_distance = AnomalyMetricAccumulator(), FalseAlarmsByDistance(edges=(1, 3))
    for scores, labels, _ in frames:
        accumulator.update(scores, labels)
        by_distance.update(scores, labels)
    threshold = accumulator.threshold_at_tpr(0.5)
    breakdown = by_distance.compute(threshold)
    names = ["<= 1 px", "1-3 px", "> 3 px", NO_ANOMALY_IN_FRAME]
    assert [g.name for g in breakdown.groups] == names
    counts = np.zeros((len(names), 2), np.int64)  # normal pixels, false alarms per band
    for scores, labels, _ in frames:
        anomalies = np.argwhere(labels == 1)
        for r, c in np.argwhere(labels == 0):
            if len(anomalies):
                distance = np.sqrt(((anomalies - (r, c)) ** 2).sum(axis=1)).min()
                band = 0 if distance <= 1 else 1 if distance <= 3 else 2
            else:
                band = 3
            counts[band] += (1, scores[r, c] >= threshold)
    assert [g.normal_pixels for g in breakdown.groups] == counts[:, 0].tolist()
    assert [g.false_alarms for g in breakdown.groups] == counts[:, 1].tolist()
    assert breakdown.total_false_alarms == accumulator.counts_at_or_above(threshold)[1]
    assert sum(g.share for g in breakdown.groups) == pytest.approx(1.0)


def test_distance_is_euclidean_and_band_edges_are_inclusive() -> None:
    labels = np.zeros((1, 12), np.uint8)
    labels[0, 0] = 1
    labels[0, 11] = 255  # ignored pixels are neither anomalies nor counted
    scores = np.ones(labels.shape, np.float32)
    by_distance = FalseAlarmsByDistance(edges=(2, 5))
    by_distance.update(scores, labels)
    breakdown = by_distance.compute(0.5)
    # normal pixels at distances 1..10: 1-2 | 3-5 | 6-10
    assert [g.normal_pixels for g in breakdown.groups] == [2, 3, 5, 0]
    corner = np.zeros((5, 5), np.uint8)
    corner[0, 0] = 1
    by_distance = FalseAlarmsByDistance(edges=(2.3,))
    by_distance.update(np.ones(corner.shape, np.float32), corner)
    # within 2.3: distances 1, 1, sqrt(2), 2, 2, sqrt(5), sqrt(5) (a 3x3 chamfer mask says 2.32)
    assert by_distance.compute(0.5).groups[0].normal_pixels == 7


@pytest.mark.parametrize("edges", [(), (0, 2), (5, 2), (2, 2)])
def test_bad_band_edges_are_rejected(edges: tuple) -> None:
    with pytest.raises(ValueError, match="band edges must be positive and increasing"):
        FalseAlarmsByDistance(edges=edges)
