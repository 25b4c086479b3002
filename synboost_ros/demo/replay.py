"""ROS publisher that replays a drive's camera frames with their recorded timing.

Each frame goes out as sensor_msgs/CompressedImage, with the data as recorded and the header
stamp set to the replay clock at publish time, so a subscriber's receive time minus the stamp
is its end-to-end latency. The published stamps map back to the frames (and their labels).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from tqdm import tqdm

from synboost_ros.demo.replay_source import ReplayFrame, replay_offsets_s

REPLAY_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
)


class DriveReplayer(Node):
    """Publishes drive frames on ``topic``."""

    def __init__(self, topic: str, node_name: str = "drive_replayer", **node_options: Any) -> None:
        super().__init__(node_name, **node_options)
        self._publisher = self.create_publisher(CompressedImage, topic, REPLAY_QOS)

    @property
    def subscription_count(self) -> int:
        """Subscribers matched to the camera topic."""
        return self._publisher.get_subscription_count()

    def replay(self, frames: Sequence[ReplayFrame]) -> dict[int, ReplayFrame]:
        """Publish each frame when due; return published stamp (ns) -> frame."""
        published: dict[int, ReplayFrame] = {}
        start = time.monotonic()
        offsets = replay_offsets_s(frames)
        for frame, offset in tqdm(
            zip(frames, offsets, strict=True), total=len(frames), desc="replay", unit="frame"
        ):
            delay = start + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = self.get_clock().now()
            message = CompressedImage(format=frame.image_format, data=frame.image_data)
            message.header.stamp = now.to_msg()
            message.header.frame_id = frame.frame_id
            self._publisher.publish(message)
            published[now.nanoseconds] = frame
        return published
