"""Readers of pixel-wise anomaly sets: an image folder plus a label folder.

Both formats use ``ROOT/images/<stem>.<ext>`` and ``ROOT/labels/<stem>.png`` with label values
0 (in-distribution), 1 (anomaly) and 255 (ignored).

- ``fishyscapes``: PNG images only. This is how Fishyscapes validation sets (Lost & Found,
  Static) are stored here after conversion: each frame's RGB image goes to ``images/`` and its
  0/1/255 mask to ``labels/`` under the same stem. The PNG exports of FS L&F / FS Static already
  use 0/1/255 masks and load as they are. The procedural world writes its anomaly scenes so.
- ``folder``: the same layout for any other set, images may also be JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synboost_ros.data.image_files import check_same_size, read_rgb, read_single_channel

LABEL_VALUES = (0, 1, 255)
IMAGE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "fishyscapes": (".png",),
    "folder": (".png", ".jpg", ".jpeg"),
}
ANOMALY_FORMATS = tuple(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class AnomalySample:
    """One frame with its anomaly label."""

    image: np.ndarray  # RGB uint8 HxWx3
    label: np.ndarray  # uint8 HxW: 0 normal, 1 anomaly, 255 ignore
    stem: str


class AnomalyDataset:
    """Frames of an anomaly set, ordered by stem."""

    def __init__(self, root: str | Path, format: str = "fishyscapes") -> None:
        if format not in IMAGE_SUFFIXES:
            raise ValueError(
                f"unknown anomaly set format {format!r}; use one of {list(IMAGE_SUFFIXES)}"
            )
        root = Path(root)
        image_dir, label_dir = root / "images", root / "labels"
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"anomaly set folder not found: {folder}")
        suffixes = IMAGE_SUFFIXES[format]
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in suffixes)
        if not images:
            raise FileNotFoundError(f"no {'/'.join(suffixes)} images in {image_dir}")
        stems = [p.stem for p in images]
        duplicates = sorted({s for s in stems if stems.count(s) > 1})
        if duplicates:
            raise ValueError(f"several images share the stems {duplicates} in {image_dir}")
        self._entries: list[tuple[Path, Path, str]] = []
        for image in images:
            label = label_dir / f"{image.stem}.png"
            if not label.is_file():
                raise FileNotFoundError(f"image {image} has no label file {label}")
            self._entries.append((image, label, image.stem))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> AnomalySample:
        image_path, label_path, stem = self._entries[index]
        image = read_rgb(image_path)
        label = read_single_channel(label_path)
        check_same_size(image, label, image_path, label_path)
        values = np.unique(label)
        bad = sorted(set(values.tolist()) - set(LABEL_VALUES))
        if bad:
            raise ValueError(
                f"label file {label_path} may only hold the values 0, 1, 255; found {bad[:10]}"
            )
        return AnomalySample(image=image, label=label.astype(np.uint8), stem=stem)
