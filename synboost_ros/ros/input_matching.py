"""The camera input and its publishers: the QoS that matches them (``input_qos: auto``) and,
when they publish but no frame arrives, what is wrong and what to set.

Plain Python: the node hands in what the ROS graph reports.

Large frames: Fast DDS's built-in shared-memory transport has 512 KB segments; a larger
message goes over UDP in fragments, and a best-effort reader loses most of them. The sender's
transport decides, so the camera driver's process needs the shipped profile (README: Large
frames); the node needs it for its own camera-sized outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

AUTO = "auto"
SENSOR_DATA = "sensor_data"
RELIABLE = "reliable"
PROFILES_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
LARGE_FRAMES_PROFILE = os.path.join("config", "fastdds_large_frames.xml")


def resolve_input_qos(setting: str, publishers_reliable: Sequence[bool]) -> str:
    """``sensor_data`` or ``reliable``. ``auto`` follows the publishers found when the node
    subscribes, as image_proc does: reliable when there are some and all are reliable, else
    best effort (which matches every publisher)."""
    if setting != AUTO:
        return setting
    return RELIABLE if publishers_reliable and all(publishers_reliable) else SENSOR_DATA


def large_frames_profile() -> str:
    """Path of the shipped profile: in the installed package share, else in this source tree,
    else a placeholder naming it."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory("synboost_ros"), LARGE_FRAMES_PROFILE)
    except (ImportError, LookupError, OSError):  # not installed in an ament prefix
        source = Path(__file__).resolve().parents[2] / LARGE_FRAMES_PROFILE
        return str(source) if source.is_file() else f"<synboost_ros share>/{LARGE_FRAMES_PROFILE}"


def no_frame_hint(
    rmw_implementation: str,
    profiles_file: str | None,
    reliable_input: bool,
    best_effort_publishers: int,
) -> str:
    """What to set when publishers exist but no frame arrives."""
    if reliable_input and best_effort_publishers:
        return (
            f"{best_effort_publishers} publisher(s) are best effort, this input is reliable: "
            "set input_qos:=auto or sensor_data"
        )
    if "fastrtps" not in rmw_implementation:
        return (
            f"frames may be too large for {rmw_implementation}'s transport (socket buffers); "
            "README: Large frames"
        )
    if profiles_file:
        return (
            f"this node has {PROFILES_VARIABLE}={profiles_file}; the camera driver's process "
            "needs it too: Fast DDS sends frames over 0.5 MB by UDP fragments otherwise "
            "(README: Large frames)"
        )
    return (
        "Fast DDS loses frames over 0.5 MB between processes with its default transports: "
        f"export {PROFILES_VARIABLE}={large_frames_profile()} for the camera driver and this "
        "node (README: Large frames)"
    )
