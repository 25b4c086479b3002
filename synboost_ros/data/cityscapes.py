"""Reader of the Cityscapes layout (fine annotations), also written by the procedural world.

``ROOT/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png`` with
``ROOT/gtFine/<split>/<city>/<stem>_gtFine_labelIds.png`` and ``..._gtFine_instanceIds.png``.
Instance ids follow Cityscapes: labelId * 1000 + k for thing instances, the labelId elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from synboost_ros.classes import (
    LABEL_ID_TO_TRAIN_ID,
    THING_TRAIN_IDS,
    VOID_OBJECT_LABEL_IDS,
    label_ids_to_train_ids,
)
from synboost_ros.data.image_files import check_same_size, read_rgb, read_single_channel

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
MAX_LABEL_ID = 33


@dataclass(frozen=True)
class CityscapesSample:
    """One annotated frame."""

    image: np.ndarray  # RGB uint8 HxWx3
    train_ids: np.ndarray  # uint8 HxW, 255 = ignore
    label_ids: np.ndarray  # uint8 HxW, Cityscapes labelIds
    instance_ids: np.ndarray  # int32 HxW
    stem: str


class ThingInstance(NamedTuple):
    """One object of a thing class."""

    instance_id: int
    train_id: int
    mask: np.ndarray  # bool HxW


class CityscapesDataset:
    """Frames of one split, ordered by city and stem."""

    def __init__(self, root: str | Path, split: str) -> None:
        root = Path(root)
        image_dir = root / "leftImg8bit" / split
        label_dir = root / "gtFine" / split
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"Cityscapes folder not found: {folder}")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise FileNotFoundError(f"no *{IMAGE_SUFFIX} images in the city folders of {image_dir}")
        self._entries: list[tuple[Path, Path, Path, str]] = []
        for image in images:
            stem = image.name[: -len(IMAGE_SUFFIX)]
            city = image.parent.name
            label = label_dir / city / f"{stem}{LABEL_SUFFIX}"
            instance = label_dir / city / f"{stem}{INSTANCE_SUFFIX}"
            for needed in (label, instance):
                if not needed.is_file():
                    raise FileNotFoundError(f"image {image} has no label file {needed}")
            self._entries.append((image, label, instance, stem))

    def __len__(self) -> int:
        return len(self._entries)

    def stem(self, index: int) -> str:
        """The frame name of one entry (e.g. ``world_000002_000000``)."""
        return self._entries[index][3]

    def label_ids(self, index: int) -> np.ndarray:
        """The labelIds of one frame alone, without reading its image."""
        label_path = self._entries[index][1]
        label_ids = read_single_channel(label_path)
        if label_ids.dtype != np.uint8 or int(label_ids.max()) > MAX_LABEL_ID:
            raise ValueError(
                f"label file {label_path} must hold 8-bit Cityscapes labelIds 0..{MAX_LABEL_ID}, "
                f"found {label_ids.dtype} with maximum {int(label_ids.max())}"
            )
        return label_ids

    def __getitem__(self, index: int) -> CityscapesSample:
        image_path, label_path, instance_path, stem = self._entries[index]
        image = read_rgb(image_path)
        label_ids = self.label_ids(index)
        instance_ids = read_single_channel(instance_path).astype(np.int32)
        check_same_size(image, label_ids, image_path, label_path)
        check_same_size(image, instance_ids, image_path, instance_path)
        return CityscapesSample(
            image=image,
            train_ids=label_ids_to_train_ids(label_ids),
            label_ids=label_ids,
            instance_ids=instance_ids,
            stem=stem,
        )


def void_object_mask(label_ids: np.ndarray) -> np.ndarray:
    """Pixels of void objects (labelIds 'static' and 'dynamic')."""
    return np.isin(label_ids, VOID_OBJECT_LABEL_IDS)


def thing_instances(instance_ids: np.ndarray, label_ids: np.ndarray) -> list[ThingInstance]:
    """Instances of thing classes, ordered by id; masks keep only pixels of the instance's class."""
    found = []
    for instance_id in np.unique(instance_ids[instance_ids >= 1000]).tolist():
        label_id = instance_id // 1000
        train_id = int(LABEL_ID_TO_TRAIN_ID[label_id]) if label_id < 256 else 255
        if train_id not in THING_TRAIN_IDS:
            continue
        mask = (instance_ids == instance_id) & (label_ids == label_id)
        if mask.any():
            found.append(ThingInstance(int(instance_id), train_id, mask))
    return found
