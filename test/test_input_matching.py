"""input_qos auto and the hint for publishers whose frames do not arrive (plain Python)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synboost_ros.ros.input_matching import large_frames_profile, no_frame_hint, resolve_input_qos

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("setting", "publishers", "expected"),
    [
        ("auto", [], "sensor_data"),
        ("auto", [True], "reliable"),
        ("auto", [True, True], "reliable"),
        ("auto", [True, False], "sensor_data"),  # best effort matches both
        ("auto", [False], "sensor_data"),
        ("reliable", [False], "reliable"),  # explicit settings stay
        ("sensor_data", [True], "sensor_data"),
    ],
)
def test_auto_qos_follows_the_publishers(setting, publishers, expected):
    assert resolve_input_qos(setting, publishers) == expected


def test_hints_name_what_to_set():
    profile = large_frames_profile()
    assert profile == str(ROOT / "config" / "fastdds_large_frames.xml")  # the source tree's
    unset = no_frame_hint("rmw_fastrtps_cpp", None, False, 1)
    assert f"export FASTDDS_DEFAULT_PROFILES_FILE={profile}" in unset
    assert "camera driver and this node" in unset
    node_only = no_frame_hint("rmw_fastrtps_cpp", "/x.xml", False, 1)
    assert "FASTDDS_DEFAULT_PROFILES_FILE=/x.xml" in node_only
    assert "camera driver's process needs it too" in node_only
    mismatch = no_frame_hint("rmw_fastrtps_cpp", None, True, 2)
    assert mismatch.startswith("2 publisher(s) are best effort") and "input_qos:=auto" in mismatch
    other = no_frame_hint("rmw_cyclonedds_cpp", None, False, 1)
    assert "rmw_cyclonedds_cpp" in other and "FASTDDS" not in other
