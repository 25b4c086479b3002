"""Anomaly objects, the planner summary and the drivable area on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.postprocess.drivable import fill_holes, parse_class_names
from synboost_ros.postprocess.objects import ObjectSettings, extract_objects
from synboost_ros.postprocess.summary import SummarySettings, summarize

ROAD, SIDEWALK, BUILDING = 0, 1, 2
SETTINGS = ObjectSettings(low=0.4, high=0.6, min_area=4)


def street(height: int = 40, width: int = 60) -> np.ndarray:
    """Building above row 20, road below it; a sidewalk strip on the right."""
    semantic = np.full((height, width), BUILDING, dtype=np.uint8)
    semantic[20:, :] = ROAD
    semantic[20:, 50:] = SIDEWALK
    return semantic


def test_hysteresis_keeps_weak_regions_with_a_strong_seed_only():
    anomaly = np.zeros((40, 60), np.float32)
    anomaly[24:30, 10:16] = 0.5  # weak region ...
    anomaly[26, 12] = 0.9  # ... with a strong seed
    anomaly[24:30, 30:36] = 0.5  # weak region without a seed: no object
    anomaly[35:37, 40:42] = 0.7  # strong but 4 pixels: exactly min_area
    found = extract_objects(anomaly, street(), SETTINGS)
    boxes = [(o.x, o.y, o.width, o.height, o.area) for o in found.objects]
    assert boxes == [(10, 24, 6, 6, 36), (40, 35, 2, 2, 4)]  # largest first
    first = found.objects[0]
    assert first.max_score == pytest.approx(0.9)
    assert first.mean_score == pytest.approx((35 * 0.5 + 0.9) / 36)
    assert extract_objects(anomaly, street(), ObjectSettings(0.4, 0.6, 5)).objects[1:] == []


def test_one_object_per_connected_region_with_eight_connectivity():
    anomaly = np.zeros((40, 60), np.float32)
    for step in range(6):  # a diagonal line of strong pixels
        anomaly[22 + step, 5 + step] = 0.8
    anomaly[22, 5] = 0.95
    (found,) = extract_objects(anomaly, street(), SETTINGS).objects
    assert (found.x, found.y, found.width, found.height, found.area) == (5, 22, 6, 6, 6)
    assert found.max_score == pytest.approx(0.95)


def test_border_class_and_standing_on_the_drivable_area():
    semantic = street()
    anomaly = np.zeros((40, 60), np.float32)
    anomaly[14:24, 10:14] = 0.8  # mostly in front of the building, its foot on the road
    anomaly[5:10, 30:36] = 0.8  # on the facade: the band below is building
    anomaly[28:32, 52:56] = 0.8  # on the sidewalk
    objects = {o.x: o for o in extract_objects(anomaly, semantic, SETTINGS).objects}
    assert objects[10].on_drivable and objects[10].border_class_name == "building"
    assert not objects[30].on_drivable and objects[30].border_class == BUILDING
    assert not objects[52].on_drivable and objects[52].border_class_name == "sidewalk"
    with_sidewalk = ObjectSettings(0.4, 0.6, 4, parse_class_names("road, sidewalk"))
    objects = {o.x: o for o in extract_objects(anomaly, semantic, with_sidewalk).objects}
    assert objects[52].on_drivable and not objects[30].on_drivable


def test_an_object_at_the_bottom_edge_is_judged_by_its_border_ring():
    semantic = street()
    anomaly = np.zeros((40, 60), np.float32)
    anomaly[34:40, 20:26] = 0.9  # touches the bottom row: no band below it
    (found,) = extract_objects(anomaly, semantic, SETTINGS).objects
    assert found.on_drivable and found.border_class == ROAD
    semantic[30:, 15:31] = BUILDING  # now its ring is building
    (found,) = extract_objects(anomaly, semantic, SETTINGS).objects
    assert not found.on_drivable


def test_an_object_covering_the_frame_has_no_border_class():
    anomaly = np.full((10, 10), 0.9, np.float32)
    (found,) = extract_objects(anomaly, np.zeros((10, 10), np.uint8), SETTINGS).objects
    assert found.border_class == IGNORE_ID and found.border_class_name == "none"
    assert found.area == 100


def test_nan_scores_count_as_zero_and_bad_inputs_are_named():
    anomaly = np.full((40, 60), np.nan, np.float32)
    assert extract_objects(anomaly, street(), SETTINGS).objects == []
    with pytest.raises(ValueError, match="one size"):
        extract_objects(np.zeros((4, 4), np.float32), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="low <= high"):
        ObjectSettings(low=0.7, high=0.6)
    with pytest.raises(ValueError, match="min_area"):
        ObjectSettings(min_area=0)


def test_class_names_parse_and_unknown_ones_are_named():
    assert parse_class_names("road") == (0,)
    assert parse_class_names("sidewalk,road") == (0, 1)
    assert parse_class_names(["terrain"]) == (CLASS_NAMES.index("terrain"),)
    with pytest.raises(ValueError, match="unknown class names \\['roads'\\]"):
        parse_class_names("roads")
    with pytest.raises(ValueError, match="at least one"):
        parse_class_names(" , ")


def test_fill_holes_fills_enclosed_regions_only():
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    mask[4:6, 4:6] = False  # enclosed hole
    mask[2:4, 7] = False  # notch open to the outside of the square
    filled = fill_holes(mask)
    assert filled[4:6, 4:6].all()
    assert not filled[0:2].any() and not filled[:, 8:].any()


def test_summary_over_the_drivable_area_and_its_objects():
    semantic = street()
    anomaly = np.zeros((40, 60), np.float32)
    anomaly[14:24, 10:14] = 0.8  # stands on the road: its 24 pixels above row 20 count too
    anomaly[5:10, 30:36] = 0.95  # on the facade: not on the drivable area
    anomaly[30, 0] = 0.55  # one anomalous road pixel, no object (below min_area)
    objects = extract_objects(anomaly, semantic, SETTINGS)
    settings = SummarySettings(anomaly_threshold=0.5, alarm_score=0.7, alarm_share=0.01)
    summary = summarize(anomaly, semantic, objects, (ROAD,), settings)
    drivable = 20 * 50 + 24  # road pixels + the object's pixels above the road
    assert summary.drivable_pixels == drivable
    assert summary.max_score == pytest.approx(0.8)  # the facade's 0.95 is not on it
    assert summary.anomalous_share == pytest.approx((40 + 1) / drivable)
    assert (summary.objects, summary.objects_on_drivable) == (2, 1)
    assert summary.alarm  # 0.8 >= 0.7 and 0.04 >= 0.01
    keys = dict(summary.key_values())
    assert keys["alarm"] == "true" and keys["objects"] == "2" and keys["alarm_share"] == "0.01"
    strict = SummarySettings(anomaly_threshold=0.5, alarm_score=0.85, alarm_share=0.01)
    assert not summarize(anomaly, semantic, objects, (ROAD,), strict).alarm
    rare = SummarySettings(anomaly_threshold=0.5, alarm_score=0.7, alarm_share=0.05)
    assert not summarize(anomaly, semantic, objects, (ROAD,), rare).alarm


def test_summary_without_a_drivable_area_is_quiet():
    semantic = np.full((10, 10), BUILDING, np.uint8)
    anomaly = np.ones((10, 10), np.float32)
    objects = extract_objects(anomaly, semantic, SETTINGS)
    summary = summarize(anomaly, semantic, objects, (ROAD,), SummarySettings(alarm_share=0.0))
    assert (summary.max_score, summary.anomalous_share, summary.drivable_pixels) == (0.0, 0.0, 0)
    assert not summary.alarm
    assert summary.to_json()["objects"] == 1
