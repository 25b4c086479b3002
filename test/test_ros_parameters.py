"""Node parameters: validation in plain Python, and declaration on a real rclpy node."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from ros_test_env import isolate_ros_domain

from synboost_ros.options import bound_text
from synboost_ros.ros.parameters import (
    PARAMETER_NAMES,
    NodeParameters,
    ParameterError,
    declare_node_parameters,
    parameter_spec,
    validate_parameters,
    watch_node_parameters,
)

CONFIG = Path(__file__).resolve().parent.parent / "config" / "anomaly.yaml"
README = Path(__file__).resolve().parent.parent / "README.md"
FIXED = {
    "preset", "weights", "random_weights", "backend", "device", "precision", "graphs",
    "dla_core", "calibration", "input", "input_qos", "input_depth", "output_depth",
    "segmentation_height", "segmentation_width", "synthesis_height", "synthesis_width",
    "publish_synthesized", "build_only", "self_test", "image_topics", "camera_names",
}  # fmt: skip
# Left unset in the shipped YAML (commented out): the model's ensemble weights, one camera.
UNSET_IN_YAML = {"ensemble_weights", "image_topics", "camera_names"}
RUNTIME = {
    "ensemble_weights", "anomaly_threshold", "overlay_alpha", "diagnostics_period",
    "latency_budget_ms", "min_rate_hz", "object_threshold_low", "object_threshold_high",
    "object_min_area", "drivable_classes", "alarm_score", "alarm_share", "draw_objects",
    "temporal_fusion", "temporal_weight", "drivable_gating", "gating_margin", "gating_falloff",
}  # fmt: skip


def test_defaults_are_valid():
    validate_parameters(NodeParameters())


def test_fixed_and_runtime_parameters():
    assert set(PARAMETER_NAMES) == FIXED | RUNTIME
    assert {n for n in PARAMETER_NAMES if parameter_spec(n).read_only} == FIXED


def test_the_shipped_yaml_holds_every_default():
    document = yaml.safe_load(CONFIG.read_text())
    values = document["/**"]["ros__parameters"]
    defaults = NodeParameters()
    # ensemble_weights stays unset (commented out) so the model's own weights apply.
    assert set(values) == set(PARAMETER_NAMES) - UNSET_IN_YAML
    for name, value in values.items():
        assert value == getattr(defaults, name), name
        assert type(value) is type(getattr(defaults, name)), name


def test_the_shipped_yaml_marks_exactly_the_read_only_parameters_fixed():
    pattern = r"^ {4}(?:# )?(\w+):[^#\n]*# \(fixed\)"  # commented-out entries count too
    marked = set(re.findall(pattern, CONFIG.read_text(), re.MULTILINE))
    assert marked == FIXED


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"preset": "huge"}, ["preset must be one of light, edge", "'huge'"]),
        ({"backend": "tpu"}, ["backend must be one of", "'tpu'"]),
        ({"device": "gpu"}, ["device must be one of auto, cpu, cuda"]),
        ({"precision": "fp8"}, ["precision must be one of"]),
        ({"input": "ros"}, ["input must be one of raw, compressed"]),
        ({"input_qos": "best"}, ["input_qos must be one of auto, sensor_data, reliable"]),
        ({"segmentation_height": 100, "segmentation_width": 192}, ["multiple of 32", "100"]),
        ({"synthesis_height": 64}, ["synthesis_height and synthesis_width must both be 0"]),
        ({"segmentation_width": 8192, "segmentation_height": 256}, ["<= 4096"]),
        ({"ensemble_weights": (0.0, 0.0, 0.0, 0.0)}, ["not all 0"]),
        ({"ensemble_weights": (1.0, -1.0, 0.0, 0.0)}, [">= 0"]),
        ({"ensemble_weights": (1.0, 1.0)}, ["need 4 values"]),
        ({"anomaly_threshold": 1.5}, ["anomaly_threshold must be <= 1"]),
        ({"anomaly_threshold": math.nan}, ["anomaly_threshold must be finite"]),
        ({"overlay_alpha": -0.1}, ["overlay_alpha must be >= 0"]),
        ({"diagnostics_period": 1e-9}, ["diagnostics_period must be >= 0.1", "1e-09"]),
        ({"diagnostics_period": 7200.0}, ["diagnostics_period must be <= 3600"]),
        ({"latency_budget_ms": -5.0}, ["latency_budget_ms must be >= 1"]),
        ({"min_rate_hz": 5000.0}, ["min_rate_hz must be <= 1000"]),
        ({"min_rate_hz": -1.0}, ["min_rate_hz must be >= 0"]),
        ({"weights": "/w", "random_weights": True}, ["either weights or random_weights"]),
        ({"object_threshold_low": 0.7}, ["object_threshold_low (0.7) must be <="]),
        ({"object_min_area": 0}, ["object_min_area must be >= 1"]),
        ({"drivable_classes": "road,lawn"}, ["drivable_classes: unknown class names ['lawn']"]),
        ({"alarm_share": 2.0}, ["alarm_share must be <= 1"]),
        ({"temporal_weight": 0.99}, ["temporal_weight must be <= 0.95"]),
        ({"gating_falloff": 0.0}, ["gating_falloff must be >= 0.001"]),
        ({"camera_names": ("front",)}, ["camera_names needs image_topics"]),
        (
            {"image_topics": ("/a/image_raw", "/b/image_raw"), "camera_names": ("a",)},
            ["camera_names has 1 names for 2 image_topics"],
        ),
        ({"image_topics": ("/a/image_raw", "/a/image_raw")}, ["lists '/a/image_raw' twice"]),
        ({"image_topics": ("/a/image_raw", "/a/image_color")}, ["set camera_names"]),
        (
            {"image_topics": ("/a/image_raw",), "camera_names": ("front cam",)},
            ["camera name 'front cam' must start with a letter"],
        ),
        (
            {"image_topics": ("/a/image_raw", "/b/image_raw"), "camera_names": ("x", "x")},
            ["camera_names must differ"],
        ),
        ({"image_topics": ("/cam/",)}, ["image_topics: '/cam/' is not a topic name"]),
    ],
)
def test_each_bad_value_is_named(changes, words):
    params = NodeParameters().replace(**changes)
    with pytest.raises(ParameterError) as caught:
        validate_parameters(params)
    for word in words:
        assert word in str(caught.value)


def test_all_problems_are_listed_together():
    params = NodeParameters(preset="huge", overlay_alpha=2.0)
    problems = params.problems()
    assert len(problems) == 2


def test_pipeline_arguments():
    assert NodeParameters().pipeline_arguments() == {
        "preset": "edge",
        "weights": None,
        "random_weights": False,
        "backend": "auto",
        "device": "auto",
        "precision": "auto",
        "graphs": "off",
        "dla_core": -1,
        "calibration": None,
        "ensemble_weights": None,
        "segmentation_size": None,
        "synthesis_size": None,
    }
    params = NodeParameters(
        weights="/models/edge",
        segmentation_height=192,
        segmentation_width=256,
        synthesis_height=64,
        synthesis_width=128,
        ensemble_weights=(1.0, 0.0, 0.0, 0.0),
    )
    arguments = params.pipeline_arguments()
    assert arguments["weights"] == "/models/edge"
    assert arguments["segmentation_size"] == (192, 256)
    assert arguments["synthesis_size"] == (64, 128)
    assert arguments["ensemble_weights"] == (1.0, 0.0, 0.0, 0.0)


@pytest.fixture
def rclpy_context(monkeypatch):
    import rclpy

    isolate_ros_domain(monkeypatch)
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def make_node(context, overrides: dict):
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    return Node(
        "param_test",
        context=context,
        parameter_overrides=[Parameter(name, value=value) for name, value in overrides.items()],
    )


def test_declared_parameters_take_overrides_and_carry_descriptors(rclpy_context):
    node = make_node(
        rclpy_context,
        {"preset": "light", "ensemble_weights": [0.5, 0.5, 0.0, 0.0], "overlay_alpha": 0.25},
    )
    try:
        params = declare_node_parameters(node)
        assert params.preset == "light"
        assert params.ensemble_weights == (0.5, 0.5, 0.0, 0.0)
        assert params.overlay_alpha == 0.25
        assert params.anomaly_threshold == 0.5
        described = {d.name: d for d in node.describe_parameters(list(PARAMETER_NAMES))}
        assert {name for name, d in described.items() if d.read_only} == FIXED
        assert described["preset"].additional_constraints == "one of: light, edge"
        threshold_range = described["anomaly_threshold"].floating_point_range[0]
        assert (threshold_range.from_value, threshold_range.to_value) == (0.0, 1.0)
        size_range = described["segmentation_height"].integer_range[0]
        assert (size_range.from_value, size_range.step) == (0, 32)
        assert "dissimilarity" in described["ensemble_weights"].description
    finally:
        node.destroy_node()


def test_ensemble_weights_stay_unset_by_default(rclpy_context):
    node = make_node(rclpy_context, {})
    try:
        params = declare_node_parameters(node)
        assert params.ensemble_weights is None
        assert (params.image_topics, params.camera_names) == ((), ())
        assert [(c.name, c.topic) for c in params.cameras()] == [("", "image")]
    finally:
        node.destroy_node()


def test_image_topics_are_a_string_array(rclpy_context):
    topics = ["/cam_front/image_raw", "/cam_rear/image_raw"]
    node = make_node(rclpy_context, {"image_topics": topics})
    try:
        params = declare_node_parameters(node)
        assert params.image_topics == tuple(topics)
        assert [(c.name, c.topic) for c in params.cameras()] == [
            ("cam_front", "/cam_front/image_raw"),
            ("cam_rear", "/cam_rear/image_raw"),
        ]
        described = node.describe_parameters(["image_topics", "camera_names"])
        assert all(d.read_only for d in described)
    finally:
        node.destroy_node()


def test_invalid_start_up_value_is_refused(rclpy_context):
    node = make_node(rclpy_context, {"preset": "huge"})
    try:
        with pytest.raises(ParameterError, match="preset must be one of"):
            declare_node_parameters(node)
    finally:
        node.destroy_node()


def test_run_time_changes_are_validated_and_applied(rclpy_context):
    from rclpy.parameter import Parameter

    node = make_node(rclpy_context, {})
    try:
        applied: list[NodeParameters] = []
        watch_node_parameters(node, declare_node_parameters(node), applied.append)

        def set_one(name, value):
            return node.set_parameters([Parameter(name, value=value)])[0]

        result = set_one("anomaly_threshold", 1.5)  # refused by the descriptor range
        assert not result.successful and "anomaly_threshold" in result.reason
        result = set_one("ensemble_weights", [0.0, 0.0, 0.0, 0.0])  # refused by our check
        assert not result.successful and "not all 0" in result.reason
        result = set_one("diagnostics_period", 1e-9)  # refused by the descriptor range
        assert not result.successful and "diagnostics_period out of range" in result.reason
        result = set_one("diagnostics_period", 0)  # an integer: refused by our check
        assert not result.successful and "diagnostics_period must be >= 0.1" in result.reason
        result = set_one("preset", "light")
        assert not result.successful and "read-only" in result.reason
        assert applied == []
        assert node.get_parameter("anomaly_threshold").value == 0.5

        assert set_one("anomaly_threshold", 0.8).successful
        assert set_one("ensemble_weights", [1.0, 0.0, 0.0, 0.0]).successful
        assert applied[-1].anomaly_threshold == 0.8
        assert applied[-1].ensemble_weights == (1.0, 0.0, 0.0, 0.0)
        assert node.get_parameter("anomaly_threshold").value == 0.8
    finally:
        node.destroy_node()


def test_every_number_has_a_range_that_ros_tools_show(rclpy_context):
    node = make_node(rclpy_context, {})
    try:
        declare_node_parameters(node)
        described = {d.name: d for d in node.describe_parameters(list(PARAMETER_NAMES))}
        for name in PARAMETER_NAMES:
            default = getattr(NodeParameters(), name)
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                continue
            spec = parameter_spec(name)
            assert spec.low is not None and spec.high is not None, name
            ranges = described[name].floating_point_range or described[name].integer_range
            assert [(r.from_value, r.to_value) for r in ranges] == [(spec.low, spec.high)], name
        period = described["diagnostics_period"].floating_point_range[0]
        assert period.from_value == 0.1
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"diagnostics_period": 1e-9}, "diagnostics_period must be within [0.1, 3600]"),
        ({"object_min_area": 0}, "object_min_area must be within [1, 16777216]"),
        (
            {"segmentation_height": 100},
            "segmentation_height must be within [0, 4096] in steps of 32",
        ),
        (
            {"diagnostics_period": "fast"},
            "parameter diagnostics_period expects a float, got string 'fast'",
        ),
        ({"object_min_area": 30.5}, "parameter object_min_area expects an integer, got float 30.5"),
        ({"draw_objects": 1}, "parameter draw_objects expects a bool, got integer 1"),
        ({"drivable_classes": 3}, "parameter drivable_classes expects a string, got integer 3"),
        ({"ensemble_weights": ["a"]}, "parameter ensemble_weights expects an array of 4 floats"),
        (
            {"image_topics": [1, 2]},
            "parameter image_topics expects a string array, got array [1, 2]",
        ),
    ],
)
def test_start_up_values_of_the_wrong_type_or_range_name_the_parameter(
    rclpy_context, overrides, message
):
    node = make_node(rclpy_context, overrides)
    try:
        with pytest.raises(ParameterError) as caught:
            declare_node_parameters(node)
        assert message in str(caught.value)
        assert "expected '" not in str(caught.value)
    finally:
        node.destroy_node()


def test_integers_are_taken_for_floats(rclpy_context):
    from rclpy.parameter import Parameter

    node = make_node(rclpy_context, {"diagnostics_period": 2, "ensemble_weights": [1, 0, 0, 0]})
    try:
        applied: list[NodeParameters] = []
        params = declare_node_parameters(node)
        assert params.diagnostics_period == 2.0 and isinstance(params.diagnostics_period, float)
        assert params.ensemble_weights == (1.0, 0.0, 0.0, 0.0)
        watch_node_parameters(node, params, applied.append)
        (result,) = node.set_parameters([Parameter("anomaly_threshold", value=1)])
        assert result.successful, result.reason  # was: "Wrong parameter type, expected '3' got '2'"
        assert applied[-1].anomaly_threshold == 1.0
        (result,) = node.set_parameters([Parameter("overlay_alpha", value="half")])
        assert not result.successful
        assert result.reason == "parameter overlay_alpha expects a float, got string 'half'"
    finally:
        node.destroy_node()


def test_the_readme_table_gives_every_parameter_with_its_range_and_flag():
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.split(" | ")]
        if line.startswith("| `") and len(cells) == 5 and cells[0].strip("|` ") in PARAMETER_NAMES:
            rows[cells[0].strip("|` ")] = cells
    assert list(rows) == list(PARAMETER_NAMES)
    for name, (_, _, values, fixed, _) in rows.items():
        spec = parameter_spec(name)
        assert (fixed == "yes") == spec.read_only, name
        if spec.choices:
            assert values == spec.allowed().replace(", ", " \\| "), name
        elif spec.low is not None:
            assert values.startswith(f"[{bound_text(spec.low)}, {bound_text(spec.high)}]"), name


@pytest.mark.parametrize(
    "argv",
    [["anomaly_node", "--help"], ["anomaly_node", "-h", "--ros-args", "-p", "device:=cpu"]],
)
def test_help_lists_every_parameter_with_its_default_without_starting_ros(
    argv, monkeypatch, capsys
):
    from synboost_ros.ros import node

    def refuse(**_: object) -> None:
        raise AssertionError("rclpy.init was called")

    monkeypatch.setattr(node.rclpy, "init", refuse)
    with pytest.raises(SystemExit) as exited:
        node.main(argv)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: anomaly_node [-h] [--ros-args")
    listed = re.findall(r"^  (\w+) \(default: ", out, re.MULTILINE)
    assert listed == list(PARAMETER_NAMES)
    for line in (
        "  device (default: auto; one of: auto, cpu, cuda, cuda:N; read-only)",
        "  image_topics (default: []; read-only)",
        "  ensemble_weights (default: unset)",
        "  anomaly_threshold (default: 0.5; 0 to 1)",
        "  draw_objects (default: true)",
        "  object_min_area (default: 30; 1 to 16777216)",
    ):
        assert line + "\n" in out, line
