"""A camera's object and summary outputs: ``~/anomaly_objects`` and ``~/anomaly_summary``
(under ``~/<camera>/`` for a named camera).

Per frame, ``SceneOutputs.plan`` says what is needed, and ``SceneOutputs.publish`` finds the
objects and the summary of the pipeline result (``synboost_ros.analysis``) when someone needs
them (a subscriber of either topic, or of ``~/overlay`` with ``draw_objects``), publishes them
with the input header, and returns the analysis for the overlay; with nobody to use it,
nothing is computed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from synboost_ros.analysis import ANALYSIS_MAPS, AnalysisSettings, FrameAnalysis, analyze
from synboost_ros.pipeline import PipelineResult
from synboost_ros.ros.anomaly_messages import objects_message, objects_message_type, summary_message
from synboost_ros.ros.cameras import SINGLE_CAMERA, CameraSpec
from synboost_ros.ros.outputs import DEFAULT_OUTPUT_DEPTH, output_qos

OBJECTS_TOPIC = "anomaly_objects"
SUMMARY_TOPIC = "anomaly_summary"
OVERLAY_TOPIC = "overlay"


@dataclass(frozen=True)
class ScenePlan:
    """Which of the analysis' outputs a frame needs."""

    objects: bool
    summary: bool
    draw: bool  # boxes on ~/overlay

    @property
    def needed(self) -> bool:
        """Whether the analysis runs at all."""
        return self.objects or self.summary or self.draw

    @property
    def maps(self) -> frozenset[str]:
        """Pipeline maps the analysis reads (none when it does not run)."""
        return ANALYSIS_MAPS if self.needed else frozenset()


class SceneOutputs:
    """Publishers of the objects and the summary, and the settings they are made with."""

    def __init__(
        self,
        node: Node,
        settings: AnalysisSettings,
        draw_objects: bool,
        hardware_id: str,
        camera: CameraSpec = SINGLE_CAMERA,
        depth: int = DEFAULT_OUTPUT_DEPTH,
    ) -> None:
        self.settings = settings  # the node replaces both when parameters change
        self.draw_objects = draw_objects
        prefix, qos = camera.output_prefix, output_qos(depth)
        self._objects = node.create_publisher(objects_message_type(), prefix + OBJECTS_TOPIC, qos)
        self._summary = node.create_publisher(DiagnosticArray, prefix + SUMMARY_TOPIC, qos)
        self._name = camera.scoped(node.get_fully_qualified_name())
        self._hardware_id = hardware_id

    def plan(self, image_topics: Collection[str]) -> ScenePlan:
        """What this frame needs, from the subscribers now."""
        return ScenePlan(
            objects=self._objects.get_subscription_count() > 0,
            summary=self._summary.get_subscription_count() > 0,
            draw=self.draw_objects and OVERLAY_TOPIC in image_topics,
        )

    def publish(self, plan: ScenePlan, result: PipelineResult, header: Any) -> FrameAnalysis | None:
        """Analyse ``result`` and publish what ``plan`` asks for; None when it asks nothing."""
        if not plan.needed:
            return None
        analysis = analyze(result, self.settings)
        if plan.objects:
            self._objects.publish(
                objects_message(analysis.objects.objects, header, self._name, self._hardware_id)
            )
        if plan.summary:
            self._summary.publish(
                summary_message(analysis.summary, header, self._name, self._hardware_id)
            )
        return analysis
