"""The frames of a drive bag ready to replay: camera data as recorded, labels decoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synboost_ros.demo.drive_bag import IMAGE_TOPIC, LABEL_TOPIC, read_drive_messages, stamp_to_ns
from synboost_ros.metrics.stamped import StampPairer
from synboost_ros.ros.image_conversion import ImageDecodeError
from synboost_ros.ros.labels import decode_label


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
    pairer: StampPairer[tuple[str, str, bytes], np.ndarray] = StampPairer(max_pending=None)
    paired: dict[int, tuple[tuple[str, str, bytes], np.ndarray]] = {}
    for topic, _, message in read_drive_messages(path):
        stamp = stamp_to_ns(message.header.stamp)
        if topic == IMAGE_TOPIC:
            data = np.asarray(message.data, dtype=np.uint8).tobytes()
            pair = pairer.add_first(stamp, (message.header.frame_id, message.format, data))
        else:
            try:
                pair = pairer.add_second(stamp, decode_label(message))
            except ImageDecodeError as error:
                raise ValueError(
                    f"bag {path}: corrupt {LABEL_TOPIC} frame at stamp {stamp}: {error}"
                ) from None
        if pair is not None:
            paired[stamp] = pair
    frames = [ReplayFrame(stamp, *paired[stamp][0], paired[stamp][1]) for stamp in sorted(paired)]
    if not frames:
        raise ValueError(f"bag {path} has no camera frame with a {LABEL_TOPIC} label")
    return frames


def replay_offsets_s(frames: Sequence[ReplayFrame]) -> list[float]:
    """Seconds after the start at which each frame is due: the recorded spacing of stamps."""
    first = frames[0].stamp_ns if frames else 0
    return [(frame.stamp_ns - first) / 1e9 for frame in frames]
