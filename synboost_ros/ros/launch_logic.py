"""What ``launch/anomaly.launch.py`` does with its arguments, as plain Python.

The launch file only declares ``LAUNCH_ARGUMENTS`` and turns the ``LaunchPlan`` that
``plan_launch`` returns into launch_ros ``Node`` actions, one per ``NodePlan``.

Cameras: without ``cameras``, one node on ``image_topic``. With ``cameras:=/a/image_raw,...``
and ``mode:=shared`` (the default), one node serves them all with one model (its
``image_topics`` parameter; outputs ``/<namespace>/anomaly_node/<camera>/...``); with
``mode:=per_camera``, one node per camera in namespace ``<namespace>/<camera>``, each with its
own model (outputs ``/<namespace>/<camera>/anomaly_node/...``). Camera names come from
``camera_names`` or the topics (``synboost_ros.ros.cameras``).

Large frames: each node gets ``FASTDDS_DEFAULT_PROFILES_FILE`` = the shipped
``config/fastdds_large_frames.xml`` (its camera-sized outputs), unless the environment already
sets the variable or ``fastdds_profile:=false`` (README: Large frames).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from synboost_ros.options import BACKEND_CHOICES
from synboost_ros.ros.cameras import camera_specs
from synboost_ros.ros.input_matching import LARGE_FRAMES_PROFILE, PROFILES_VARIABLE
from synboost_ros.ros.parameters import INPUT_CHOICES

PACKAGE = "synboost_ros"
EXECUTABLE = "anomaly_node"
PARAMS_FILE = os.path.join("config", "anomaly.yaml")
RVIZ_CONFIG = os.path.join("config", "anomaly.rviz")
MODE_CHOICES = ("shared", "per_camera")
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
    LaunchArgument(
        "cameras", "", "comma-separated camera topics (several cameras); empty = image_topic"
    ),
    LaunchArgument(
        "camera_names", "", "comma-separated names, one per camera; empty = from the topics"
    ),
    LaunchArgument(
        "mode",
        "shared",
        "with cameras: shared = one node and model for all; per_camera = one node per camera "
        "in namespace <namespace>/<camera>",
    ),
    LaunchArgument(
        "fastdds_profile",
        "true",
        f"give the nodes {PROFILES_VARIABLE}=<share>/{LARGE_FRAMES_PROFILE} (camera-sized "
        "images over Fast DDS) unless the environment sets it; false = leave it",
    ),
)


@dataclass(frozen=True)
class NodePlan:
    """One anomaly_node: its namespace, remappings, parameters and extra environment."""

    namespace: str
    remappings: list[tuple[str, str]]
    parameters: list[Any]  # [params file path, {overrides}]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchPlan:
    """Everything the launch file needs to build its actions."""

    nodes: list[NodePlan]
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


def node_environment(
    enabled: bool, share_dir: str, environment: Mapping[str, str]
) -> dict[str, str]:
    """The nodes' extra variables: the shipped large-frame Fast DDS profile, unless switched
    off or ``environment`` (the launch's) already names a profiles file."""
    if not enabled or environment.get(PROFILES_VARIABLE):
        return {}
    return {PROFILES_VARIABLE: os.path.join(share_dir, LARGE_FRAMES_PROFILE)}


def parse_list(name: str, text: str) -> list[str]:
    """A comma-separated launch argument; empty text = no items, an empty item is an error."""
    if not text.strip():
        return []
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ValueError(f"launch argument {name}:={text!r} has an empty entry")
    return items


def _join_namespace(namespace: str, name: str) -> str:
    return f"{namespace.rstrip('/')}/{name}" if namespace.strip("/") else name


def camera_nodes(
    namespace: str, values: Mapping[str, str], parameters: list[Any]
) -> list[NodePlan]:
    """The nodes for the ``cameras``, ``camera_names`` and ``mode`` arguments."""
    topics = parse_list("cameras", values.get("cameras", ""))
    names = parse_list("camera_names", values.get("camera_names", ""))
    mode = values.get("mode", "shared").strip()
    if mode not in MODE_CHOICES:
        raise ValueError(f"launch argument mode:={mode!r} must be one of {', '.join(MODE_CHOICES)}")
    if not topics:
        if names:
            raise ValueError("launch argument camera_names needs cameras (one name per topic)")
        return [NodePlan(namespace, node_remappings(values["image_topic"]), parameters)]
    try:
        specs = camera_specs(topics, names)
    except ValueError as error:
        raise ValueError(f"launch arguments cameras / camera_names: {error}") from None
    if mode == "shared":
        params_file, overrides = parameters
        cameras = {"image_topics": topics, "camera_names": [spec.name for spec in specs]}
        return [NodePlan(namespace, [], [params_file, {**overrides, **cameras}])]
    return [
        NodePlan(_join_namespace(namespace, spec.name), node_remappings(spec.topic), parameters)
        for spec in specs
    ]


def plan_launch(
    values: Mapping[str, str], share_dir: str, environment: Mapping[str, str] | None = None
) -> LaunchPlan:
    """Turn the launch argument values into the nodes' namespaces, remappings, parameters and
    extra environment (``environment``: the launch's variables; None = none)."""
    use_sim_time = parse_bool("use_sim_time", values["use_sim_time"])
    profile = parse_bool("fastdds_profile", values.get("fastdds_profile", "true"))
    env = node_environment(profile, share_dir, environment or {})
    rviz = parse_bool("rviz", values["rviz"])
    parameters = node_parameters(
        values["params_file"],
        values["backend"].strip(),
        use_sim_time,
        values.get("input", "").strip(),
    )
    return LaunchPlan(
        nodes=[
            replace(node, env=dict(env))
            for node in camera_nodes(values["namespace"].strip(), values, parameters)
        ],
        use_sim_time=use_sim_time,
        rviz_config=os.path.join(share_dir, RVIZ_CONFIG) if rviz else None,
    )
