"""Data-set evaluation loops: feed per-image predictions into the metric accumulators.

Shared by the ``eval`` and ``ablation`` commands; the caller decides where the predictions come
from (a model, or score files written earlier).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
from tqdm import tqdm

from synboost_ros.classes import NUM_CLASSES
from synboost_ros.metrics.anomaly import DEFAULT_MAX_DISTINCT, AnomalyMetricAccumulator
from synboost_ros.metrics.segmentation import ConfusionMatrixAccumulator


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
