"""Dataset readers: Cityscapes layout and anomaly sets, on hand-made and generated files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from synboost_ros.data.anomaly_sets import AnomalyDataset
from synboost_ros.data.cityscapes import CityscapesDataset, thing_instances, void_object_mask
from synboost_ros.data.world import generate_world


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _cityscapes_frame(root: Path, split: str, city: str, stem: str, size=(4, 6)) -> None:
    """Image plus labelIds (road, a car instance, a 'dynamic' void object) and instanceIds."""
    height, width = size
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 2] = 200  # red in BGR
    labels = np.full(size, 7, np.uint8)  # road
    labels[0, :2] = 26  # car
    labels[1, 0] = 5  # dynamic
    instances = labels.astype(np.uint16)
    instances[0, :2] = 26001
    gt = root / "gtFine" / split / city
    _write(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image)
    _write(gt / f"{stem}_gtFine_labelIds.png", labels)
    _write(gt / f"{stem}_gtFine_instanceIds.png", instances)


def test_cityscapes_reader_parses_a_hand_made_layout(tmp_path):
    _cityscapes_frame(tmp_path, "val", "bonn", "bonn_000001_000019")
    _cityscapes_frame(tmp_path, "val", "aachen", "aachen_000000_000019")
    dataset = CityscapesDataset(tmp_path, "val")
    assert len(dataset) == 2
    sample = dataset[0]
    assert sample.stem == "aachen_000000_000019"
    assert sample.image.shape == (4, 6, 3) and tuple(sample.image[0, 0]) == (200, 0, 0)
    assert sample.instance_ids.dtype == np.int32 and sample.instance_ids[0, 0] == 26001
    assert sample.train_ids[0, 0] == 13 and sample.train_ids[2, 2] == 0
    assert sample.train_ids[1, 0] == 255
    assert void_object_mask(sample.label_ids).sum() == 1
    (car,) = thing_instances(sample.instance_ids, sample.label_ids)
    assert car.instance_id == 26001 and car.train_id == 13 and car.mask.sum() == 2


def test_thing_instances_skip_stuff_and_void_ids():
    label_ids = np.array([[26, 26, 24], [7, 5, 24]], np.uint8)
    instance_ids = np.array([[26000, 26000, 24003], [7, 5000, 24003]], np.int32)
    found = thing_instances(instance_ids, label_ids)
    assert [(i.instance_id, i.train_id, int(i.mask.sum())) for i in found] == [
        (24003, 11, 2),
        (26000, 13, 2),
    ]


def test_cityscapes_reader_names_what_is_missing_or_broken(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        CityscapesDataset(tmp_path, "train")
    _cityscapes_frame(tmp_path, "train", "ulm", "ulm_000000_000019")
    label = tmp_path / "gtFine/train/ulm/ulm_000000_000019_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(FileNotFoundError, match=r"ulm_000000_000019_gtFine_labelIds\.png"):
        CityscapesDataset(tmp_path, "train")
    label.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read label file .*labelIds\.png"):
        CityscapesDataset(tmp_path, "train")[0]
    _write(label, np.full((3, 6), 7, np.uint8))
    with pytest.raises(ValueError, match="is 6x3 but image"):
        CityscapesDataset(tmp_path, "train")[0]


def _anomaly_frame(root: Path, stem: str, label: np.ndarray, suffix: str = ".png") -> None:
    image = np.full((*label.shape, 3), 90, np.uint8)
    _write(root / "images" / f"{stem}{suffix}", image)
    _write(root / "labels" / f"{stem}.png", label)


def test_anomaly_reader_parses_fishyscapes_and_folder_formats(tmp_path):
    label = np.array([[0, 1, 255], [0, 0, 1]], np.uint8)
    _anomaly_frame(tmp_path, "b", label)
    _anomaly_frame(tmp_path, "a", label, suffix=".jpg")
    fishyscapes = AnomalyDataset(tmp_path, "fishyscapes")
    assert [fishyscapes[i].stem for i in range(len(fishyscapes))] == ["b"]
    folder = AnomalyDataset(tmp_path, "folder")
    assert [folder[i].stem for i in range(len(folder))] == ["a", "b"]
    sample = folder[1]
    np.testing.assert_array_equal(sample.label, label)
    assert sample.image.shape == (2, 3, 3) and sample.image.dtype == np.uint8


def test_anomaly_reader_refuses_bad_labels_and_missing_files(tmp_path):
    _anomaly_frame(tmp_path, "frame", np.array([[0, 2], [7, 1]], np.uint8))
    with pytest.raises(ValueError, match=r"frame\.png may only hold .* found \[2, 7\]"):
        AnomalyDataset(tmp_path)[0]
    (tmp_path / "labels" / "frame.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels/frame\.png"):
        AnomalyDataset(tmp_path)
    with pytest.raises(ValueError, match="unknown anomaly set format"):
        AnomalyDataset(tmp_path, "lostandfound")
    with pytest.raises(FileNotFoundError, match="images"):
        AnomalyDataset(tmp_path / "nowhere")


def test_readers_parse_a_generated_anomaly_set(tmp_path):
    generate_world(tmp_path, n=2, seed=3, size=(32, 64), anomalies=True, split="val", workers=1)
    anomalies = AnomalyDataset(tmp_path, "fishyscapes")
    semantic = CityscapesDataset(tmp_path / "cityscapes", "val")
    assert len(anomalies) == len(semantic) == 2
    for index in range(2):
        frame, truth = anomalies[index], semantic[index]
        assert frame.stem == truth.stem
        np.testing.assert_array_equal(frame.image, truth.image)
        np.testing.assert_array_equal(frame.label == 1, truth.label_ids == 0)
        np.testing.assert_array_equal(frame.label == 255, void_object_mask(truth.label_ids))
