"""ROS messages of the anomaly objects and the planner summary, and back.

``~/anomaly_objects`` is a ``vision_msgs/Detection2DArray`` where vision_msgs is importable
(every ROS distribution ships it as ros-<distro>-vision-msgs, 4.x from Humble on;
package.xml depends on it).
Each detection: the box (centre in pixel coordinates, pixel centres at integers, and size);
``results[0]``, the detection's class and confidence: ``class_id`` ``anomaly_on_drivable`` or
``anomaly`` and ``score`` = the object's highest anomaly score; ``results[1]``: ``class_id``
``mean_score`` and ``score`` = the object's mean score (never above the first, so the best
hypothesis stays the class); ``id`` = ``<index>;area=<pixels>;border_class=<class name>``,
the index in the frame (largest first; objects are not tracked), the object's area in map
pixels and the semantic class most of its border touches (``none`` without a border in the
image). Without vision_msgs (a pip install) the objects go out as a
``diagnostic_msgs/DiagnosticArray``: one status per object (level WARN when it stands on the
drivable area) whose key/values hold every field of ``AnomalyObject``.

``~/anomaly_summary`` is a ``diagnostic_msgs/DiagnosticArray`` with one status: level WARN
while the alarm is raised, else OK; its key/values are ``AnomalySummary.key_values``.

Every message carries the input header.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from synboost_ros.analysis import AnalysisSettings, analyze
from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import AnomalyObject
from synboost_ros.postprocess.summary import AnomalySummary

ON_DRIVABLE_CLASS = "anomaly_on_drivable"
OFF_DRIVABLE_CLASS = "anomaly"
MEAN_SCORE_CLASS = "mean_score"
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


def detection_id(index: int, obj: AnomalyObject) -> str:
    """The ``id`` of an object's detection: index, area and border class."""
    return f"{index};area={obj.area};border_class={obj.border_class_name}"


def _hypothesis(module: ModuleType, class_id: str, score: float) -> Any:
    hypothesis = module.ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = class_id
    hypothesis.hypothesis.score = float(score)
    return hypothesis


def detection_array(objects: Sequence[AnomalyObject], header: Any, module: ModuleType) -> Any:
    """A ``Detection2DArray`` of ``module`` (``vision_msgs.msg``) for ``objects``."""
    detections = []
    for index, obj in enumerate(objects):
        detection = module.Detection2D(header=header, id=detection_id(index, obj))
        center_x, center_y = obj.center
        detection.bbox.center.position.x = center_x
        detection.bbox.center.position.y = center_y
        detection.bbox.size_x, detection.bbox.size_y = float(obj.width), float(obj.height)
        object_class = ON_DRIVABLE_CLASS if obj.on_drivable else OFF_DRIVABLE_CLASS
        detection.results = [
            _hypothesis(module, object_class, obj.max_score),
            _hypothesis(module, MEAN_SCORE_CLASS, obj.mean_score),
        ]
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


def _border_class(name: str) -> int:
    """The train id of a border class name (``none``: IGNORE_ID)."""
    if name == "none":
        return IGNORE_ID
    if name not in CLASS_NAMES:
        raise ValueError(f"unknown border class {name!r}")
    return CLASS_NAMES.index(name)


def _from_status(status: DiagnosticStatus) -> AnomalyObject:
    values = {kv.key: kv.value for kv in status.values}
    missing = [key for key in OBJECT_KEYS if key not in values]
    if missing:
        raise ValueError(f"object status {status.name!r} lacks {missing}")
    return AnomalyObject(
        int(values["x"]),
        int(values["y"]),
        int(values["width"]),
        int(values["height"]),
        int(values["area"]),
        float(values["mean_score"]),
        float(values["max_score"]),
        _border_class(values["border_class"]),
        values["on_drivable"] == "true",
    )


def _from_detection(detection: Any) -> AnomalyObject:
    fields = dict(field.partition("=")[::2] for field in detection.id.split(";")[1:])
    scores = {result.hypothesis.class_id: result.hypothesis.score for result in detection.results}
    on_drivable = ON_DRIVABLE_CLASS in scores
    object_class = ON_DRIVABLE_CLASS if on_drivable else OFF_DRIVABLE_CLASS
    missing = [key for key in ("area", "border_class") if key not in fields]
    missing += [key for key in (object_class, MEAN_SCORE_CLASS) if key not in scores]
    if missing:
        raise ValueError(f"detection {detection.id!r} lacks {missing}")
    position = detection.bbox.center.position
    width, height = round(detection.bbox.size_x), round(detection.bbox.size_y)
    return AnomalyObject(
        round(position.x - (width - 1) / 2),
        round(position.y - (height - 1) / 2),
        width,
        height,
        int(fields["area"]),
        float(scores[MEAN_SCORE_CLASS]),
        float(scores[object_class]),
        _border_class(fields["border_class"]),
        on_drivable,
    )


def objects_from_message(msg: Any) -> list[AnomalyObject]:
    """The objects of an ``~/anomaly_objects`` message (either type; scores as the message
    carries them); raises ValueError when malformed."""
    if isinstance(msg, DiagnosticArray):
        return [_from_status(status) for status in msg.status]
    return [_from_detection(detection) for detection in msg.detections]
