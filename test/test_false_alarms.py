"""False alarms by ground-truth class, checked against a direct numpy count."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.metrics import AnomalyMetricAccumulator
from synboost_ros.metrics.anomaly import MIN_MAX_DISTINCT
from synboost_ros.metrics.false_alarms import UNLABELLED, FalseAlarmsByClass

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
    assert [c.name for c in breakdown.classes] == [*CLASS_NAMES, UNLABELLED]
    for train_id, result in zip(
        [*range(len(CLASS_NAMES)), IGNORE_ID], breakdown.classes, strict=True
    ):
        normal = (y_class == train_id) & (y_true == 0)
        assert result.normal_pixels == int(normal.sum())
        assert result.false_alarms == int((false_alarm & normal).sum())
        assert result.rate == pytest.approx(result.false_alarms / result.normal_pixels)
        assert result.share == pytest.approx(result.false_alarms / false_alarm.sum())
    assert sum(c.share for c in breakdown.classes) == pytest.approx(1.0)


def test_a_class_that_never_appears_has_no_rate() -> None:
    by_class = FalseAlarmsByClass()
    scores = np.array([[0.9, 0.1]], np.float32)
    by_class.update(scores, np.array([[0, 1]], np.uint8), np.array([[13, 13]], np.uint8))
    breakdown = by_class.compute(0.5)
    car = breakdown.classes[CLASS_NAMES.index("car")]
    road = breakdown.classes[CLASS_NAMES.index("road")]
    assert (car.normal_pixels, car.false_alarms, car.rate, car.share) == (1, 1, 1.0, 1.0)
    assert (road.normal_pixels, road.rate, road.share) == (0, None, 0.0)
    assert by_class.compute(0.95).classes[CLASS_NAMES.index("car")].share is None


def test_coarsened_tables_are_flagged_and_stay_close() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random((64, 64)).astype(np.float32)
    labels = np.zeros(scores.shape, np.uint8)
    train_ids = np.full(scores.shape, CLASS_NAMES.index("building"), np.uint8)
    by_class = FalseAlarmsByClass(max_distinct_per_class=MIN_MAX_DISTINCT)
    by_class.update(scores, labels, train_ids)
    breakdown = by_class.compute(0.5)
    assert not breakdown.exact
    building = breakdown.classes[CLASS_NAMES.index("building")]
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
