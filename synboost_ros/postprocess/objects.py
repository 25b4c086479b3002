"""Anomaly objects: connected regions of the anomaly map, with hysteresis and a minimum area.

An object is a connected region (8-connectivity) of pixels scored at or above ``low`` that
holds at least one pixel at or above ``high`` (hysteresis: a strong seed, grown into its weak
surroundings; a region of weak scores alone is no object) and covers at least ``min_area``
pixels. The components of the low mask are labelled once with OpenCV; the seeded ones are those
whose label occurs under the high mask, so the result is exactly the morphological
reconstruction of the low mask from the high one.

Per object: bounding box, area, mean and max score, the semantic class most of its border
touches (the one-pixel ring around it), and whether it stands on the drivable area: the pixels
in a band just below its bottom edge (``band_px`` rows under each of its pixels, outside the
object) are mostly (>= ``STANDS_ON_SHARE``) drivable. An object that touches the bottom of the
image has no band below it; its whole border ring decides instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.postprocess.drivable import DEFAULT_DRIVABLE_CLASSES, parse_class_names

STANDS_ON_SHARE = 0.5
BAND_FRACTION = 0.02  # band below an object: this share of the image height ...
MIN_BAND_PX = 2  # ... and at least this many rows
MAX_OBJECTS = 100  # the largest ones are kept


@dataclass(frozen=True)
class ObjectSettings:
    """Thresholds of the object extraction."""

    low: float = 0.4
    high: float = 0.6
    min_area: int = 30  # pixels of the map
    drivable_classes: tuple[int, ...] = parse_class_names(DEFAULT_DRIVABLE_CLASSES)

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"need 0 <= low <= high <= 1, got low {self.low}, high {self.high}")
        if self.min_area < 1:
            raise ValueError(f"min_area must be >= 1 pixel, got {self.min_area}")


@dataclass(frozen=True)
class AnomalyObject:
    """One anomaly object; the box is in pixels of the map: columns x..x+width-1, rows
    y..y+height-1."""

    x: int
    y: int
    width: int
    height: int
    area: int
    mean_score: float
    max_score: float
    border_class: int  # train id most of the border touches; IGNORE_ID when none
    on_drivable: bool

    @property
    def border_class_name(self) -> str:
        """Name of ``border_class`` ('none' when the object has no border in the image)."""
        return CLASS_NAMES[self.border_class] if self.border_class < len(CLASS_NAMES) else "none"

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the box (x, y) in pixel coordinates (pixel centres at integers)."""
        return self.x + (self.width - 1) / 2.0, self.y + (self.height - 1) / 2.0


def seeded_components(
    anomaly: np.ndarray, low: float, high: float, min_area: int
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Labels of the low mask's components, their stats, and the labels kept (seeded by the
    high mask, at least ``min_area`` pixels), largest first."""
    low_mask = (anomaly >= low).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(low_mask, connectivity=8)
    if count <= 1:
        return labels, stats, []
    seeded = np.zeros(count, dtype=bool)
    seeded[labels[anomaly >= high]] = True
    seeded[0] = False
    areas = stats[:, cv2.CC_STAT_AREA]
    kept = np.flatnonzero(seeded & (areas >= min_area))
    kept = kept[np.argsort(-areas[kept], kind="stable")][:MAX_OBJECTS]
    return labels, stats, [int(k) for k in kept]


@dataclass(frozen=True)
class ObjectMap:
    """The objects of one frame, largest first, and where their pixels are."""

    objects: list[AnomalyObject]
    labels: np.ndarray  # HxW int32 component labels of the low mask (0 = background)
    object_labels: list[int]  # the label of each object in ``labels``

    def pixels(self, on_drivable_only: bool = False) -> np.ndarray:
        """HxW bool: the pixels of the objects (only those standing on the drivable area)."""
        chosen = [
            label
            for label, obj in zip(self.object_labels, self.objects, strict=True)
            if obj.on_drivable or not on_drivable_only
        ]
        return np.isin(self.labels, np.asarray(chosen, dtype=np.int32))


def extract_objects(
    anomaly: np.ndarray, semantic: np.ndarray, settings: ObjectSettings = ObjectSettings()
) -> ObjectMap:
    """The anomaly objects of an HxW score map, with the HxW class-id map of the same frame."""
    if anomaly.shape != semantic.shape or anomaly.ndim != 2:
        raise ValueError(
            f"anomaly {anomaly.shape} and semantic {semantic.shape} must be HxW maps of one size"
        )
    scores = np.nan_to_num(anomaly.astype(np.float32), nan=0.0)
    labels, stats, kept = seeded_components(scores, settings.low, settings.high, settings.min_area)
    band = max(MIN_BAND_PX, round(BAND_FRACTION * anomaly.shape[0]))
    objects = [_describe(k, labels, stats[k], scores, semantic, settings, band) for k in kept]
    return ObjectMap(objects, labels, kept)


def _describe(
    label: int,
    labels: np.ndarray,
    stat: np.ndarray,
    scores: np.ndarray,
    semantic: np.ndarray,
    settings: ObjectSettings,
    band: int,
) -> AnomalyObject:
    x, y, w, h, area = (int(v) for v in stat[:5])
    height, width = labels.shape
    # A crop around the box, with room for the ring and the band below.
    top, left = max(0, y - 1), max(0, x - 1)
    bottom, right = min(height, y + h + band), min(width, x + w + 1)
    mask = labels[top:bottom, left:right] == label
    classes = semantic[top:bottom, left:right]
    values = scores[y : y + h, x : x + w][labels[y : y + h, x : x + w] == label]
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~mask
    below_kernel = np.ones((band + 1, 1), np.uint8)  # anchored at its bottom: grows downwards
    below = cv2.dilate(mask.astype(np.uint8), below_kernel, anchor=(0, band)).astype(bool) & ~mask
    support = below if below.any() else ring
    return AnomalyObject(
        x=x,
        y=y,
        width=w,
        height=h,
        area=area,
        mean_score=float(values.mean()),
        max_score=float(values.max()),
        border_class=_most_common(classes[ring]),
        on_drivable=_share_in(classes[support], settings.drivable_classes) >= STANDS_ON_SHARE,
    )


def _most_common(class_ids: np.ndarray) -> int:
    valid = class_ids[class_ids != IGNORE_ID]
    if valid.size == 0:
        return IGNORE_ID
    return int(np.argmax(np.bincount(valid.astype(np.int64))))


def _share_in(class_ids: np.ndarray, wanted: Iterable[int]) -> float:
    if class_ids.size == 0:
        return 0.0
    return float(np.isin(class_ids, np.asarray(tuple(wanted))).mean())
