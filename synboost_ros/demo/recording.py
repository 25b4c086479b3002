"""What the demo keeps of the node's outputs, keyed by header stamp, in bounded memory.

Per frame: the full-resolution ``~/anomaly`` map (it is scored) with its receive time, small
previews of ``~/semantic``, ``~/entropy``, ``~/perceptual`` and ``~/overlay`` (for pictures),
the stage times of ``~/timing``, the ``~/anomaly_summary`` values and the ``~/anomaly_objects``
objects. At most ``max_frames`` stamps are kept; outputs of newer
stamps are counted and dropped. Thread-safe: ROS callbacks add, the runner reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from synboost_ros.postprocess.objects import AnomalyObject
from synboost_ros.ros.frame_outputs import TIMING_SUFFIX

SCORED_TOPIC = "anomaly"
PREVIEW_TOPICS = ("semantic", "entropy", "perceptual", "overlay")
RECORDED_TOPICS = (SCORED_TOPIC, *PREVIEW_TOPICS)
DEFAULT_PREVIEW_WIDTH = 256
DEFAULT_MAX_FRAMES = 1000


@dataclass
class FrameOutputs:
    """The recorded outputs of one frame."""

    anomaly: np.ndarray | None = None  # HxW float32, full resolution
    received_ns: int | None = None  # when ~/anomaly arrived (recorder clock)
    previews: dict[str, np.ndarray] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)
    summary: dict[str, str] | None = None  # ~/anomaly_summary key/values
    boxes: list[AnomalyObject] | None = None  # ~/anomaly_objects, boxes in map pixels


@dataclass(frozen=True)
class DiagnosticsSnapshot:
    """The latest /diagnostics values of the node and when they arrived."""

    values: dict[str, str]
    received_ns: int


def preview_size(shape: tuple[int, ...], width: int) -> tuple[int, int]:
    """(height, width) of the preview of an image of ``shape``: at most ``width`` wide."""
    height, full_width = shape[:2]
    if full_width <= width:
        return height, full_width
    return max(1, round(height * width / full_width)), width


def preview(topic: str, array: np.ndarray, width: int) -> np.ndarray:
    """Shrink ``array`` to at most ``width`` pixels wide (aspect kept; class ids not blended)."""
    height, new_width = preview_size(array.shape, width)
    if (height, new_width) == array.shape[:2]:
        return array.copy()
    interpolation = cv2.INTER_NEAREST if topic == "semantic" else cv2.INTER_AREA
    return cv2.resize(array, (new_width, height), interpolation=interpolation)


def stage_times(values: Iterable[tuple[str, str]]) -> dict[str, float]:
    """~/timing key/values -> stage -> milliseconds (the ``<stage>_ms`` values)."""
    return {
        key.removesuffix(TIMING_SUFFIX): float(value)
        for key, value in values
        if key.endswith(TIMING_SUFFIX)
    }


class RecordedRun:
    """The node outputs of one demo run."""

    def __init__(
        self, max_frames: int = DEFAULT_MAX_FRAMES, preview_width: int = DEFAULT_PREVIEW_WIDTH
    ) -> None:
        if max_frames < 1 or preview_width < 1:
            raise ValueError(
                f"max_frames and preview_width must be >= 1, got {max_frames}, {preview_width}"
            )
        self._max_frames = max_frames
        self._preview_width = preview_width
        self._lock = threading.Lock()
        self._frames: dict[int, FrameOutputs] = {}
        self._diagnostics: DiagnosticsSnapshot | None = None
        self._refused = 0
        self._last_stored_ns = 0

    def add_map(self, topic: str, stamp_ns: int, array: np.ndarray, received_ns: int) -> None:
        """Store one output image: the anomaly map in full, the others as previews."""
        if topic not in RECORDED_TOPICS:
            raise ValueError(f"topic {topic!r} is not recorded; use one of {RECORDED_TOPICS}")
        kept = array if topic == SCORED_TOPIC else preview(topic, array, self._preview_width)
        with self._lock:
            frame = self._frame(stamp_ns)
            if frame is None:
                return
            if topic == SCORED_TOPIC:
                frame.anomaly, frame.received_ns = kept, received_ns
            else:
                frame.previews[topic] = kept
            self._last_stored_ns = received_ns

    def add_timing(self, stamp_ns: int, times_ms: dict[str, float]) -> None:
        """Store the stage times of one frame."""
        with self._lock:
            frame = self._frame(stamp_ns)
            if frame is not None:
                frame.timing_ms = dict(times_ms)

    def add_summary(self, stamp_ns: int, values: dict[str, str]) -> None:
        """Store the summary of one frame."""
        with self._lock:
            frame = self._frame(stamp_ns)
            if frame is not None:
                frame.summary = dict(values)

    def add_objects(self, stamp_ns: int, boxes: list[AnomalyObject]) -> None:
        """Store the objects of one frame."""
        with self._lock:
            frame = self._frame(stamp_ns)
            if frame is not None:
                frame.boxes = list(boxes)

    def set_diagnostics(self, values: dict[str, str], received_ns: int) -> None:
        """Keep the latest /diagnostics values of the node."""
        with self._lock:
            self._diagnostics = DiagnosticsSnapshot(dict(values), received_ns)

    def _frame(self, stamp_ns: int) -> FrameOutputs | None:
        """The record of ``stamp_ns``, new if needed; None (counted) when full."""
        frame = self._frames.get(stamp_ns)
        if frame is None:
            if len(self._frames) >= self._max_frames:
                self._refused += 1
                return None
            frame = self._frames[stamp_ns] = FrameOutputs()
        return frame

    def frames(self) -> dict[int, FrameOutputs]:
        """Recorded frames by stamp, in stamp order (a shallow copy)."""
        with self._lock:
            return dict(sorted(self._frames.items()))

    @property
    def diagnostics(self) -> DiagnosticsSnapshot | None:
        """Latest /diagnostics of the node, None before the first."""
        with self._lock:
            return self._diagnostics

    @property
    def scored_count(self) -> int:
        """Frames whose anomaly map arrived."""
        with self._lock:
            return sum(frame.anomaly is not None for frame in self._frames.values())

    @property
    def refused(self) -> int:
        """Outputs dropped because ``max_frames`` stamps were already kept."""
        with self._lock:
            return self._refused

    @property
    def last_stored_ns(self) -> int:
        """Receive time of the latest stored output image (0 before the first)."""
        with self._lock:
            return self._last_stored_ns
