"""What ``launch/anomaly.launch.py`` does with its arguments, as plain Python.

The launch file only declares ``LAUNCH_ARGUMENTS`` and turns the ``LaunchPlan`` that
``plan_launch`` returns into launch_ros ``Node`` actions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synboost_ros.options import BACKEND_CHOICES
from synboost_ros.ros.parameters import INPUT_CHOICES

PACKAGE = "synboost_ros"
EXECUTABLE = "anomaly_node"
PARAMS_FILE = os.path.join("config", "anomaly.yaml")
RVIZ_CONFIG = os.path.join("config", "anomaly.rviz")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class LaunchArgument:
    """One DeclareLaunchArgument; ``default`` None = filled in from the package share folder."""

    name: str
    default: str | None
    description: str


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("image_topic", "/camera/image_raw", "camera topic remapped to 'image'"),
    LaunchArgument("namespace", "", "namespace of the node"),
    LaunchArgument("params_file", None, "parameters YAML (default: the package's anomaly.yaml)"),
    LaunchArgument("backend", "", f"{'|'.join(BACKEND_CHOICES)}; empty = the params file's"),
    LaunchArgument("input", "", "raw|compressed (image/compressed); empty = the params file's"),
    LaunchArgument("use_sim_time", "false", "use /clock (rosbag replay)"),
    LaunchArgument("rviz", "false", "also start rviz2 with config/anomaly.rviz"),
)


@dataclass(frozen=True)
class LaunchPlan:
    """Everything the launch file needs to build its actions."""

    namespace: str
    remappings: list[tuple[str, str]]
    parameters: list[Any]  # [params file path, {overrides}]
    use_sim_time: bool
    rviz_config: str | None = None  # None: no rviz2


def argument_defaults(share_dir: str) -> dict[str, str]:
    """Default value of every launch argument, the params file inside ``share_dir``."""
    defaults = {arg.name: arg.default for arg in LAUNCH_ARGUMENTS}
    defaults["params_file"] = os.path.join(share_dir, PARAMS_FILE)
    return defaults  # type: ignore[return-value]


def parse_bool(name: str, text: str) -> bool:
    """A launch argument as a boolean, with an error naming the argument."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"launch argument {name}:={text!r} must be true or false")


def node_remappings(image_topic: str) -> list[tuple[str, str]]:
    """'image' and 'image/compressed' remapped to the camera topic and its compressed one."""
    topic = image_topic.strip()
    if not topic or topic.endswith("/"):
        raise ValueError(f"launch argument image_topic:={image_topic!r} is not a topic name")
    return [("image", topic), ("image/compressed", f"{topic}/compressed")]


def node_parameters(
    params_file: str, backend: str, use_sim_time: bool, input_kind: str = ""
) -> list[Any]:
    """The params file, then the overrides given on the launch command line."""
    if not os.path.isfile(params_file):
        raise ValueError(f"launch argument params_file:={params_file!r}: no such file")
    overrides: dict[str, Any] = {"use_sim_time": use_sim_time}
    if backend:
        if backend not in BACKEND_CHOICES:
            raise ValueError(
                f"launch argument backend:={backend!r} must be one of {', '.join(BACKEND_CHOICES)}"
            )
        overrides["backend"] = backend
    if input_kind:
        if input_kind not in INPUT_CHOICES:
            raise ValueError(
                f"launch argument input:={input_kind!r} must be one of {', '.join(INPUT_CHOICES)}"
            )
        overrides["input"] = input_kind
    return [params_file, overrides]


def plan_launch(values: Mapping[str, str], share_dir: str) -> LaunchPlan:
    """Turn the launch argument values into the node's namespace, remappings and parameters."""
    use_sim_time = parse_bool("use_sim_time", values["use_sim_time"])
    rviz = parse_bool("rviz", values["rviz"])
    return LaunchPlan(
        namespace=values["namespace"].strip(),
        remappings=node_remappings(values["image_topic"]),
        parameters=node_parameters(
            values["params_file"],
            values["backend"].strip(),
            use_sim_time,
            values.get("input", "").strip(),
        ),
        use_sim_time=use_sim_time,
        rviz_config=os.path.join(share_dir, RVIZ_CONFIG) if rviz else None,
    )
