"""Component-level anomaly metrics as SegmentMeIfYouCan defines them: sIoU, PPV, mean F1.

Chan et al., "SegmentMeIfYouCan: A Benchmark for Anomaly Segmentation" (NeurIPS 2021 Datasets
and Benchmarks), and its evaluation code (github.com/SegmentMeIfYouCan/road-anomaly-benchmark,
``metrics/instance_segmentation.py``). The facts followed here (the code is not copied):

- Labels are 0 (normal), 1 (anomaly), 255 (void). The prediction is the score map binarised
  at one threshold; predicted pixels on void are dropped before the components are formed.
- Components are 8-connected. Ground-truth components smaller than ``min_gt_area`` pixels
  become void; predicted components smaller than ``min_pred_area`` pixels are dropped. The
  benchmark uses 10 / 50 pixels on its obstacle track and 100 / 500 on its anomaly track.
- Everything is counted inside the region of interest, the pixels not void.
- sIoU of a ground-truth component k, with K^(k) the union of the predicted components that
  intersect k and A(k) the pixels of the other ground-truth components:
  sIoU(k) = |k ∩ K^(k)| / |(k ∪ K^(k)) \\ A(k)|.
- PPV of a predicted component k^, with K the union of all ground-truth components:
  PPV(k^) = |k^ ∩ K| / |k^|.
- At an sIoU threshold t: TP = ground-truth components with sIoU >= t, FN = the others,
  FP = predicted components with PPV < t; F1(t) = 2 TP / (2 TP + FN + FP), counts pooled over
  all frames. Mean F1 averages F1 over the 11 thresholds 0.25, 0.30, ..., 0.75.
- Mean sIoU averages over all ground-truth components of the set, mean PPV over all predicted
  components.

One difference: the benchmark's code counts FP with a symmetric sIoU of each predicted
component; the paper, and this module, with its PPV.

The binarisation threshold: the benchmark takes the score threshold of the best pixel F1 (on
the pooled precision-recall curve). To stay one pass over the data, ``ComponentMetrics`` counts
every frame at a grid of score thresholds and reports the grid point nearest the threshold it
is given (``AnomalyMetricAccumulator.threshold_best_f1`` of the same pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from synboost_ros.classes import IGNORE_ID
from synboost_ros.metrics.anomaly import ANOMALY_LABEL

SIOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.linspace(0.25, 0.75, 11), 2))
OBSTACLE_TRACK_MIN_GT_AREA = 10
OBSTACLE_TRACK_MIN_PRED_AREA = 50
SCORE_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))


@dataclass(frozen=True)
class FrameComponents:
    """sIoU of each ground-truth component and PPV of each predicted one, in one frame."""

    siou: np.ndarray
    ppv: np.ndarray


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected labels and each label's area (index 0 = background)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats[:, cv2.CC_STAT_AREA]


def frame_components(
    prediction: np.ndarray,
    label: np.ndarray,
    min_gt_area: int = OBSTACLE_TRACK_MIN_GT_AREA,
    min_pred_area: int = OBSTACLE_TRACK_MIN_PRED_AREA,
) -> FrameComponents:
    """Component sIoU and PPV of one binary HxW ``prediction`` against an HxW ``label``."""
    if prediction.shape != label.shape:
        raise ValueError(f"prediction {prediction.shape} and label {label.shape} differ in size")
    return match_components(prediction, GroundTruth.of(label, min_gt_area), min_pred_area)


@dataclass(frozen=True)
class GroundTruth:
    """A label's void mask, ground-truth components and region of interest."""

    void: np.ndarray
    labels: np.ndarray
    areas: np.ndarray
    roi: np.ndarray

    @classmethod
    def of(cls, label: np.ndarray, min_gt_area: int = OBSTACLE_TRACK_MIN_GT_AREA) -> GroundTruth:
        """Components of ``label``; those below ``min_gt_area`` pixels become void."""
        void = label == IGNORE_ID
        labels, areas = _components(label == ANOMALY_LABEL)
        small = areas < min_gt_area
        small[0] = False
        return cls(void, labels, areas, ~void & ~small[labels])


