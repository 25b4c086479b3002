"""Per-class loss weights of the segmentation trainer, on a hand-made Cityscapes layout."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from synboost_ros.classes import NUM_CLASSES
from synboost_ros.data.cityscapes import CityscapesDataset
from synboost_ros.training.segmentation import segmentation_class_weights, train_id_histogram

ROAD, CAR = 0, 13  # train ids of labelIds 7 and 26


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def _frame(root: Path, stem: str, label_ids: np.ndarray) -> None:
    """Black image, labelIds, and instanceIds equal to the labelIds (no instances)."""
    labels = root / "gtFine" / "train" / "city" / stem
    _write(
        root / "leftImg8bit" / "train" / "city" / f"{stem}_leftImg8bit.png",
        np.zeros((*label_ids.shape, 3), np.uint8),
    )
    _write(labels.with_name(f"{stem}_gtFine_labelIds.png"), label_ids)
    _write(labels.with_name(f"{stem}_gtFine_instanceIds.png"), label_ids.astype(np.uint16))


@pytest.fixture()
def two_frames(tmp_path) -> CityscapesDataset:
    first = np.full((4, 6), 7, np.uint8)  # road
    first[0, :2] = 26  # two car pixels
    first[1, 0] = 5  # 'dynamic': ignored by the train ids
    _frame(tmp_path, "city_000000_000001", first)
    _frame(tmp_path, "city_000000_000002", np.full((4, 6), 7, np.uint8))
    return CityscapesDataset(tmp_path, "train")


def test_histogram_counts_train_id_pixels_and_leaves_out_ignored_ones(two_frames) -> None:
    counts = train_id_histogram(two_frames)
    assert counts.shape == (NUM_CLASSES,)
    assert counts[ROAD] == 21 + 24 and counts[CAR] == 2
    assert counts.sum() == 47


def test_enet_weights_favour_rare_classes_and_stay_finite_for_absent_ones(two_frames) -> None:
    assert segmentation_class_weights(two_frames, "none") is None
    weights = segmentation_class_weights(two_frames, "enet").numpy()
    total = 47 + (NUM_CLASSES - 2)  # each absent class counts as one pixel
    assert weights[ROAD] == pytest.approx(1 / math.log(1.02 + 45 / total), rel=1e-6)
    assert weights[CAR] == pytest.approx(1 / math.log(1.02 + 2 / total), rel=1e-6)
    assert weights[ROAD] < weights[CAR] < weights.max()
    assert np.isfinite(weights).all()
    with pytest.raises(ValueError, match="class weighting must be one of"):
        segmentation_class_weights(two_frames, "median")
