"""Keep this test process's ROS 2 traffic private: own domain id, loopback only."""

from __future__ import annotations

import os
import random
import threading

from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor

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


def spin_in_background(executor: Executor) -> threading.Thread:
    """Spin ``executor`` on a daemon thread until it or its context shuts down.

    Tests destroy subscriptions and publishers while the executor spins. rclpy (9.x) lists an
    entity's QoS event handlers before it locks them, so a handler whose destruction was asked
    for in between raises ``InvalidHandle`` from the wait-set set-up, which ends
    ``Executor.spin`` and with it every later callback. That wait is simply made again here.
    """

    def spin() -> None:
        while True:
            try:
                executor.spin()  # returns once the executor or its context is shut down
                return
            except InvalidHandle:
                continue

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    return thread
