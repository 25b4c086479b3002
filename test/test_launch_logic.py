"""Launch arguments -> node remappings and parameters; the launch file and rviz config."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from synboost_ros.ros.launch_logic import (
    LAUNCH_ARGUMENTS,
    argument_defaults,
    node_parameters,
    node_remappings,
    parse_bool,
    plan_launch,
)

ROOT = Path(__file__).resolve().parent.parent
SHARE = ROOT  # the source tree has the share folder's layout (config/...)
PARAMS = str(ROOT / "config" / "anomaly.yaml")


def values(**changes: str) -> dict[str, str]:
    return {**argument_defaults(str(SHARE)), **changes}


def test_every_required_argument_is_declared_with_a_description():
    names = [arg.name for arg in LAUNCH_ARGUMENTS]
    assert names == [
        "image_topic",
        "namespace",
        "params_file",
        "backend",
        "input",
        "use_sim_time",
        "rviz",
    ]
    assert all(arg.description for arg in LAUNCH_ARGUMENTS)


def test_default_params_file_is_the_packaged_yaml():
    assert argument_defaults("/opt/ros/share/synboost_ros")["params_file"] == (
        "/opt/ros/share/synboost_ros/config/anomaly.yaml"
    )


def test_defaults_plan_one_node_without_rviz():
    plan = plan_launch(values(), str(SHARE))
    assert plan.namespace == ""
    assert plan.remappings == [
        ("image", "/camera/image_raw"),
        ("image/compressed", "/camera/image_raw/compressed"),
    ]
    assert plan.parameters == [PARAMS, {"use_sim_time": False}]
    assert plan.rviz_config is None


def test_arguments_become_remappings_overrides_and_rviz():
    plan = plan_launch(
        values(
            image_topic="/cam/image_raw",
            namespace="car1",
            backend="onnxruntime",
            input="compressed",
            use_sim_time="True",
            rviz="true",
        ),
        str(SHARE),
    )
    assert plan.namespace == "car1"
    assert ("image", "/cam/image_raw") in plan.remappings
    assert plan.parameters == [
        PARAMS,
        {"use_sim_time": True, "backend": "onnxruntime", "input": "compressed"},
    ]
    assert plan.use_sim_time is True
    assert plan.rviz_config == str(SHARE / "config" / "anomaly.rviz")
    assert Path(plan.rviz_config).is_file()


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: parse_bool("rviz", "maybe"), ["rviz:='maybe'", "true or false"]),
        (lambda: node_remappings(""), ["image_topic"]),
        (lambda: node_remappings("/cam/"), ["image_topic:='/cam/'"]),
        (lambda: node_parameters(PARAMS, "tpu", False), ["backend:='tpu'", "onnxruntime"]),
        (lambda: node_parameters(PARAMS, "", False, "h264"), ["input:='h264'", "compressed"]),
        (lambda: node_parameters("/no/such.yaml", "", False), ["params_file", "no such file"]),
    ],
)
def test_bad_arguments_are_named(call, words):
    with pytest.raises(ValueError) as caught:
        call()
    for word in words:
        assert word in str(caught.value)


def test_rviz_config_shows_overlay_semantic_colour_and_anomaly():
    config = yaml.safe_load((ROOT / "config" / "anomaly.rviz").read_text())
    displays = config["Visualization Manager"]["Displays"]
    assert all(d["Class"] == "rviz_default_plugins/Image" for d in displays)
    topics = [d["Topic"]["Value"] for d in displays]
    assert topics == [
        "/anomaly_node/overlay",
        "/anomaly_node/semantic_color",
        "/anomaly_node/anomaly",
    ]
    anomaly = displays[2]
    assert anomaly["Normalize Range"] is False
    assert (anomaly["Min Value"], anomaly["Max Value"]) == (0, 1)


def test_launch_file_builds_its_description():
    pytest.importorskip("launch_ros", reason="launch_ros is not installable here (no ROS apt)")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        get_package_share_directory("synboost_ros")
    except (PackageNotFoundError, OSError):
        pytest.skip("synboost_ros is not installed in an ament prefix (colcon build)")
    launch_file = ROOT / "launch" / "anomaly.launch.py"
    spec = importlib.util.spec_from_file_location("anomaly_launch", launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = [arg.name for arg in description.get_launch_arguments()]
    assert declared == [arg.name for arg in LAUNCH_ARGUMENTS]
