"""Read and write the demo drive as a rosbag2 (mcap): camera frames plus anomaly ground truth.

Topics: ``/camera/image_raw/compressed`` (sensor_msgs/CompressedImage, jpeg, RGB scene) and
``/camera/anomaly_gt/compressed`` (sensor_msgs/CompressedImage, png, mono8 labels 0 normal,
1 anomaly, 255 ignore), with equal header stamps per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from rclpy.time import Time

from synboost_ros.metrics.stamped import StampPairer
from synboost_ros.ros.bag_files import InputBag, deserialize
from synboost_ros.ros.image_conversion import ImageDecodeError, decode_compressed
from synboost_ros.ros.labels import decode_label
from synboost_ros.ros.stamps import stamp_ns

IMAGE_TOPIC = "/camera/image_raw/compressed"
LABEL_TOPIC = "/camera/anomaly_gt/compressed"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
T = TypeVar("T")


@dataclass
class DriveFrame:
    """One recorded frame: receive time, RGB image and anomaly labels."""

    stamp_ns: int
    image: np.ndarray
    label: np.ndarray


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


def _message(typestore, stamp_ns: int, frame_id: str, fmt: str, payload: np.ndarray):
    types = typestore.types
    sec, nanosec = Time(nanoseconds=stamp_ns).seconds_nanoseconds()
    stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    header = types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)
    return types[COMPRESSED_IMAGE](header=header, format=fmt, data=payload)


def write_drive_bag(
    path: str | Path, frames: Iterable[DriveFrame], frame_id: str = "camera", jpeg_quality: int = 90
) -> int:
    """Write frames to a new mcap rosbag2 folder; return the number of frames written."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    typestore = _typestore()
    count = 0
    with Writer(Path(path), version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        image_conn = writer.add_connection(IMAGE_TOPIC, COMPRESSED_IMAGE, typestore=typestore)
        label_conn = writer.add_connection(LABEL_TOPIC, COMPRESSED_IMAGE, typestore=typestore)
        for frame in frames:
            bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
            ok_image, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            ok_label, png = cv2.imencode(".png", frame.label)
            if not (ok_image and ok_label):
                raise ValueError(f"could not encode frame at stamp {frame.stamp_ns}")
            for conn, fmt, payload in (
                (image_conn, "rgb8; jpeg compressed bgr8", jpeg),
                (label_conn, "mono8; png compressed mono8", png),
            ):
                message = _message(typestore, frame.stamp_ns, frame_id, fmt, payload.ravel())
                writer.write(
                    conn, frame.stamp_ns, typestore.serialize_cdr(message, COMPRESSED_IMAGE)
                )
            count += 1
    return count


def read_drive_messages(path: str | Path) -> Iterator[tuple[str, int, object]]:
    """Yield (topic, receive time ns, deserialised CompressedImage) in recorded order."""
    with InputBag(path) as bag:
        bag.topic(IMAGE_TOPIC, {COMPRESSED_IMAGE})
        topics = [t for t in (IMAGE_TOPIC, LABEL_TOPIC) if t in bag.topics]
        for message in bag.messages(topics):
            yield message.topic, message.timestamp, deserialize(message, COMPRESSED_IMAGE)


def read_drive_pairs(
    path: str | Path, camera: Callable[[Any], T]
) -> Iterator[tuple[int, T, np.ndarray]]:
    """Yield (header stamp ns, ``camera(image message)``, decoded labels) for each camera frame
    with a label of the same header stamp, as the pairs complete; a message that does not
    decode is a ``ValueError`` naming the bag, topic and stamp."""
    pairer: StampPairer[T, np.ndarray] = StampPairer(max_pending=None)
    for topic, _, message in read_drive_messages(path):
        stamp = stamp_ns(message.header)
        try:
            if topic == LABEL_TOPIC:
                pair = pairer.add_second(stamp, decode_label(message))
            else:
                pair = pairer.add_first(stamp, camera(message))
        except ImageDecodeError as error:
            raise ValueError(
                f"bag {path}: corrupt {topic} frame at stamp {stamp}: {error}"
            ) from None
        if pair is not None:
            yield stamp, *pair


def read_drive_bag(path: str | Path) -> Iterator[DriveFrame]:
    """Yield the frames of a drive bag, pairing image and label by header stamp."""
    for stamp, image, label in read_drive_pairs(path, decode_compressed):
        yield DriveFrame(stamp, image, label)
