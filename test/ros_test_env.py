"""Keep this test process's ROS 2 traffic private: own domain id, loopback only."""

from __future__ import annotations

import os
import random

# One domain per test process, away from 0 (the default others use); valid ids are 0..101.
DOMAIN_ID = str(42 + random.Random(os.getpid()).randrange(50))


def ros_environment() -> dict[str, str]:
    """Variables that confine DDS discovery to this host and to ``DOMAIN_ID``."""
    return {
        "ROS_DOMAIN_ID": DOMAIN_ID,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",  # Iron and later
        "ROS_LOCALHOST_ONLY": "1",  # Humble (deprecated later, still honoured)
    }


def isolate_ros_domain(monkeypatch) -> dict[str, str]:
    """Set the variables for this test (before rclpy.init); return them for subprocesses."""
    env = ros_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
