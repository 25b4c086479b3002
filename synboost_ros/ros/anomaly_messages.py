"""ROS messages of the anomaly objects and the planner summary, and back.

``~/anomaly_objects`` is a ``vision_msgs/Detection2DArray`` where vision_msgs is importable
(every ROS distribution ships it as ros-<distro>-vision-msgs, 4.x from Humble on;
package.xml depends on it).
Each detection: the box (centre in pixel coordinates, pixel centres at integers, and size),
``id`` = the object's index in the frame (largest first; objects are not tracked), and one
hypothesis with ``class_id`` ``anomaly_on_drivable`` or ``anomaly`` and ``score`` = the
object's highest anomaly score. Without vision_msgs (a pip install) the objects go out as a
``diagnostic_msgs/DiagnosticArray``: one status per object (level WARN when it stands on the
drivable area) whose key/values hold every field of ``AnomalyObject``.

``~/anomaly_summary`` is a ``diagnostic_msgs/DiagnosticArray`` with one status: level WARN
while the alarm is raised, else OK; its key/values are ``AnomalySummary.key_values``.

Every message carries the input header.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from synboost_ros.analysis import AnalysisSettings, analyze
from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import AnomalyObject
from synboost_ros.postprocess.summary import AnomalySummary

ON_DRIVABLE_CLASS = "anomaly_on_drivable"
OFF_DRIVABLE_CLASS = "anomaly"
OBJECT_KEYS = (
    "x", "y", "width", "height", "area", "mean_score", "max_score", "border_class",
    "on_drivable",
)  # fmt: skip


def vision_msgs() -> ModuleType | None:
    """``vision_msgs.msg`` when it is importable, else None."""
    try:
        return importlib.import_module("vision_msgs.msg")
    except ImportError:
        return None


def objects_message_type() -> type:
    """The message type of ``~/anomaly_objects`` here."""
    module = vision_msgs()
    return DiagnosticArray if module is None else module.Detection2DArray


def _status(level: bytes, name: str, message: str, hardware_id: str, values) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values],
    )


def object_key_values(obj: AnomalyObject) -> list[tuple[str, str]]:
    """The fields of one object as text."""
    return [
        ("x", str(obj.x)),
        ("y", str(obj.y)),
        ("width", str(obj.width)),
        ("height", str(obj.height)),
        ("area", str(obj.area)),
        ("mean_score", f"{obj.mean_score:.4f}"),
        ("max_score", f"{obj.max_score:.4f}"),
        ("border_class", obj.border_class_name),
        ("on_drivable", "true" if obj.on_drivable else "false"),
    ]


def detection_array(objects: Sequence[AnomalyObject], header: Any, module: ModuleType) -> Any:
    """A ``Detection2DArray`` of ``module`` (``vision_msgs.msg``) for ``objects``."""
    detections = []
    for index, obj in enumerate(objects):
        detection = module.Detection2D(header=header, id=str(index))
        center_x, center_y = obj.center
        detection.bbox.center.position.x = center_x
        detection.bbox.center.position.y = center_y
        detection.bbox.size_x, detection.bbox.size_y = float(obj.width), float(obj.height)
        hypothesis = module.ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = (
            ON_DRIVABLE_CLASS if obj.on_drivable else OFF_DRIVABLE_CLASS
        )
        hypothesis.hypothesis.score = obj.max_score
        detection.results = [hypothesis]
        detections.append(detection)
    return module.Detection2DArray(header=header, detections=detections)


def objects_status_array(
    objects: Sequence[AnomalyObject], header: Any, name: str, hardware_id: str = ""
) -> DiagnosticArray:
    """The ``DiagnosticArray`` form of ``objects``: one status per object."""
    statuses = [
        _status(
            DiagnosticStatus.WARN if obj.on_drivable else DiagnosticStatus.OK,
            f"{name}: anomaly object {index}",
            "on the drivable area" if obj.on_drivable else "off the drivable area",
            hardware_id,
            object_key_values(obj),
        )
        for index, obj in enumerate(objects)
    ]
    return DiagnosticArray(header=header, status=statuses)


def objects_message(
    objects: Sequence[AnomalyObject], header: Any, name: str, hardware_id: str = ""
) -> Any:
    """``~/anomaly_objects``: a Detection2DArray with vision_msgs, else a DiagnosticArray."""
    module = vision_msgs()
    if module is None:
        return objects_status_array(objects, header, name, hardware_id)
    return detection_array(objects, header, module)


def summary_message(
    summary: AnomalySummary, header: Any, name: str, hardware_id: str = ""
) -> DiagnosticArray:
    """``~/anomaly_summary`` of one frame."""
    if summary.alarm:
        level, text = DiagnosticStatus.WARN, "alarm: anomaly on the drivable area"
    else:
        level, text = DiagnosticStatus.OK, "clear"
    status = _status(level, f"{name}: anomaly summary", text, hardware_id, summary.key_values())
    return DiagnosticArray(header=header, status=[status])


def summary_message_from_result(
    result: PipelineResult,
    header: Any,
    settings: AnalysisSettings | None = None,
    name: str = "anomaly_node",
    hardware_id: str = "",
) -> DiagnosticArray:
    """``~/anomaly_summary`` straight from a pipeline result (its anomaly and semantic maps),
    e.g. for recording it while processing a bag offline."""
    return summary_message(analyze(result, settings).summary, header, name, hardware_id)


@dataclass(frozen=True)
class ReceivedBox:
    """An object box as read back from ``~/anomaly_objects`` (either message type)."""

    x: int
    y: int
    width: int
    height: int
    max_score: float
    on_drivable: bool


def boxes_from_message(msg: Any) -> list[ReceivedBox]:
    """The boxes of an ``~/anomaly_objects`` message; raises ValueError when malformed."""
    if isinstance(msg, DiagnosticArray):
        boxes = []
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            missing = [key for key in OBJECT_KEYS if key not in values]
            if missing:
                raise ValueError(f"object status {status.name!r} lacks {missing}")
            boxes.append(
                ReceivedBox(
                    int(values["x"]),
                    int(values["y"]),
                    int(values["width"]),
                    int(values["height"]),
                    float(values["max_score"]),
                    values["on_drivable"] == "true",
                )
            )
        return boxes
    boxes = []
    for detection in msg.detections:
        position = detection.bbox.center.position
        width, height = round(detection.bbox.size_x), round(detection.bbox.size_y)
        if not detection.results:
            raise ValueError(f"detection {detection.id!r} has no hypothesis")
        hypothesis = detection.results[0].hypothesis
        boxes.append(
            ReceivedBox(
                round(position.x - (width - 1) / 2),
                round(position.y - (height - 1) / 2),
                width,
                height,
                float(hypothesis.score),
                hypothesis.class_id == ON_DRIVABLE_CLASS,
            )
        )
    return boxes
