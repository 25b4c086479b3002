"""``synboost demo evaluate``: the drive's ground truth, flicker, and a run on a generated bag."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from synboost_ros.cli.main import main
from synboost_ros.demo.drive_bag import read_drive_bag
from synboost_ros.demo.drive_evaluation import (
    TruthFrame,
    evaluate_drive,
    evaluate_variant,
    flicker,
    road_region_label,
    truth_frames,
)
from synboost_ros.demo.make_drive import DriveSpec, make_drive_bag

SPEC = DriveSpec(frames=3, size=(128, 256))


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drive") / "bag"
    make_drive_bag(folder, SPEC)
    return folder


def truth(label: np.ndarray, train_ids: np.ndarray) -> TruthFrame:
    return TruthFrame(np.zeros((*label.shape, 3), np.uint8), label, label, train_ids)


def test_road_region_keeps_the_road_what_it_encloses_and_the_anomalies():
    train_ids = np.full((6, 6), 2, np.uint8)
    train_ids[2:, :] = 0
    train_ids[3, 3] = 13  # a car inside the road: enclosed
    label = np.zeros((6, 6), np.uint8)
    label[0, 0] = 1  # an anomaly off the road stays
    road = road_region_label(label, train_ids)
    assert road[0, 0] == 1 and (road[0, 1:] == 255).all() and (road[1] == 255).all()
    assert (road[2:] == 0).all()  # the enclosed car pixel included


def test_flicker_counts_static_normal_pixels_of_one_class_only():
    label = np.zeros((2, 2), np.uint8)
    moved = np.zeros((2, 2), np.uint8)
    moved[0, 0] = 1  # anomaly in the second frame: not static
    classes = np.zeros((2, 2), np.uint8)
    other = classes.copy()
    other[0, 1] = 5  # class changed: not static
    a, b = truth(label, classes), truth(moved, other)
    previous = np.array([[0.0, 0.0], [0.2, 0.5]], np.float32)
    current = np.array([[0.9, 0.9], [0.4, 0.5]], np.float32)
    assert flicker(previous, current, a, b) == pytest.approx((0.2 + 0.0) / 2)


def test_a_steady_scorer_has_no_flicker_and_perfect_scores(bag):
    frames = truth_frames(read_drive_bag(bag), SPEC)
    assert len(frames) == 3 and all((f.label == 1).any() for f in frames)
    by_image = {f.image.tobytes(): f.label for f in frames}

    def oracle(image):  # the labels themselves as scores
        return (by_image[image.tobytes()] == 1).astype(np.float32), {}

    result = evaluate_variant(oracle, frames)
    assert result["full"]["ap"] == 1.0 and result["road"]["ap"] == 1.0
    assert result["full"]["fpr95"] == 0.0 and result["flicker"] == 0.0
    # SegmentMeIfYouCan drops predicted components under 50 pixels: the oracle's components
    # of 10-49 pixels are missed (FN), the larger ones found exactly (TP, PPV 1).
    sizes = [
        stats[1:, cv2.CC_STAT_AREA]
        for stats in (
            cv2.connectedComponentsWithStats((f.label == 1).astype(np.uint8), connectivity=8)[2]
            for f in frames
        )
    ]
    sizes = np.concatenate(sizes)
    tp, fn = int((sizes >= 50).sum()), int(((sizes >= 10) & (sizes < 50)).sum())
    components = result["full"]["components"]
    assert components["ppv"] == 1.0 and tp >= 1
    assert components["mean_f1"] == pytest.approx(2 * tp / (2 * tp + fn))


def test_a_bag_of_another_drive_is_refused(bag):
    with pytest.raises(ValueError, match="does not match the drive"):
        truth_frames(read_drive_bag(bag), DriveSpec(frames=3, size=(128, 256), index=7))


def test_every_variant_runs_through_the_pipeline_and_costs_its_stages(bag, torch_pipeline):
    report = evaluate_drive(torch_pipeline, bag, SPEC)
    assert report["frames"] == 3
    variants = report["variants"]
    assert list(variants) == ["none", "temporal", "gating", "temporal+gating"]
    assert set(variants["temporal+gating"]["stage_ms_p50"]) == {"temporal", "gating"}
    assert variants["none"]["stage_ms_p50"] == {}
    for result in variants.values():
        assert 0.0 <= result["full"]["ap"] <= 1.0 and result["flicker"] >= 0.0
        assert result["road"]["pixels"] < result["full"]["pixels"]
    assert not torch_pipeline.postprocess.temporal_fusion  # reset afterwards


def test_the_command_writes_its_report(bag, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = ["demo", "evaluate", "--bag", str(bag), "--random-weights", "--backend", "torch"]
    assert main([*args, "--device", "cpu", "--limit", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "temporal+gating" in printed and "flicker" in printed
    assert json.loads(out.read_text())["frames"] == 2
