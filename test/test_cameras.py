"""Camera names, input topics and output namespaces of a node, in plain Python."""

from __future__ import annotations

import pytest

from synboost_ros.ros.cameras import (
    SINGLE_CAMERA,
    CameraSpec,
    camera_names_from_topics,
    camera_specs,
)


def test_without_image_topics_the_node_has_the_single_camera_on_image():
    assert camera_specs(()) == [SINGLE_CAMERA]
    assert (SINGLE_CAMERA.topic, SINGLE_CAMERA.output_prefix) == ("image", "~/")
    assert SINGLE_CAMERA.scoped("/ns/anomaly_node") == "/ns/anomaly_node"


def test_a_named_camera_gets_its_own_output_namespace_and_status_name():
    camera = CameraSpec("front", "/cam_front/image_raw")
    assert camera.output_prefix == "~/front/"
    assert camera.scoped("/ns/anomaly_node") == "/ns/anomaly_node/front"


@pytest.mark.parametrize(
    ("topics", "names"),
    [
        (["/cam_front/image_raw", "/cam_rear/image_raw"], ["cam_front", "cam_rear"]),
        (["/front/image_rect_color", "rear/image"], ["front", "rear"]),
        (["/left/camera/image_raw", "/right/camera/image_raw"], ["left_camera", "right_camera"]),
        (["/sensing/front/image_raw", "/sensing/rear/image_raw"], ["front", "rear"]),
        (["/image_raw", "/cam/image_raw"], ["image_raw", "cam"]),  # nothing but the image
        (["~/front/image_raw", "/a/front/image_raw"], ["front", "a_front"]),
        (["/{namespace}/front/image_raw", "rear/image_raw"], ["front", "rear"]),
    ],
)
def test_names_come_from_the_topics_and_stay_short_but_distinct(topics, names):
    assert camera_names_from_topics(topics) == names


def test_given_names_win_and_keep_the_topic_order():
    specs = camera_specs(["/a/image_raw", "/b/image_raw"], ["rear", "front"])
    assert specs == [CameraSpec("rear", "/a/image_raw"), CameraSpec("front", "/b/image_raw")]


@pytest.mark.parametrize(
    ("topics", "names", "words"),
    [
        ([], ["front"], "camera_names needs image_topics"),
        (["/a/image_raw", "/b/image_raw"], ["a"], "1 names for 2 image_topics"),
        (["/a/image_raw", "/a/image_raw"], [], "lists '/a/image_raw' twice"),
        (["/a/image_raw", "/a/image_color"], [], "give one camera name; set camera_names"),
        (["/a/image_raw"], ["9front"], "must start with a letter"),
        (["/a/image_raw", "/b/image_raw"], ["x", "x"], "must differ"),
        ([""], [], "'' is not a topic name"),
        (["/cam//image_raw"], [], "is not a topic name"),
        (["/cam front/image_raw"], [], "is not a topic name"),
        (["/9cam/image_raw"], [], "not starting with a digit"),
    ],
)
def test_wrong_lists_are_refused_naming_the_parameter(topics, names, words):
    with pytest.raises(ValueError) as caught:
        camera_specs(topics, names)
    assert words in str(caught.value)
