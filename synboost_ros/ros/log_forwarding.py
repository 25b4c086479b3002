"""Python ``logging`` of the package into a node's ROS logger (console, log file, /rosout).

The package's modules log with ``logging.getLogger(__name__)`` (backend fall-backs, the
TensorRT engine build, the frame worker); ``LogForwarding`` hands those records to
the node's logger at the matching severity while the node runs (``LogForwarding``).
"""

from __future__ import annotations

import logging
from typing import Any

PACKAGE_LOGGER = "synboost_ros"
# rcutils severities carry the numbers of Python's levels (DEBUG 10 ... FATAL 50).
_SEVERITIES = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


def ros_severity(levelno: int) -> int:
    """The rcutils severity of a Python level: the highest severity not above it (custom
    levels in between round down; below DEBUG is DEBUG)."""
    return max((level for level in _SEVERITIES if level <= levelno), default=logging.DEBUG)


class RosLogHandler(logging.Handler):
    """Writes each record to an rclpy logger (``node.get_logger()``)."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__()
        self._ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message, severity = self.format(record), ros_severity(record.levelno)
            ros = self._ros_logger
            # rclpy binds one severity to each call site (file, line, instruction): one call each.
            if severity == logging.DEBUG:
                ros.debug(message)
            elif severity == logging.INFO:
                ros.info(message)
            elif severity == logging.WARNING:
                ros.warning(message)
            elif severity == logging.ERROR:
                ros.error(message)
            else:
                ros.fatal(message)
        except Exception:
            self.handleError(record)


class LogForwarding:
    """Sends the package's Python log records to ``ros_logger`` until ``close``."""

    def __init__(self, ros_logger: Any) -> None:
        self._logger = logging.getLogger(PACKAGE_LOGGER)
        self._handler = RosLogHandler(ros_logger)
        self._level = self._logger.level
        # Records at or above the node's level reach the handler; the ROS logger filters again.
        node_level = max(int(ros_logger.get_effective_level()), logging.DEBUG)
        if not self._level or node_level < self._level:
            self._logger.setLevel(node_level)
        self._logger.addHandler(self._handler)

    def close(self) -> None:
        """Detach the handler; the logger gets its level back."""
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)
