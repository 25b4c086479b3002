"""Pairing by stamp and the pooled metrics shared by ``synboost bag process`` and the demo."""

from __future__ import annotations

import numpy as np
import pytest

from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator
from synboost_ros.metrics.components import ComponentMetrics
from synboost_ros.metrics.stamped import StampedAnomalyMetrics, StampPairer

RNG = np.random.default_rng(11)
SIZE = (12, 16)


def _frame(index: int) -> tuple[np.ndarray, np.ndarray]:
    label = np.zeros(SIZE, np.uint8)
    label[2:8, index : index + 6] = 1
    label[0] = 255
    return RNG.random(SIZE, dtype=np.float32), label


def test_pairs_come_out_whichever_side_comes_first():
    pairer: StampPairer[str, str] = StampPairer()

    assert pairer.add_first(1, "image 1") is None
    assert pairer.add_second(2, "label 2") is None
    assert pairer.add_second(1, "label 1") == ("image 1", "label 1")
    assert pairer.add_first(2, "image 2") == ("image 2", "label 2")
    assert (pairer.unpaired_first, pairer.unpaired_second) == (0, 0)


def test_old_unpaired_items_are_dropped_and_counted():
    pairer: StampPairer[int, int] = StampPairer(max_pending=2)
    for stamp in range(5):
        pairer.add_first(stamp, stamp)

    assert pairer.unpaired_first == 5  # 3 dropped, 2 waiting
    assert pairer.add_second(0, 0) is None  # 0 was dropped
    assert pairer.add_second(4, 4) == (4, 4)
    assert (pairer.unpaired_first, pairer.unpaired_second) == (4, 1)
    with pytest.raises(ValueError, match="max_pending"):
        StampPairer(max_pending=0)


def test_stamped_metrics_equal_the_accumulators_over_the_paired_frames():
    frames = {stamp: _frame(stamp) for stamp in range(4)}
    metrics = StampedAnomalyMetrics()
    for stamp in (3, 1, 0):  # labels of 0, 1, 3; frame 2 has none
        metrics.add_label(stamp, frames[stamp][1])
    for stamp in range(4):
        metrics.add_scores(stamp, frames[stamp][0])
    pixels, components = AnomalyMetricAccumulator(), ComponentMetrics()
    for stamp in (0, 1, 3):
        pixels.update(*frames[stamp])
        components.update(*frames[stamp])
    truth = pixels.compute()

    result = metrics.result()

    assert result["frames_scored"] == 3 and metrics.pairer.unpaired_first == 1
    assert (result["ap"], result["fpr95"], result["auroc"]) == (truth.ap, truth.fpr95, truth.auroc)
    assert result["components"] == components.compute(pixels.threshold_best_f1()).to_json()


def test_stamped_metrics_say_why_they_are_missing_and_refuse_other_sizes():
    metrics = StampedAnomalyMetrics()
    assert metrics.result()["ap"] is None and "anomaly" in metrics.result()["note"]

    metrics.add_label(5, np.zeros(SIZE, np.uint8))
    with pytest.raises(ValueError, match="of stamp 5 differ in size"):
        metrics.add_scores(5, np.zeros((3, 3), np.float32))
