"""The cameras one node serves: their names, input topics and output namespaces.

Without ``image_topics`` the node has one camera, ``SINGLE_CAMERA``: input ``image`` (with its
remap rules) and outputs ``~/<output>``. With ``image_topics`` it has one camera per topic,
named by ``camera_names`` or, when that is empty, after its topic (``camera_names_from_topics``:
``/cam_front/image_raw`` -> ``cam_front``), outputs under ``~/<camera>/<output>``.

Plain Python (the launch logic uses it too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Last topic segments that name the image, not the camera (image_pipeline, image_transport).
IMAGE_SEGMENTS = frozenset(
    {"image", "image_raw", "image_color", "image_mono", "image_rect", "image_rect_color",
     "image_rect_raw", "compressed"}
)  # fmt: skip
CAMERA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # one ROS name token
_TOKEN = r"([A-Za-z_][A-Za-z0-9_]*|\{[a-z_]+\})"  # a topic name token or a substitution
TOPIC_NAME = re.compile(rf"(~/|/)?{_TOKEN}(/{_TOKEN})*\Z")  # rclpy checks the finer rules
SINGLE_INPUT = "image"


@dataclass(frozen=True)
class CameraSpec:
    """One camera of a node: its name ("" for the single camera) and its input topic."""

    name: str
    topic: str

    @property
    def output_prefix(self) -> str:
        """Where its output topics go: ``~/`` or ``~/<name>/``."""
        return f"~/{self.name}/" if self.name else "~/"

    def scoped(self, node_name: str) -> str:
        """Name of its statuses (diagnostics, timing, summary): the node's, then ``/<name>``."""
        return f"{node_name}/{self.name}" if self.name else node_name


SINGLE_CAMERA = CameraSpec("", SINGLE_INPUT)


def _check_topic(topic: str) -> None:
    if not TOPIC_NAME.match(topic):
        raise ValueError(
            f"image_topics: {topic!r} is not a topic name (tokens of letters, digits and '_', "
            "not starting with a digit, separated by '/')"
        )


def _stem(topic: str) -> list[str]:
    """The segments of ``topic`` that name the camera (``~``, substitutions and image
    segments at the end dropped)."""
    segments = [s for s in topic.split("/") if s and s != "~" and not s.startswith("{")]
    end = len(segments)
    while end > 1 and segments[end - 1] in IMAGE_SEGMENTS:
        end -= 1
    return segments[:end]


def camera_names_from_topics(topics: Sequence[str]) -> list[str]:
    """A name per topic: its last camera segment (``/cam_front/image_raw`` -> ``cam_front``);
    where two would be equal, the last two segments joined by ``_`` for every camera
    (``/left/camera/image_raw`` -> ``left_camera``), and so on."""
    stems = [_stem(topic) for topic in topics]
    for count in range(1, max((len(s) for s in stems), default=0) + 1):
        names = ["_".join(stem[-count:]) for stem in stems]
        if len(set(names)) == len(names):
            return names
    first, second = next(
        (topics[i], topics[j]) for j in range(len(stems)) for i in range(j) if stems[i] == stems[j]
    )
    if first == second:
        raise ValueError(f"image_topics lists {first!r} twice")
    raise ValueError(
        f"image_topics {first!r} and {second!r} give one camera name; set camera_names"
    )


def camera_specs(image_topics: Sequence[str], camera_names: Sequence[str] = ()) -> list[CameraSpec]:
    """The node's cameras; raises ValueError naming the parameter when the lists are wrong."""
    if not image_topics:
        if camera_names:
            raise ValueError("camera_names needs image_topics (one name per topic)")
        return [SINGLE_CAMERA]
    for topic in image_topics:
        _check_topic(topic)
    if camera_names:
        if len(camera_names) != len(image_topics):
            raise ValueError(
                f"camera_names has {len(camera_names)} names for {len(image_topics)} "
                "image_topics; give one per topic or none"
            )
        names = list(camera_names)
    else:
        names = camera_names_from_topics(image_topics)
    for name in names:
        if not CAMERA_NAME.match(name):
            raise ValueError(
                f"camera name {name!r} must start with a letter and hold only letters, digits "
                "and '_' (set camera_names)"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"camera_names must differ from each other; got {names}")
    return [CameraSpec(name, topic) for name, topic in zip(names, image_topics, strict=True)]
