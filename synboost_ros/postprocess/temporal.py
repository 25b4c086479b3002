"""Temporal fusion of anomaly maps along dense optical flow, gated by semantic consistency.

Each frame's map is blended with the previous fused map, warped into the current frame by
OpenCV's DIS optical flow (computed from the current to the previous grey image, so every
current pixel looks up where it was). Where the warped previous class differs from the current
one (occlusions, objects entering, flow errors) or the pixel came from outside the previous
image, the current score is kept as it is; elsewhere ``fused = (1 - w) * current + w * warped``.
A score that lights up in one frame only is so reduced by the factor ``1 - w``, and flicker
between frames falls; a steady anomaly keeps its score.

The state belongs to one camera stream: keep one ``TemporalFusion`` per stream, ``reset`` it
when the stream jumps (another bag, a long gap). ``follow`` does that from the frames' stamps:
a stamp before the previous one (a bag that loops, a replay restarted) or more than
``MAX_GAP_NS`` (1 s) after it starts the fusion afresh, since the previous map no longer shows
the scene the flow could carry it into.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synboost_ros.classes import IGNORE_ID

DEFAULT_WEIGHT = 0.5
MAX_WEIGHT = 0.95
MAX_GAP_NS = 1_000_000_000  # a longer gap between two frames' stamps is a jump


def stream_jumped(previous_ns: int | None, current_ns: int, max_gap_ns: int = MAX_GAP_NS) -> bool:
    """Whether a frame stamped ``current_ns`` does not continue the stream whose last frame was
    stamped ``previous_ns``: it is older, or more than ``max_gap_ns`` later."""
    return previous_ns is not None and not 0 <= current_ns - previous_ns <= max_gap_ns


@dataclass
class _Previous:
    gray: np.ndarray
    semantic: np.ndarray
    fused: np.ndarray


class TemporalFusion:
    """Fuses a stream's anomaly maps frame by frame (state: the previous frame)."""

    def __init__(self, weight: float = DEFAULT_WEIGHT) -> None:
        self.weight = weight
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._previous: _Previous | None = None
        self._stamp_ns: int | None = None

    @property
    def weight(self) -> float:
        """Weight of the warped previous map, in [0, MAX_WEIGHT]."""
        return self._weight

    @weight.setter
    def weight(self, value: float) -> None:
        if not 0.0 <= value <= MAX_WEIGHT:
            raise ValueError(f"temporal weight must be in [0, {MAX_WEIGHT}], got {value}")
        self._weight = float(value)

    def reset(self) -> None:
        """Forget the previous frame."""
        self._previous = None

    def follow(self, stamp_ns: int) -> bool:
        """Take the stamp of the frame about to be fused; ``reset`` and return True when the
        stream jumped since the last stamp (``stream_jumped``)."""
        jumped = stream_jumped(self._stamp_ns, stamp_ns)
        if jumped:
            self.reset()
        self._stamp_ns = stamp_ns
        return jumped

    def __call__(self, gray: np.ndarray, semantic: np.ndarray, anomaly: np.ndarray) -> np.ndarray:
        """Fuse one frame: HxW uint8 grey image, class ids and float anomaly map."""
        if not gray.shape == semantic.shape == anomaly.shape:
            raise ValueError(
                f"grey {gray.shape}, semantic {semantic.shape} and anomaly {anomaly.shape} "
                "must have one size"
            )
        current = anomaly.astype(np.float32)
        previous = self._previous
        if previous is None or previous.gray.shape != gray.shape:
            fused = current
        else:
            flow = self._flow.calc(gray, previous.gray, None)
            height, width = gray.shape
            grid_x, grid_y = np.meshgrid(
                np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
            )
            map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
            warped = cv2.remap(previous.fused, map_x, map_y, cv2.INTER_LINEAR)
            warped_semantic = cv2.remap(
                previous.semantic,
                map_x,
                map_y,
                cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=IGNORE_ID,
            )
            consistent = warped_semantic == semantic
            blended = (1.0 - self._weight) * current + self._weight * warped
            fused = np.where(consistent, blended, current).astype(np.float32)
        self._previous = _Previous(gray.copy(), semantic.astype(np.uint8), fused)
        return fused
