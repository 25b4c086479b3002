"""Launch arguments -> node remappings and parameters; the launch file and rviz config."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from synboost_ros.ros.launch_logic import (
    LAUNCH_ARGUMENTS,
    NodePlan,
    argument_defaults,
    node_environment,
    node_parameters,
    node_remappings,
    parse_bool,
    parse_list,
    plan_launch,
)

ROOT = Path(__file__).resolve().parent.parent
SHARE = ROOT  # the source tree has the share folder's layout (config/...)
PARAMS = str(ROOT / "config" / "anomaly.yaml")
PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"


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
        "cameras",
        "camera_names",
        "mode",
        "fastdds_profile",
    ]
    assert all(arg.description for arg in LAUNCH_ARGUMENTS)


def test_default_params_file_is_the_packaged_yaml():
    assert argument_defaults("/opt/ros/share/synboost_ros")["params_file"] == (
        "/opt/ros/share/synboost_ros/config/anomaly.yaml"
    )


def test_defaults_plan_one_node_without_rviz():
    plan = plan_launch(values(), str(SHARE))
    (node,) = plan.nodes
    assert node.namespace == ""
    assert node.remappings == [
        ("image", "/camera/image_raw"),
        ("image/compressed", "/camera/image_raw/compressed"),
    ]
    assert node.parameters == [PARAMS, {"use_sim_time": False}]
    assert node.env == {PROFILE_VARIABLE: str(SHARE / "config" / "fastdds_large_frames.xml")}
    assert plan.rviz_config is None


def test_large_frame_profile_is_shipped_installed_and_set_unless_given_or_off():
    profile = node_environment(True, str(SHARE), {})[PROFILE_VARIABLE]
    text = Path(profile).read_text()
    assert "<segment_size>67108864</segment_size>" in text
    assert "<useBuiltinTransports>false</useBuiltinTransports>" in text
    setup = (ROOT / "setup.py").read_text()
    assert '(f"share/{PACKAGE}/config", glob("config/*"))' in setup  # installed with the share
    assert node_environment(True, "/share", {PROFILE_VARIABLE: "/mine.xml"}) == {}
    assert node_environment(False, "/share", {}) == {}
    mine = plan_launch(values(), str(SHARE), {PROFILE_VARIABLE: "/mine.xml"})
    off = plan_launch(
        values(fastdds_profile="false", cameras=TWO_CAMERAS, mode="per_camera"), str(SHARE)
    )
    assert mine.nodes[0].env == {} and [node.env for node in off.nodes] == [{}, {}]
    shared = plan_launch(values(cameras=TWO_CAMERAS), "/share", {PROFILE_VARIABLE: ""})
    assert shared.nodes[0].env == {PROFILE_VARIABLE: "/share/config/fastdds_large_frames.xml"}


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
    (node,) = plan.nodes
    assert node.namespace == "car1"
    assert ("image", "/cam/image_raw") in node.remappings
    assert node.parameters == [
        PARAMS,
        {"use_sim_time": True, "backend": "onnxruntime", "input": "compressed"},
    ]
    assert plan.use_sim_time is True
    assert plan.rviz_config == str(SHARE / "config" / "anomaly.rviz")
    assert Path(plan.rviz_config).is_file()


TWO_CAMERAS = "/cam_front/image_raw, /cam_rear/image_raw"


def test_shared_mode_is_one_node_with_every_camera_topic():
    plan = plan_launch(values(cameras=TWO_CAMERAS, namespace="car1", backend="torch"), str(SHARE))
    assert plan.nodes == [
        NodePlan(
            "car1",
            [],
            [
                PARAMS,
                {
                    "use_sim_time": False,
                    "backend": "torch",
                    "image_topics": ["/cam_front/image_raw", "/cam_rear/image_raw"],
                    "camera_names": ["cam_front", "cam_rear"],
                },
            ],
            {PROFILE_VARIABLE: str(SHARE / "config" / "fastdds_large_frames.xml")},
        )
    ]


def test_per_camera_mode_is_one_node_per_camera_in_its_own_namespace():
    plan = plan_launch(
        values(cameras=TWO_CAMERAS, camera_names="front,rear", mode="per_camera", namespace="car1"),
        str(SHARE),
    )
    assert [node.namespace for node in plan.nodes] == ["car1/front", "car1/rear"]
    assert [node.remappings for node in plan.nodes] == [
        node_remappings("/cam_front/image_raw"),
        node_remappings("/cam_rear/image_raw"),
    ]
    assert all(node.parameters == [PARAMS, {"use_sim_time": False}] for node in plan.nodes)
    names = plan_launch(values(cameras=TWO_CAMERAS, mode="per_camera"), str(SHARE)).nodes
    assert [node.namespace for node in names] == ["cam_front", "cam_rear"]


def test_lists_split_on_commas():
    assert parse_list("cameras", "") == []
    assert parse_list("cameras", " /a , /b ") == ["/a", "/b"]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: parse_list("cameras", "/a,,/b"), ["cameras:='/a,,/b'", "empty entry"]),
        (
            lambda: plan_launch(values(cameras=TWO_CAMERAS, mode="both"), str(SHARE)),
            ["mode:='both'", "shared, per_camera"],
        ),
        (
            lambda: plan_launch(values(camera_names="front"), str(SHARE)),
            ["camera_names needs cameras"],
        ),
        (
            lambda: plan_launch(values(cameras=TWO_CAMERAS, camera_names="a"), str(SHARE)),
            ["cameras / camera_names", "1 names for 2 image_topics"],
        ),
        (
            lambda: plan_launch(values(cameras="/a/image_raw,/a/image_raw"), str(SHARE)),
            ["lists '/a/image_raw' twice"],
        ),
        (lambda: parse_bool("rviz", "maybe"), ["rviz:='maybe'", "true or false"]),
        (
            lambda: plan_launch(values(fastdds_profile="x"), str(SHARE)),
            ["fastdds_profile:='x'"],
        ),
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
