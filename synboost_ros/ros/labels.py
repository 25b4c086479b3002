"""Anomaly ground truth from ROS image messages: mono8 labels (0 normal, 1 anomaly, 255
ignored) as a ``sensor_msgs/Image`` or as a png ``sensor_msgs/CompressedImage``.

Works on plain attributes, like ``image_conversion``; bad labels raise ``ImageDecodeError``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from synboost_ros.classes import IGNORE_ID
from synboost_ros.metrics.anomaly import ANOMALY_LABEL, NORMAL_LABEL
from synboost_ros.ros.image_conversion import ImageDecodeError, decode_array

LABEL_VALUES = (NORMAL_LABEL, ANOMALY_LABEL, IGNORE_ID)


def decode_label(msg: Any) -> np.ndarray:
    """An HxW uint8 label map from an Image (mono8) or a CompressedImage (png, one channel)."""
    if hasattr(msg, "format"):
        data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        label = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if label is None:
            raise ImageDecodeError(
                f"cannot decode the label image (format {msg.format!r}, {data.size} bytes)"
            )
        if label.ndim != 2 or label.dtype != np.uint8:
            raise ImageDecodeError(
                f"labels must be one 8-bit channel (mono8 png), got shape {label.shape} "
                f"of {label.dtype}"
            )
    else:
        if msg.encoding != "mono8":
            raise ImageDecodeError(f"labels must be mono8, got {msg.encoding!r}")
        label = decode_array(msg)
    invalid = ~np.isin(label, LABEL_VALUES)
    if invalid.any():
        found = np.unique(label[invalid])[:10].tolist()
        raise ImageDecodeError(f"labels must be 0, 1 or {IGNORE_ID}; found {found}")
    return label
