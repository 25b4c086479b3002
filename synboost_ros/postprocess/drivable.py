"""The drivable area: pixels of the road and of the classes a user counts as drivable."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from synboost_ros.classes import CLASS_NAMES

DEFAULT_DRIVABLE_CLASSES = ("road",)


def parse_class_names(text: str | Iterable[str]) -> tuple[int, ...]:
    """Train ids of comma-separated class names (``"road,sidewalk"``); raise on unknown names."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ValueError("name at least one drivable class, e.g. 'road'")
    unknown = [name for name in names if name not in CLASS_NAMES]
    if unknown:
        raise ValueError(f"unknown class names {unknown}; choose from {', '.join(CLASS_NAMES)}")
    return tuple(sorted({CLASS_NAMES.index(name) for name in names}))


def class_mask(semantic: np.ndarray, class_ids: Iterable[int]) -> np.ndarray:
    """HxW bool: pixels whose class id is one of ``class_ids``."""
    return np.isin(semantic, np.asarray(tuple(class_ids), dtype=semantic.dtype))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every region it encloses filled (an obstacle in the middle of the road
    becomes part of the road region; a notch open to the image border does not)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros(mask.shape, dtype=np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool) | mask
