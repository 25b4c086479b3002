"""Write rendered scenes in the Cityscapes layout and in the Fishyscapes anomaly format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synboost_ros.classes import colorize
from synboost_ros.data.cityscapes import IMAGE_SUFFIX, INSTANCE_SUFFIX, LABEL_SUFFIX
from synboost_ros.data.image_files import write_png
from synboost_ros.data.world.labels import DYNAMIC
from synboost_ros.data.world.render import RenderedScene

CITY = "world"
SPLITS = ("train", "val", "test")
_DYNAMIC_COLOUR = (111, 74, 0)  # Cityscapes colour of 'dynamic'; other void labels are black


def scene_stem(seed: int, index: int) -> str:
    """Cityscapes-like stem ``world_<seed>_<index>``."""
    return f"{CITY}_{seed:06d}_{index:06d}"


def write_cityscapes(root: Path, split: str, stem: str, scene: RenderedScene) -> None:
    """Image, labelIds, 16-bit instanceIds and colour ground truth under ``root``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    gt = root / "gtFine" / split / CITY
    write_png(root / "leftImg8bit" / split / CITY / f"{stem}{IMAGE_SUFFIX}", scene.image)
    write_png(gt / f"{stem}{LABEL_SUFFIX}", scene.label_ids)
    write_png(gt / f"{stem}{INSTANCE_SUFFIX}", scene.instance_ids.astype(np.uint16))
    colour = colorize(scene.train_ids)
    colour[scene.label_ids == DYNAMIC] = _DYNAMIC_COLOUR
    write_png(gt / f"{stem}_gtFine_color.png", colour)


def write_anomaly_scene(root: Path, split: str, stem: str, scene: RenderedScene) -> None:
    """Fishyscapes format (images/, labels/) plus the Cityscapes layout under ``root/cityscapes``.

    Anomaly label: 1 on anomalies, 255 on void objects (ignored as Fishyscapes ignores void),
    0 elsewhere. In the Cityscapes ground truth anomalies are labelId 0 'unlabeled'.
    """
    write_png(root / "images" / f"{stem}.png", scene.image)
    write_png(root / "labels" / f"{stem}.png", scene.anomaly_label)
    write_cityscapes(root / "cityscapes", split, stem, scene)
