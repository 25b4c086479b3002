"""Semantic-segmentation metrics from a confusion matrix pooled over a data set.

IoU of a class = TP / (TP + FP + FN) over all pixels of the set. As in the Cityscapes evaluation,
a class whose union is empty (absent from both ground truth and prediction) has no IoU (None) and
is left out of the mean. Pixels whose target is ``ignore_index`` are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID


@dataclass(frozen=True)
class SegmentationMetrics:
    """Mean IoU over classes with a non-empty union, per-class IoU and pixel accuracy."""

    miou: float
    per_class_iou: dict[str, float | None]
    pixel_accuracy: float


class ConfusionMatrixAccumulator:
    """Accumulates a ``num_classes`` x ``num_classes`` confusion matrix (rows: target)."""

    def __init__(
        self,
        num_classes: int = len(CLASS_NAMES),
        ignore_index: int = IGNORE_ID,
        class_names: Sequence[str] | None = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if class_names is None:
            default_names = num_classes == len(CLASS_NAMES)
            class_names = CLASS_NAMES if default_names else [str(i) for i in range(num_classes)]
        if len(class_names) != num_classes:
            raise ValueError(f"got {len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = tuple(class_names)
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.num_images = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add one image: predicted and ground-truth class-id maps of the same shape."""
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {pred.shape} differs from target shape {target.shape}"
            )
        for name, array in (("prediction", pred), ("target", target)):
            if not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"{name} must be an integer class-id map, got dtype {array.dtype}")
        evaluated = target != self.ignore_index
        target_ids = target[evaluated].astype(np.int64)
        pred_ids = pred[evaluated].astype(np.int64)
        for name, ids in (("target", target_ids), ("prediction", pred_ids)):
            out_of_range = (ids < 0) | (ids >= self.num_classes)
            if out_of_range.any():
                found = np.unique(ids[out_of_range])[:10].tolist()
                raise ValueError(
                    f"{name} class ids must be in [0, {self.num_classes}) at evaluated pixels "
                    f"(target {self.ignore_index} is ignored); found {found}"
                )
        pairs = target_ids * self.num_classes + pred_ids
        counts = np.bincount(pairs, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes)
        self.num_images += 1

    def compute(self) -> SegmentationMetrics:
        """mIoU, per-class IoU (None for classes with an empty union) and pixel accuracy."""
        total = int(self.matrix.sum())
        if total == 0:
            raise ValueError(
                "no evaluated pixels: update() was not called or all targets are ignored"
            )
        true_positives = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - true_positives
        present = union > 0
        iou = np.divide(true_positives, union, out=np.zeros_like(true_positives), where=present)
        per_class = {
            name: float(iou[i]) if present[i] else None for i, name in enumerate(self.class_names)
        }
        return SegmentationMetrics(
            miou=float(iou[present].mean()),
            per_class_iou=per_class,
            pixel_accuracy=float(true_positives.sum() / total),
        )
