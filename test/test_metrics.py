"""Pooled anomaly metrics against scikit-learn, and the segmentation confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from synboost_ros.classes import CLASS_NAMES
from synboost_ros.metrics import AnomalyMetricAccumulator, ConfusionMatrixAccumulator
from synboost_ros.metrics.anomaly import MIN_MAX_DISTINCT, round_mantissa

IMAGE_SHAPE = (30, 40)


def random_images(
    rng: np.random.Generator, num_images: int, ties: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Scores correlated with labels, ~10% ignored pixels; few distinct values when ``ties``."""
    images = []
    for _ in range(num_images):
        if ties:
            scores = (rng.integers(0, 20, IMAGE_SHAPE) / 20).astype(np.float32)
        else:
            scores = rng.random(IMAGE_SHAPE)
        labels = (rng.random(IMAGE_SHAPE) < 0.1 + 0.6 * scores).astype(np.uint8)
        labels[rng.random(IMAGE_SHAPE) < 0.1] = 255
        images.append((scores, labels))
    return images


def pooled(images: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """All non-ignored pixels of all images as flat (labels, scores)."""
    labels = np.concatenate([label[label != 255] for _, label in images])
    scores = np.concatenate([score[label != 255] for score, label in images])
    return labels, scores


def sklearn_fpr95(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= 0.95)])


def accumulate(images: list[tuple[np.ndarray, np.ndarray]], **kwargs) -> AnomalyMetricAccumulator:
    accumulator = AnomalyMetricAccumulator(**kwargs)
    for scores, labels in images:
        accumulator.update(scores, labels)
    return accumulator


@pytest.mark.parametrize("ties", [True, False])
def test_pooled_metrics_equal_sklearn(ties: bool) -> None:
    images = random_images(np.random.default_rng(int(ties)), num_images=4, ties=ties)
    labels, scores = pooled(images)
    accumulator = accumulate(images)
    metrics = accumulator.compute()
    assert accumulator.num_distinct == np.unique(scores).size
    assert metrics.ap == pytest.approx(average_precision_score(labels, scores), abs=1e-9)
    assert metrics.auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert metrics.fpr95 == pytest.approx(sklearn_fpr95(labels, scores), abs=1e-9)
    assert metrics.num_pixels == labels.size
    assert metrics.num_anomaly_pixels == int(labels.sum())
    assert metrics.exact


