"""The frames of a drive bag ready to replay: camera data as recorded, labels decoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from synboost_ros.demo.drive_bag import LABEL_TOPIC, read_drive_pairs


@dataclass(frozen=True)
class ReplayFrame:
    """One camera frame: recorded stamp, compressed data as recorded, anomaly labels."""

    stamp_ns: int
    frame_id: str
    image_format: str
    image_data: bytes
    label: np.ndarray  # HxW uint8: 0 normal, 1 anomaly, 255 ignored

    def decode_image(self) -> np.ndarray:
        """The camera image as HxWx3 uint8 RGB."""
        bgr = cv2.imdecode(np.frombuffer(self.image_data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"corrupt camera frame at stamp {self.stamp_ns}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_replay_frames(path: str | Path) -> list[ReplayFrame]:
    """Camera frames of a drive bag that have a label, in stamp order."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"drive bag folder {path} does not exist")
    paired = {
        stamp: ReplayFrame(stamp, *camera, label)
        for stamp, camera, label in read_drive_pairs(path, _as_recorded)
    }
    frames = [paired[stamp] for stamp in sorted(paired)]
    if not frames:
        raise ValueError(f"bag {path} has no camera frame with a {LABEL_TOPIC} label")
    return frames


def _as_recorded(message: Any) -> tuple[str, str, bytes]:
    """A CompressedImage's frame id, format and data, as recorded."""
    data = np.asarray(message.data, dtype=np.uint8).tobytes()
    return message.header.frame_id, message.format, data


def replay_offsets_s(frames: Sequence[ReplayFrame]) -> list[float]:
    """Seconds after the start at which each frame is due: the recorded spacing of stamps."""
    first = frames[0].stamp_ns if frames else 0
    return [(frame.stamp_ns - first) / 1e9 for frame in frames]
