"""Cityscapes label definitions: the 19 train classes, their palette and the labelId mapping."""

from __future__ import annotations

import numpy as np

IGNORE_ID = 255

CLASS_NAMES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
NUM_CLASSES = len(CLASS_NAMES)

PALETTE = np.array(
    [
        (128, 64, 128),
        (244, 35, 232),
        (70, 70, 70),
        (102, 102, 156),
        (190, 153, 153),
        (153, 153, 153),
        (250, 170, 30),
        (220, 220, 0),
        (107, 142, 35),
        (152, 251, 152),
        (70, 130, 180),
        (220, 20, 60),
        (255, 0, 0),
        (0, 0, 142),
        (0, 0, 70),
        (0, 60, 100),
        (0, 80, 100),
        (0, 0, 230),
        (119, 11, 32),
    ],
    dtype=np.uint8,
)

# Train ids of the "thing" classes, the ones with instance ids.
THING_TRAIN_IDS: tuple[int, ...] = (11, 12, 13, 14, 15, 16, 17, 18)

# Cityscapes labelIds of void objects used as anomalies for training: 'static' and 'dynamic'.
VOID_OBJECT_LABEL_IDS: tuple[int, ...] = (4, 5)

# labelId -> trainId for the 34 Cityscapes labelIds; everything else is ignored.
_LABEL_TO_TRAIN = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
LABEL_ID_TO_TRAIN_ID = np.full(256, IGNORE_ID, dtype=np.uint8)
for _label_id, _train_id in _LABEL_TO_TRAIN.items():
    LABEL_ID_TO_TRAIN_ID[_label_id] = _train_id

# trainId -> canonical labelId, for writing label maps in the Cityscapes layout.
TRAIN_ID_TO_LABEL_ID = np.zeros(NUM_CLASSES, dtype=np.uint8)
for _label_id, _train_id in _LABEL_TO_TRAIN.items():
    TRAIN_ID_TO_LABEL_ID[_train_id] = _label_id


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds image to trainIds (255 = ignore)."""
    return LABEL_ID_TO_TRAIN_ID[label_ids.astype(np.uint8)]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """Return an HxWx3 RGB image of a train-id map; ignored pixels are black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:NUM_CLASSES] = PALETTE
    return palette[train_ids.astype(np.uint8)]