def match_components(
    prediction: np.ndarray, truth: GroundTruth, min_pred_area: int = OBSTACLE_TRACK_MIN_PRED_AREA
) -> FrameComponents:
    """Component sIoU and PPV of a binary prediction against prepared ground truth."""
    if prediction.shape != truth.void.shape:
        raise ValueError(
            f"prediction {prediction.shape} and label {truth.void.shape} differ in size"
        )
    gt_labels, gt_areas, roi = truth.labels, truth.areas, truth.roi
    pred_labels, pred_areas = _components(prediction.astype(bool) & ~truth.void)
    small_pred = pred_areas < min_pred_area
    small_pred[0] = True  # label 0 is the background
    gt, pred = gt_labels[roi], np.where(small_pred[pred_labels[roi]], 0, pred_labels[roi])
    gt_sizes = np.bincount(gt, minlength=gt_areas.size)
    pred_sizes = np.bincount(pred, minlength=pred_areas.size)
    # Pixels of both a ground-truth and a predicted component: the sparse overlap table.
    both = (gt > 0) & (pred > 0)
    pairs, overlap = np.unique(
        gt[both].astype(np.int64) * pred_areas.size + pred[both], return_counts=True
    )
    pair_gt, pair_pred = np.divmod(pairs, pred_areas.size)
    overlap_of_pred = np.bincount(pair_pred, weights=overlap, minlength=pred_areas.size)
    predicted_on_background = pred_sizes - overlap_of_pred
    # |k ∩ K^| = the pixels of k that any prediction covers; |(k ∪ K^) \ A| = |k| plus the
    # pixels of K^ on the background (those of K^ on other components are A, those on k in k).
    intersection = np.bincount(pair_gt, weights=overlap, minlength=gt_areas.size)
    touched_background = np.bincount(
        pair_gt, weights=predicted_on_background[pair_pred], minlength=gt_areas.size
    )
    gt_ids = np.flatnonzero(gt_sizes[1:]) + 1
    pred_ids = np.flatnonzero(pred_sizes[1:]) + 1
    siou = intersection[gt_ids] / (gt_sizes[gt_ids] + touched_background[gt_ids])
    ppv = overlap_of_pred[pred_ids] / pred_sizes[pred_ids]
    return FrameComponents(siou.astype(np.float64), ppv.astype(np.float64))


@dataclass(frozen=True)
class ComponentResult:
    """Component metrics of a set at one score threshold (None where nothing was counted)."""

    score_threshold: float
    mean_siou: float | None
    mean_ppv: float | None
    mean_f1: float | None
    f1: dict[float, float]  # per sIoU threshold
    gt_components: int
    predicted_components: int

    def to_json(self) -> dict:
        """Plain-JSON form."""
        return {
            "score_threshold": self.score_threshold,
            "siou": self.mean_siou,
            "ppv": self.mean_ppv,
            "mean_f1": self.mean_f1,
            "f1_25": self.f1.get(0.25),
            "f1_50": self.f1.get(0.5),
            "f1_75": self.f1.get(0.75),
            "gt_components": self.gt_components,
            "predicted_components": self.predicted_components,
        }


def component_result(frames: Sequence[FrameComponents], score_threshold: float) -> ComponentResult:
    """Pooled sIoU, PPV and F1 over sIoU thresholds of ``frames``."""
    siou = np.concatenate([f.siou for f in frames]) if frames else np.empty(0)
    ppv = np.concatenate([f.ppv for f in frames]) if frames else np.empty(0)
    f1 = {}
    for threshold in SIOU_THRESHOLDS:
        tp = int((siou >= threshold).sum())
        fn = siou.size - tp
        fp = int((ppv < threshold).sum())
        if 2 * tp + fn + fp:
            f1[threshold] = 2 * tp / (2 * tp + fn + fp)
    return ComponentResult(
        score_threshold=score_threshold,
        mean_siou=float(siou.mean()) if siou.size else None,
        mean_ppv=float(ppv.mean()) if ppv.size else None,
        mean_f1=float(np.mean(list(f1.values()))) if f1 else None,
        f1=f1,
        gt_components=int(siou.size),
        predicted_components=int(ppv.size),
    )


class ComponentMetrics:
    """Accumulates component sIoU / PPV frame by frame at each of ``score_thresholds``."""

    def __init__(
        self,
        score_thresholds: Sequence[float] = SCORE_GRID,
        min_gt_area: int = OBSTACLE_TRACK_MIN_GT_AREA,
        min_pred_area: int = OBSTACLE_TRACK_MIN_PRED_AREA,
    ) -> None:
        if not score_thresholds:
            raise ValueError("give at least one score threshold")
        self.score_thresholds = tuple(float(t) for t in score_thresholds)
        self.min_gt_area = min_gt_area
        self.min_pred_area = min_pred_area
        self._frames: list[list[FrameComponents]] = [[] for _ in self.score_thresholds]

    def update(self, scores: np.ndarray, label: np.ndarray) -> None:
        """Add one frame: HxW scores and labels (0 normal, 1 anomaly, 255 void)."""
        truth = GroundTruth.of(label, self.min_gt_area)
        for threshold, frames in zip(self.score_thresholds, self._frames, strict=True):
            frames.append(match_components(scores >= threshold, truth, self.min_pred_area))

    def compute(self, score_threshold: float) -> ComponentResult:
        """The metrics at the grid threshold nearest ``score_threshold``."""
        index = int(np.argmin([abs(t - score_threshold) for t in self.score_thresholds]))
        return component_result(self._frames[index], self.score_thresholds[index])
