"""Procedural world: determinism, label validity, void objects, anomalies, camera motion."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from synboost_ros.classes import THING_TRAIN_IDS, TRAIN_ID_TO_LABEL_ID, VOID_OBJECT_LABEL_IDS
from synboost_ros.cli import world as world_cli
from synboost_ros.data.world import (
    ANOMALY_FAMILIES,
    VOID_FAMILIES,
    generate_world,
    render_scene,
    sample_scene,
)
from synboost_ros.data.world.render import DRAWERS
from synboost_ros.data.world.writer import scene_stem

SIZE = (64, 128)
THING_LABEL_IDS = [int(TRAIN_ID_TO_LABEL_ID[t]) for t in THING_TRAIN_IDS]
CLASS_LABEL_IDS = {int(i) for i in TRAIN_ID_TO_LABEL_ID}


def _render(seed: int, index: int, anomalies: bool = False, offset: float = 0.0):
    return render_scene(sample_scene(seed, index, anomalies), SIZE, offset)


def test_same_seed_gives_identical_scene_and_other_seed_differs():
    first, again = _render(11, 4), _render(11, 4)
    for name in ("image", "label_ids", "instance_ids"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.image, _render(12, 4).image)
    assert not np.array_equal(first.image, _render(11, 5).image)


def _written(root, seed: int, index: int) -> list[bytes]:
    stem = scene_stem(seed, index)
    city = root / "gtFine" / "train" / "world"
    paths = [root / "leftImg8bit" / "train" / "world" / f"{stem}_leftImg8bit.png"]
    paths += [city / f"{stem}_gtFine_{kind}.png" for kind in ("labelIds", "instanceIds")]
    return [p.read_bytes() for p in paths]


def test_scene_does_not_depend_on_count_or_workers(tmp_path):
    generate_world(tmp_path / "a", n=3, seed=5, size=(32, 64), workers=1)
    generate_world(tmp_path / "b", n=5, seed=5, size=(32, 64), workers=2)
    for index in range(3):
        assert _written(tmp_path / "a", 5, index) == _written(tmp_path / "b", 5, index)
    assert len(list((tmp_path / "b" / "leftImg8bit" / "train" / "world").iterdir())) == 5


def test_label_maps_hold_only_valid_ids():
    for index in range(4):
        scene = _render(2, index)
        allowed = CLASS_LABEL_IDS | set(VOID_OBJECT_LABEL_IDS)
        assert set(np.unique(scene.label_ids).tolist()) <= allowed
        train = np.unique(scene.train_ids)
        assert np.all((train <= 18) | (train == 255))
        assert scene.image.dtype == np.uint8 and scene.image.shape == (*SIZE, 3)


def test_thing_pixels_carry_instance_ids_of_their_class():
    instances = 0
    for index in range(4):
        scene = _render(3, index)
        things = np.isin(scene.label_ids, THING_LABEL_IDS)
        np.testing.assert_array_equal(scene.instance_ids[things] // 1000, scene.label_ids[things])
        np.testing.assert_array_equal(scene.instance_ids[~things], scene.label_ids[~things])
        instances += len(np.unique(scene.instance_ids[things]))
    assert instances >= 4


def test_void_objects_appear_with_static_and_dynamic_labels():
    seen: set[int] = set()
    scenes_with_void = 0
    for index in range(12):
        labels = set(np.unique(_render(4, index).label_ids).tolist())
        found = labels & set(VOID_OBJECT_LABEL_IDS)
        scenes_with_void += bool(found)
        seen |= found
    assert seen == set(VOID_OBJECT_LABEL_IDS)
    assert 0 < scenes_with_void < 12


def test_families_are_disjoint_and_drawable():
    assert not set(VOID_FAMILIES) & set(ANOMALY_FAMILIES)
    assert set(VOID_FAMILIES.values()) == set(VOID_OBJECT_LABEL_IDS)
    assert set(VOID_FAMILIES) | set(ANOMALY_FAMILIES) <= set(DRAWERS)


def test_anomaly_scenes_have_anomalies_mostly_low_in_the_image():
    with_anomaly, low, total = 0, 0, 0
    for index in range(10):
        scene = _render(6, index, anomalies=True)
        mask = scene.anomaly_label == 1
        np.testing.assert_array_equal(mask, scene.label_ids == 0)
        void = np.isin(scene.label_ids, VOID_OBJECT_LABEL_IDS)
        assert np.all(scene.anomaly_label[void] == 255)
        assert set(np.unique(scene.anomaly_label).tolist()) <= {0, 1, 255}
        with_anomaly += bool(mask.any())
        low += int(mask[SIZE[0] // 2 :].sum())
        total += int(mask.sum())
    assert with_anomaly >= 8
    assert low > 0.6 * total


def test_normal_scenes_have_no_anomaly_pixels():
    for index in range(5):
        scene = _render(6, index, anomalies=False)
        assert not np.any(scene.label_ids == 0)
        assert not np.any(scene.anomaly_label == 1)


def test_camera_offset_moves_through_the_same_scene():
    params = sample_scene(8, 1)
    still, moved = render_scene(params, SIZE, 0.0), render_scene(params, SIZE, 6.0)
    assert np.abs(still.image.astype(int) - moved.image.astype(int)).mean() > 5
    np.testing.assert_array_equal(moved.image, render_scene(params, SIZE, 6.0).image)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        sample_scene(-1, 0)
    with pytest.raises(ValueError, match="at least 8x8"):
        render_scene(sample_scene(0, 0), (4, 64))
    with pytest.raises(ValueError, match="at least 1"):
        generate_world("unused", n=0, seed=0, size=SIZE)


def test_cli_parses_size_and_writes_the_anomaly_format(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    world_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["world", "generate", "--out", str(tmp_path), "--n", "2", "--seed", "1",
         "--size", "32x64", "--anomalies", "--split", "val", "--workers", "1"]
    )  # fmt: skip
    assert args.size == (32, 64)
    assert args.func(args) == 0
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == [
        f"{scene_stem(1, i)}.png" for i in range(2)
    ]
    assert (tmp_path / "cityscapes" / "gtFine" / "val" / "world").is_dir()
    for size, reason in (("256by512", "must look like HxW"), ("4x64", "at least 8x8")):
        with pytest.raises(SystemExit):
            parser.parse_args(["world", "generate", "--out", "o", "--n", "1", "--size", size])
        assert reason in capsys.readouterr().err
