"""Data-set evaluation loops: feed per-image predictions into the metric accumulators, and
assemble the reports.

Shared by the ``eval`` and ``ablation`` commands; the caller decides where the predictions come
from (a model, or score files written earlier).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from synboost_ros.classes import NUM_CLASSES, label_ids_to_train_ids
from synboost_ros.metrics.anomaly import (
    DEFAULT_MAX_DISTINCT,
    TPR_TARGET,
    AnomalyMetricAccumulator,
    AnomalyMetrics,
)
from synboost_ros.metrics.components import ComponentMetrics, ComponentResult
from synboost_ros.metrics.false_alarms import (
    FalseAlarmBreakdown,
    FalseAlarmsByClass,
    FalseAlarmsByDistance,
    FalseAlarmsByGroup,
)
from synboost_ros.metrics.segmentation import ConfusionMatrixAccumulator, SegmentationMetrics


class AnomalySampleLike(Protocol):
    """An image with its anomaly labels (0 normal, 1 anomaly, 255 ignored)."""

    image: np.ndarray
    label: np.ndarray
    stem: str


class SegmentationSampleLike(Protocol):
    """An image with its ground-truth train-id map (255 ignored)."""

    image: np.ndarray
    train_ids: np.ndarray
    stem: str


SampleT = TypeVar("SampleT")


def evaluate_anomaly_scores(
    samples: Iterable[AnomalySampleLike],
    score_fn: Callable[[AnomalySampleLike], np.ndarray],
    limit: int | None = None,
    max_distinct: int = DEFAULT_MAX_DISTINCT,
    observers: Sequence[Callable[[AnomalySampleLike, np.ndarray], None]] = (),
) -> AnomalyMetricAccumulator:
    """Score each sample (HxW float map) and pool the pixels into an anomaly accumulator.

    Each of ``observers`` also receives every sample with its scores (for extra breakdowns).
    """
    accumulator = AnomalyMetricAccumulator(max_distinct=max_distinct)
    for sample in _with_progress(samples, limit, "anomaly eval"):
        scores = score_fn(sample)
        try:
            accumulator.update(scores, sample.label)
            for observe in observers:
                observe(sample, scores)
        except ValueError as error:
            raise ValueError(f"image {sample.stem!r}: {error}") from error
    return accumulator


@dataclass(frozen=True)
class AnomalyEvaluation:
    """An anomaly set's pooled metrics, the SegmentMeIfYouCan component metrics (at the best
    pixel-F1 threshold), and false-alarm breakdowns (``"class"``, ``"distance"``) at the
    operating point that flags ``tpr`` of the anomaly pixels."""

    accumulator: AnomalyMetricAccumulator
    metrics: AnomalyMetrics
    tpr: float
    breakdowns: dict[str, FalseAlarmBreakdown]
    components: ComponentResult

    def report(self, format: str) -> dict[str, Any]:
        """JSON report; groups without normal pixels are left out of the breakdowns."""
        metrics = self.metrics
        report: dict[str, Any] = {
            "format": format,
            "num_images": self.accumulator.num_images,
            "ap": metrics.ap,
            "fpr95": metrics.fpr95,
            "auroc": metrics.auroc,
            "num_pixels": metrics.num_pixels,
            "num_anomaly_pixels": metrics.num_anomaly_pixels,
            "exact": metrics.exact,
            "components": self.components.to_json(),
        }
        for kind, breakdown in self.breakdowns.items():
            report[f"false_alarms_by_{kind}"] = {"tpr": self.tpr, **breakdown.to_json()}
        return report


def evaluate_anomaly_set(
    samples: Iterable[AnomalySampleLike],
    score_fn: Callable[[AnomalySampleLike], np.ndarray],
    limit: int | None = None,
    class_ground_truth: tuple[Path, str] | None = None,
    by_distance: bool = False,
    tpr: float = TPR_TARGET,
) -> AnomalyEvaluation:
    """Pooled metrics of ``samples``; false alarms by the semantic class of a Cityscapes
    ``(root, split)`` holding the same frames, and by distance to the nearest anomaly."""
    components = ComponentMetrics()
    observers = [lambda sample, scores: components.update(np.asarray(scores), sample.label)]
    groups: dict[str, FalseAlarmsByGroup] = {}
    if class_ground_truth is not None:
        by_class = FalseAlarmsByClass()
        observers.append(class_observer(*class_ground_truth, by_class))
        groups["class"] = by_class
    if by_distance:
        by_band = FalseAlarmsByDistance()
        observers.append(lambda sample, scores: by_band.update(scores, sample.label))
        groups["distance"] = by_band
    accumulator = evaluate_anomaly_scores(samples, score_fn, limit=limit, observers=observers)
    metrics = accumulator.compute()
    threshold = accumulator.threshold_at_tpr(tpr) if groups else None
    breakdowns = {kind: group.compute(threshold) for kind, group in groups.items()}
    component_result = components.compute(accumulator.threshold_best_f1())
    return AnomalyEvaluation(accumulator, metrics, tpr, breakdowns, component_result)


def class_observer(
    root: Path, split: str, by_class: FalseAlarmsByClass
) -> Callable[[AnomalySampleLike, np.ndarray], None]:
    """Feeds ``by_class`` with each frame's scores and its semantic ground truth from ``root``
    (Cityscapes layout, frames matched by stem)."""
    from synboost_ros.data.cityscapes import CityscapesDataset

    ground_truth = CityscapesDataset(root, split)
    index_of = {ground_truth.stem(i): i for i in range(len(ground_truth))}

    def observe(sample: AnomalySampleLike, scores: np.ndarray) -> None:
        index = index_of.get(sample.stem)
        if index is None:
            raise FileNotFoundError(
                f"frame {sample.stem!r} has no semantic ground truth in {root} (split {split!r})"
            )
        by_class.update(scores, sample.label, label_ids_to_train_ids(ground_truth.label_ids(index)))

    return observe


def segmentation_report(format: str, num_images: int, metrics: SegmentationMetrics) -> dict:
    """JSON report of a segmentation evaluation."""
    return {
        "format": format,
        "num_images": num_images,
        "miou": metrics.miou,
        "per_class_iou": metrics.per_class_iou,
        "pixel_accuracy": metrics.pixel_accuracy,
    }


def evaluate_segmentation(
    samples: Iterable[SegmentationSampleLike],
    predict_fn: Callable[[SegmentationSampleLike], np.ndarray],
    limit: int | None = None,
    num_classes: int = NUM_CLASSES,
) -> ConfusionMatrixAccumulator:
    """Predict a train-id map per sample and pool them into a confusion matrix."""
    accumulator = ConfusionMatrixAccumulator(num_classes)
    for sample in _with_progress(samples, limit, "segmentation eval"):
        prediction = predict_fn(sample)
        try:
            accumulator.update(prediction, sample.train_ids)
        except ValueError as error:
            raise ValueError(f"image {sample.stem!r}: {error}") from error
    return accumulator


def score_file_reader(scores_dir: str | Path) -> Callable[[AnomalySampleLike], np.ndarray]:
    """A ``score_fn`` that loads ``<scores_dir>/<stem>.npy``, checked against the label shape."""
    scores_dir = Path(scores_dir)
    if not scores_dir.is_dir():
        raise FileNotFoundError(f"scores directory not found: {scores_dir}")

    def read_scores(sample: AnomalySampleLike) -> np.ndarray:
        path = scores_dir / f"{sample.stem}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"score file not found: {path}")
        try:
            scores = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read score file {path}: {error}") from error
        if scores.shape != sample.label.shape:
            raise ValueError(
                f"score file {path} has shape {scores.shape}, "
                f"expected the label shape {sample.label.shape}"
            )
        return scores

    return read_scores


def _with_progress(
    samples: Iterable[SampleT], limit: int | None, description: str
) -> Iterator[SampleT]:
    """Iterate over at most ``limit`` samples with a tqdm bar on stderr."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")
    total = len(samples) if isinstance(samples, Sized) else None
    if limit is not None:
        samples = itertools.islice(samples, limit)
        total = limit if total is None else min(total, limit)
    return iter(tqdm(samples, total=total, desc=description, unit="img"))
