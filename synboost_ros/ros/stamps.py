"""Message header stamps as integer nanoseconds, by rclpy's own conversion."""

from __future__ import annotations

from typing import Any

from rclpy.time import Time


def stamp_ns(header: Any) -> int:
    """The stamp of a ``std_msgs/Header`` in nanoseconds (``sec * 10**9 + nanosec``)."""
    return Time.from_msg(header.stamp).nanoseconds
