"""Pixel-wise anomaly metrics pooled over a whole data set (Fishyscapes protocol).

Labels are 0 (normal), 1 (anomaly) and 255 (ignored). AP, FPR95 and AUROC are computed over all
evaluated pixels of all images together, with the same definitions as scikit-learn:

- AP = ``average_precision_score``: sum over thresholds of (R_n - R_{n-1}) * P_n.
- FPR95 = false-positive rate at the first ``roc_curve`` threshold where TPR >= 0.95.
- AUROC = trapezoidal area under ``roc_curve`` (``roc_auc_score``).

Memory stays bounded: instead of keeping every pixel, the accumulator keeps a sorted table of the
distinct score values with the number of anomaly and normal pixels at each value. This is exact,
because the metrics depend on the scores only through that table. The table costs 24 bytes per
distinct value; when it would exceed ``max_distinct`` values (default 2**22, about 96 MiB) the
scores are coarsened, see ``AnomalyMetricAccumulator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from synboost_ros.classes import IGNORE_ID

NORMAL_LABEL = 0
ANOMALY_LABEL = 1
TPR_TARGET = 0.95
DEFAULT_MAX_DISTINCT = 2**22
# With 0 mantissa bits at most ~513 float32 values remain (signed powers of two, zero), so a
# table this large always fits after coarsening.
MIN_MAX_DISTINCT = 1024
FLOAT32_MANTISSA_BITS = 23


@dataclass(frozen=True)
class AnomalyMetrics:
    """Pooled anomaly-detection metrics; ``exact`` is False when scores were coarsened."""

    ap: float
    fpr95: float
    auroc: float
    num_pixels: int
    num_anomaly_pixels: int
    exact: bool


@dataclass(frozen=True)
class AnomalyCurves:
    """Precision-recall and ROC curves, as returned by scikit-learn."""

    precision: np.ndarray
    recall: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray


class AnomalyMetricAccumulator:
    """Accumulates (score, label) pixel counts image by image; computes pooled metrics.

    Exact until the table of distinct scores grows beyond ``max_distinct`` values. Then all
    scores (stored and future) are rounded to the nearest float32 with fewer mantissa bits, one
    bit less at a time until the table fits, and ``exact`` becomes False. Bound: with ``b``
    mantissa bits (see ``mantissa_bits``) each score moves by at most ``|score| * 2**-b``
    (float32 normal range, |score| > 1.2e-38; smaller magnitudes may round to 0 or 1.2e-38,
    larger ones are clipped to the float32 maximum). The rounding is monotone, so the metrics are
    exactly those of the rounded scores: the order of two pixels never flips, it can only become
    a tie, and only for scores whose relative difference is below ``2**(1 - b)``.
    """

    def __init__(self, max_distinct: int = DEFAULT_MAX_DISTINCT) -> None:
        if max_distinct < MIN_MAX_DISTINCT:
            raise ValueError(
                f"max_distinct must be at least {MIN_MAX_DISTINCT}, got {max_distinct}"
            )
        self.max_distinct = max_distinct
        self._values = np.empty(0, dtype=np.float64)
        self._positives = np.empty(0, dtype=np.int64)
        self._negatives = np.empty(0, dtype=np.int64)
        self._mantissa_bits: int | None = None
        self._num_images = 0

    @property
    def exact(self) -> bool:
        """True while no coarsening happened."""
        return self._mantissa_bits is None

    @property
    def mantissa_bits(self) -> int | None:
        """Mantissa bits kept after coarsening; None while exact."""
        return self._mantissa_bits

    @property
    def num_distinct(self) -> int:
        """Number of distinct score values in the table."""
        return int(self._values.size)

    @property
    def num_images(self) -> int:
        """Number of images fed so far."""
        return self._num_images

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Add one image: HxW float scores and HxW labels (0 normal, 1 anomaly, 255 ignored)."""
        scores = np.asarray(scores)
        labels = np.asarray(labels)
        _check_image(scores, labels)
        evaluated = labels != IGNORE_ID
        values = scores[evaluated].astype(np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            bad = int((~finite).sum())
            raise ValueError(f"scores contain {bad} NaN or infinite values at non-ignored pixels")
        if self._mantissa_bits is not None:
            values = round_mantissa(values, self._mantissa_bits)
        distinct, inverse = np.unique(values, return_inverse=True)
        is_anomaly = labels[evaluated] == ANOMALY_LABEL
        positives = np.bincount(inverse[is_anomaly], minlength=distinct.size)
        negatives = np.bincount(inverse, minlength=distinct.size) - positives
        self._merge(distinct, positives, negatives)
        self._num_images += 1
        while self._values.size > self.max_distinct:
            self._coarsen()

    @property
    def num_anomaly_pixels(self) -> int:
        """Anomaly pixels fed so far."""
        return int(self._positives.sum())

    @property
    def num_normal_pixels(self) -> int:
        """Normal pixels fed so far."""
        return int(self._negatives.sum())

    def threshold_at_tpr(self, target: float = TPR_TARGET) -> float:
        """The score threshold of FPR95: the first ROC threshold whose TPR reaches ``target``.

        A pixel counts as flagged when its score is at or above the threshold.
        """
        if not 0.0 < target <= 1.0:
            raise ValueError(f"TPR target must be in (0, 1], got {target}")
        y_true, y_score, weight = self._weighted_samples()
        _, tpr, thresholds = roc_curve(
            y_true, y_score, sample_weight=weight, drop_intermediate=False
        )
        return float(thresholds[np.argmax(tpr >= target)])

    def threshold_best_f1(self) -> float:
        """The score threshold of the best pixel F1 on the pooled precision-recall curve (a
        pixel counts as flagged at or above it); SegmentMeIfYouCan binarises its maps there."""
        y_true, y_score, weight = self._weighted_samples()
        precision, recall, thresholds = precision_recall_curve(
            y_true, y_score, sample_weight=weight
        )
        total = precision[:-1] + recall[:-1]
        f1 = np.divide(
            2 * precision[:-1] * recall[:-1], total, out=np.zeros_like(total), where=total > 0
        )
        return float(thresholds[int(np.argmax(f1))])

    def counts_at_or_above(self, threshold: float) -> tuple[int, int]:
        """Anomaly and normal pixels scored at or above ``threshold``.

        After coarsening the threshold is rounded like the stored scores, so the counts are
        those of the rounded scores.
        """
        if self._mantissa_bits is not None:
            threshold = float(round_mantissa(np.array([threshold]), self._mantissa_bits)[0])
        start = int(np.searchsorted(self._values, threshold, side="left"))
        return int(self._positives[start:].sum()), int(self._negatives[start:].sum())

    def compute(self) -> AnomalyMetrics:
        """AP, FPR95 and AUROC over all pixels fed so far."""
        y_true, y_score, weight = self._weighted_samples()
        ap = average_precision_score(y_true, y_score, sample_weight=weight)
        fpr, tpr, _ = roc_curve(y_true, y_score, sample_weight=weight, drop_intermediate=False)
        return AnomalyMetrics(
            ap=float(ap),
            fpr95=float(fpr[np.argmax(tpr >= TPR_TARGET)]),
            auroc=float(auc(fpr, tpr)),
            num_pixels=int(self._positives.sum() + self._negatives.sum()),
            num_anomaly_pixels=int(self._positives.sum()),
            exact=self.exact,
        )

    def curves(self) -> AnomalyCurves:
        """Precision-recall and ROC curves over all pixels fed so far."""
        y_true, y_score, weight = self._weighted_samples()
        precision, recall, _ = precision_recall_curve(y_true, y_score, sample_weight=weight)
        fpr, tpr, _ = roc_curve(y_true, y_score, sample_weight=weight, drop_intermediate=False)
        return AnomalyCurves(precision=precision, recall=recall, fpr=fpr, tpr=tpr)

    def _merge(self, values: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> None:
        merged = np.union1d(self._values, values)
        merged_positives = np.zeros(merged.size, dtype=np.int64)
        merged_negatives = np.zeros(merged.size, dtype=np.int64)
        for table_values, table_positives, table_negatives in (
            (self._values, self._positives, self._negatives),
            (values, positives, negatives),
        ):
            index = np.searchsorted(merged, table_values)
            merged_positives[index] += table_positives
            merged_negatives[index] += table_negatives
        self._values, self._positives, self._negatives = merged, merged_positives, merged_negatives

    def _coarsen(self) -> None:
        bits = FLOAT32_MANTISSA_BITS if self._mantissa_bits is None else self._mantissa_bits - 1
        self._mantissa_bits = bits
        rounded = round_mantissa(self._values, bits)  # monotone, so still sorted
        starts = np.flatnonzero(np.concatenate(([True], rounded[1:] != rounded[:-1])))
        self._values = rounded[starts]
        self._positives = np.add.reduceat(self._positives, starts)
        self._negatives = np.add.reduceat(self._negatives, starts)

    def _weighted_samples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The table as scikit-learn input: one sample per (value, label) with its pixel count."""
        num_positive = int(self._positives.sum())
        num_negative = int(self._negatives.sum())
        if num_positive == 0 or num_negative == 0:
            raise ValueError(
                f"anomaly metrics need both anomaly (label 1) and normal (label 0) pixels; got "
                f"{num_positive} anomaly and {num_negative} normal pixels "
                f"over {self._num_images} images"
            )
        has_positive = self._positives > 0
        has_negative = self._negatives > 0
        y_score = np.concatenate((self._values[has_positive], self._values[has_negative]))
        y_true = np.concatenate(
            (np.ones(has_positive.sum(), np.int64), np.zeros(has_negative.sum(), np.int64))
        )
        weight = np.concatenate(
            (self._positives[has_positive], self._negatives[has_negative])
        ).astype(np.float64)
        return y_true, y_score, weight


def round_mantissa(values: np.ndarray, bits: int) -> np.ndarray:
    """Round to the nearest float32 with ``bits`` mantissa bits (monotone), returned as float64."""
    if not 0 <= bits <= FLOAT32_MANTISSA_BITS:
        raise ValueError(f"mantissa bits must be in [0, {FLOAT32_MANTISSA_BITS}], got {bits}")
    limit = float(np.finfo(np.float32).max)
    pattern = np.clip(values, -limit, limit).astype(np.float32).view(np.uint32)
    dropped = FLOAT32_MANTISSA_BITS - bits
    if dropped:
        # Sign-magnitude layout: rounding the magnitude bits rounds |x| to nearest and keeps the
        # sign; the largest magnitude rounds at most up to the infinity pattern, clipped below.
        half = np.uint32(1 << (dropped - 1))
        mask = np.uint32(0xFFFFFFFF ^ ((1 << dropped) - 1))
        pattern = (pattern + half) & mask
    return np.clip(pattern.view(np.float32).astype(np.float64), -limit, limit)


def _check_image(scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D HxW array, got shape {scores.shape}")
    if scores.shape != labels.shape:
        raise ValueError(f"scores shape {scores.shape} differs from labels shape {labels.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        raise ValueError(f"scores must be a floating-point array, got dtype {scores.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array, got dtype {labels.dtype}")
    invalid = (labels != NORMAL_LABEL) & (labels != ANOMALY_LABEL) & (labels != IGNORE_ID)
    if invalid.any():
        found = np.unique(labels[invalid])[:10].tolist()
        raise ValueError(f"labels must be 0, 1 or {IGNORE_ID}; found {found}")
