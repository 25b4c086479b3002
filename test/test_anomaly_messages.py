"""The object and summary messages: Detection2DArray (with a stand-in vision_msgs, whose
fields follow vision_msgs 4.x, Humble and later) and the DiagnosticArray forms, and back."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_msgs.msg import Header

from synboost_ros.analysis import AnalysisSettings, analyze
from synboost_ros.classes import IGNORE_ID
from synboost_ros.pipeline import PipelineResult
from synboost_ros.postprocess.objects import AnomalyObject, ObjectSettings
from synboost_ros.postprocess.summary import SummarySettings
from synboost_ros.ros.anomaly_messages import (
    objects_from_message,
    objects_message,
    objects_message_type,
    summary_message,
    summary_message_from_result,
)

OBJECTS = [
    AnomalyObject(10, 20, 5, 3, 12, 0.55, 0.91, 0, True),
    AnomalyObject(0, 0, 2, 2, 4, 0.5, 0.62, 2, False),
]
HEADER = Header(frame_id="cam")
HEADER.stamp.sec, HEADER.stamp.nanosec = 12, 345


@dataclass
class Point2D:
    x: float = 0.0
    y: float = 0.0


@dataclass
class Pose2D:
    position: Point2D = field(default_factory=Point2D)
    theta: float = 0.0


@dataclass
class BoundingBox2D:
    center: Pose2D = field(default_factory=Pose2D)
    size_x: float = 0.0
    size_y: float = 0.0


@dataclass
class ObjectHypothesis:
    class_id: str = ""
    score: float = 0.0


@dataclass
class ObjectHypothesisWithPose:
    hypothesis: ObjectHypothesis = field(default_factory=ObjectHypothesis)
    pose: object = None


@dataclass
class Detection2D:
    header: object = None
    results: list = field(default_factory=list)
    bbox: BoundingBox2D = field(default_factory=BoundingBox2D)
    id: str = ""


@dataclass
class Detection2DArray:
    header: object = None
    detections: list = field(default_factory=list)


@pytest.fixture
def fake_vision_msgs(monkeypatch):
    package, module = types.ModuleType("vision_msgs"), types.ModuleType("vision_msgs.msg")
    for cls in (Detection2DArray, Detection2D, ObjectHypothesisWithPose):
        setattr(module, cls.__name__, cls)
    package.msg = module
    monkeypatch.setitem(sys.modules, "vision_msgs", package)
    monkeypatch.setitem(sys.modules, "vision_msgs.msg", module)
    return module


def test_detection2d_array_where_vision_msgs_is_importable(fake_vision_msgs):
    assert objects_message_type() is Detection2DArray
    msg = objects_message(OBJECTS, HEADER, "/sb")
    assert isinstance(msg, Detection2DArray) and msg.header is HEADER
    first, second = msg.detections
    assert first.header is HEADER
    assert first.id == "0;area=12;border_class=road"
    assert second.id == "1;area=4;border_class=building"
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (12.0, 21.0)
    assert (first.bbox.size_x, first.bbox.size_y) == (5.0, 3.0)
    hypotheses = [(r.hypothesis.class_id, r.hypothesis.score) for r in first.results]
    assert hypotheses == [
        ("anomaly_on_drivable", pytest.approx(0.91)),
        ("mean_score", pytest.approx(0.55)),
    ]
    assert second.results[0].hypothesis.class_id == "anomaly"
    assert (second.bbox.center.position.x, second.bbox.center.position.y) == (0.5, 0.5)
    assert objects_from_message(msg) == OBJECTS  # every field survives


def test_malformed_detections_are_refused(fake_vision_msgs):
    msg = objects_message(OBJECTS, HEADER, "/sb")
    msg.detections[0].id = "0;area=12"
    del msg.detections[1].results[1]
    with pytest.raises(ValueError, match="lacks \\['border_class'\\]"):
        objects_from_message(Detection2DArray(detections=msg.detections[:1]))
    with pytest.raises(ValueError, match="lacks \\['mean_score'\\]"):
        objects_from_message(Detection2DArray(detections=msg.detections[1:]))
    msg.detections[0].id = "0;area=12;border_class=none"  # no border in the image
    (first,) = objects_from_message(Detection2DArray(detections=msg.detections[:1]))
    assert first.border_class == IGNORE_ID
    msg.detections[0].id = "0;area=12;border_class=moon"
    with pytest.raises(ValueError, match="unknown border class 'moon'"):
        objects_from_message(Detection2DArray(detections=msg.detections[:1]))


def test_diagnostic_array_without_vision_msgs(monkeypatch):
    monkeypatch.setitem(sys.modules, "vision_msgs", None)  # import fails
    assert objects_message_type() is DiagnosticArray
    msg = objects_message(OBJECTS, HEADER, "/sb", "cpu")
    assert isinstance(msg, DiagnosticArray) and msg.header.frame_id == "cam"
    first, second = msg.status
    assert first.level == DiagnosticStatus.WARN and second.level == DiagnosticStatus.OK
    assert first.name == "/sb: anomaly object 0" and first.hardware_id == "cpu"
    values = {kv.key: kv.value for kv in first.values}
    assert values == {
        "x": "10", "y": "20", "width": "5", "height": "3", "area": "12",
        "mean_score": "0.5500", "max_score": "0.9100", "border_class": "road",
        "on_drivable": "true",
    }  # fmt: skip
    assert objects_from_message(msg) == OBJECTS
    del first.values[0]
    with pytest.raises(ValueError, match="lacks \\['x'\\]"):
        objects_from_message(msg)


def test_summary_message_from_a_pipeline_result():
    semantic = np.zeros((20, 20), np.uint8)
    anomaly = np.zeros((20, 20), np.float32)
    anomaly[5:10, 5:10] = 0.9
    result = PipelineResult(semantic=semantic, anomaly=anomaly)
    settings = AnalysisSettings(ObjectSettings(min_area=25), SummarySettings(0.5, 0.8, 0.05))
    msg = summary_message_from_result(result, HEADER, settings, "/sb")
    (status,) = msg.status
    assert msg.header.stamp.nanosec == 345 and status.name == "/sb: anomaly summary"
    assert status.level == DiagnosticStatus.WARN and status.message.startswith("alarm")
    values = {kv.key: kv.value for kv in status.values}
    assert values["alarm"] == "true" and values["objects"] == "1"
    assert float(values["anomalous_share_drivable"]) == pytest.approx(25 / 400)
    assert values["alarm_score"] == "0.8"
    calm = summary_message(analyze(result, AnalysisSettings()).summary, HEADER, "/sb")
    assert calm.status[0].level == DiagnosticStatus.WARN  # 0.9 >= 0.7, 6 % >= 0.1 %
    quiet = PipelineResult(semantic=semantic, anomaly=np.zeros((20, 20), np.float32))
    (status,) = summary_message_from_result(quiet, HEADER).status
    assert status.level == DiagnosticStatus.OK and status.message == "clear"
    with pytest.raises(ValueError, match="anomaly and semantic"):
        summary_message_from_result(PipelineResult(anomaly=anomaly), HEADER)
