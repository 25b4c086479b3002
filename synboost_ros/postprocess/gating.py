"""Drivable-area gating: anomaly scores far from the drivable area are damped.

The distance ``d`` of each pixel to the drivable area (its classes, with the regions it
encloses filled in, so an obstacle in the middle of the road is at distance 0) comes from
OpenCV's distance transform, as a fraction of the image height. Scores are multiplied by

    w(d) = 1                                  for d <= margin
    w(d) = exp(-(d - margin) / falloff)        beyond,

so anomalies on and next to the road keep their score, and those on facades or in the sky
fade. A frame without any drivable pixel is left as it is (no road found: nothing to gate by).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synboost_ros.postprocess.drivable import class_mask, fill_holes


@dataclass(frozen=True)
class GatingSettings:
    """Margin and falloff of the gating weight, as fractions of the image height."""

    margin: float = 0.05
    falloff: float = 0.1

    def __post_init__(self) -> None:
        if not self.margin >= 0.0:
            raise ValueError(f"gating margin must be >= 0, got {self.margin}")
        if not self.falloff > 0.0:
            raise ValueError(f"gating falloff must be > 0, got {self.falloff}")


def gating_weight(
    semantic: np.ndarray, drivable_classes: tuple[int, ...], settings: GatingSettings
) -> np.ndarray | None:
    """HxW float32 weight w(d), or None when the frame has no drivable pixel."""
    drivable = fill_holes(class_mask(semantic, drivable_classes))
    if not drivable.any():
        return None
    outside = (~drivable).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    beyond = np.maximum(distance / semantic.shape[0] - settings.margin, 0.0)
    return np.exp(-beyond / settings.falloff).astype(np.float32)


def gate_anomaly(
    anomaly: np.ndarray,
    semantic: np.ndarray,
    drivable_classes: tuple[int, ...],
    settings: GatingSettings = GatingSettings(),
) -> np.ndarray:
    """``anomaly`` damped by the distance to the drivable area."""
    weight = gating_weight(semantic, drivable_classes, settings)
    return anomaly if weight is None else (anomaly * weight).astype(np.float32)