def test_curves_equal_sklearn() -> None:
    images = random_images(np.random.default_rng(2), num_images=3, ties=True)
    labels, scores = pooled(images)
    curves = accumulate(images).curves()
    precision, recall, _ = precision_recall_curve(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(curves.precision, precision, atol=1e-12)
    np.testing.assert_allclose(curves.recall, recall, atol=1e-12)
    np.testing.assert_allclose(curves.fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(curves.tpr, tpr, atol=1e-12)


def test_perfect_separation() -> None:
    labels = np.array([[0, 0, 1, 1], [0, 1, 0, 1]], dtype=np.uint8)
    scores = labels + np.linspace(0.0, 0.5, 8).reshape(2, 4)
    metrics = accumulate([(scores, labels)]).compute()
    assert (metrics.ap, metrics.fpr95, metrics.auroc) == (1.0, 0.0, 1.0)


def test_reversed_scores() -> None:
    labels = np.array([[0, 0, 0, 1], [0, 0, 0, 1]], dtype=np.uint8)
    scores = (1 - labels).astype(np.float32)
    metrics = accumulate([(scores, labels)]).compute()
    assert metrics.ap == pytest.approx(2 / 8)  # anomalies found only at the last threshold
    assert metrics.fpr95 == 1.0
    assert metrics.auroc == 0.0


def test_all_equal_scores() -> None:
    labels = np.array([[0, 1, 0, 0, 1]], dtype=np.uint8)
    metrics = accumulate([(np.full(labels.shape, 0.3), labels)]).compute()
    assert metrics.ap == pytest.approx(2 / 5)
    assert metrics.fpr95 == 1.0
    assert metrics.auroc == pytest.approx(0.5)


def test_ignored_pixels_do_not_count() -> None:
    rng = np.random.default_rng(3)
    images = random_images(rng, num_images=2, ties=False)
    reference = accumulate(images).compute()
    padded = []
    for scores, labels in images:
        extra_scores = rng.random((5, IMAGE_SHAPE[1]))
        extra_scores[0, 0] = np.nan  # ignored pixels may hold anything
        padded.append(
            (
                np.concatenate((scores, extra_scores)),
                np.concatenate((labels, np.full((5, IMAGE_SHAPE[1]), 255, np.uint8))),
            )
        )
    assert accumulate(padded).compute() == reference


def test_coarsening_engages_and_stays_close() -> None:
    rng = np.random.default_rng(4)
    images = []
    for _ in range(4):
        scores = 1.0 + rng.random((50, 50))
        labels = (rng.random((50, 50)) < scores - 1.0).astype(np.uint8)
        images.append((scores, labels))
    labels, scores = pooled(images)
    accumulator = accumulate(images, max_distinct=MIN_MAX_DISTINCT)
    metrics = accumulator.compute()
    assert not metrics.exact
    assert accumulator.mantissa_bits is not None and accumulator.mantissa_bits < 23
    assert accumulator.num_distinct <= MIN_MAX_DISTINCT
    assert metrics.num_pixels == labels.size
    assert metrics.ap == pytest.approx(average_precision_score(labels, scores), abs=1e-3)
    assert metrics.auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-3)
    assert metrics.fpr95 == pytest.approx(sklearn_fpr95(labels, scores), abs=1e-3)


@pytest.mark.parametrize("bits", [0, 5, 12, 23])
def test_round_mantissa_is_monotone_and_bounded(bits: int) -> None:
    values = np.sort(np.random.default_rng(bits).normal(scale=1e3, size=5000))
    rounded = round_mantissa(values, bits)
    assert np.all(np.diff(rounded) >= 0)
    assert np.all(np.abs(rounded - values) <= np.abs(values) * 2.0**-bits)
    assert np.unique(rounded).size < values.size or bits == 23


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.zeros((2, 3)), np.zeros((3, 2), np.uint8), "differs from labels shape"),
        (np.full((2, 2), np.nan), np.zeros((2, 2), np.uint8), "NaN"),
        (np.zeros((2, 2)), np.full((2, 2), 7, np.uint8), "found [7]"),
        (np.zeros((2, 2), np.int64), np.zeros((2, 2), np.uint8), "floating-point"),
    ],
)
def test_bad_image_is_rejected(scores: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        AnomalyMetricAccumulator().update(scores, labels)


@pytest.mark.parametrize(("label", "missing"), [(0, "0 anomaly"), (1, "0 normal")])
def test_one_sided_set_is_rejected(label: int, missing: str) -> None:
    accumulator = accumulate([(np.random.default_rng(5).random((4, 4)), np.full((4, 4), label))])
    with pytest.raises(ValueError, match=missing):
        accumulator.compute()


def test_too_small_table_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_distinct"):
        AnomalyMetricAccumulator(max_distinct=10)


# Hand-computed: valid pixels (target, pred) = (0,0) (0,1) (1,1) (1,1) (2,0); one ignored.
# class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: FN 1 -> 0.
SEG_TARGET = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
SEG_PRED = np.array([[0, 1, 1], [1, 0, 2]], dtype=np.uint8)


def test_confusion_matrix_hand_computed() -> None:
    accumulator = ConfusionMatrixAccumulator(num_classes=4)
    for row in range(2):  # pooled over two "images"
        accumulator.update(SEG_PRED[row : row + 1], SEG_TARGET[row : row + 1])
    metrics = accumulator.compute()
    assert metrics.per_class_iou == pytest.approx({"0": 1 / 3, "1": 2 / 3, "2": 0.0, "3": None})
    assert metrics.miou == pytest.approx(1 / 3)  # absent class 3 is excluded
    assert metrics.pixel_accuracy == pytest.approx(3 / 5)
    assert accumulator.num_images == 2


def test_confusion_matrix_uses_cityscapes_names() -> None:
    accumulator = ConfusionMatrixAccumulator(num_classes=len(CLASS_NAMES))
    accumulator.update(SEG_PRED, SEG_TARGET)
    per_class = accumulator.compute().per_class_iou
    assert list(per_class) == list(CLASS_NAMES)
    assert per_class["road"] == pytest.approx(1 / 3)
    assert per_class["bicycle"] is None


@pytest.mark.parametrize(
    ("pred", "message"),
    [(SEG_PRED[:, :2], "differs from target shape"), (SEG_PRED + 3, "prediction class ids")],
)
def test_confusion_matrix_rejects_bad_prediction(pred: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConfusionMatrixAccumulator(num_classes=4).update(pred, SEG_TARGET)
