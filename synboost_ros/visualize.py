"""Images for people: colour semantic maps, heat maps and overlays (RGB uint8)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from synboost_ros.classes import colorize
from synboost_ros.postprocess.objects import AnomalyObject

ON_DRIVABLE_COLOR = (255, 40, 40)
OFF_DRIVABLE_COLOR = (255, 210, 0)


def semantic_color(semantic: np.ndarray) -> np.ndarray:
    """HxW class ids -> HxWx3 RGB with the Cityscapes palette."""
    return colorize(semantic)


def heatmap(score: np.ndarray) -> np.ndarray:
    """HxW float in [0, 1] -> HxWx3 RGB (inferno: dark = normal, bright = anomalous)."""
    levels = (np.clip(np.nan_to_num(score), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, score: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the heat map of ``score`` over an RGB image, weighted by the score itself."""
    weight = (alpha * np.clip(np.nan_to_num(score), 0.0, 1.0))[..., None]
    blended = image.astype(np.float32) * (1.0 - weight) + heatmap(score).astype(np.float32) * weight
    return (blended + 0.5).astype(np.uint8)


def write_rgb(path: str, image: np.ndarray) -> None:
    """Write an RGB image with OpenCV (which expects BGR); raise if it cannot be written."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image {path}")


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB uint8; raise a clear error if it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}: missing, unreadable or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def draw_objects(image: np.ndarray, objects: Sequence[AnomalyObject]) -> np.ndarray:
    """A copy of an RGB image with each object's box and max score: red when it stands on the
    drivable area, yellow elsewhere."""
    drawn = image.copy()
    scale = 0.35 if image.shape[1] < 640 else 0.5
    for obj in objects:
        color = ON_DRIVABLE_COLOR if obj.on_drivable else OFF_DRIVABLE_COLOR
        corner = (obj.x + obj.width - 1, obj.y + obj.height - 1)
        cv2.rectangle(drawn, (obj.x, obj.y), corner, color, 1, cv2.LINE_AA)
        origin = (obj.x, max(obj.y - 3, 8))
        cv2.putText(
            drawn, f"{obj.max_score:.2f}", origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1,
            cv2.LINE_AA,
        )  # fmt: skip
    return drawn
