"""``synboost bag process``: a recorded camera topic through ``AnomalyPipeline``, offline, into a
new bag that holds what ``anomaly_node`` would have published.

The camera topic is ``sensor_msgs/Image`` or ``CompressedImage`` (told by its type) and is
decoded by the node's decoders. Every frame goes through the pipeline with the node's
post-processing and analysis settings (``NodeParameters``), and every output is made by the
node's own code (``outputs.image_message``, ``anomaly_messages``, ``outputs.timing_message``)
and written with the input header at the input message's bag time, under
``/<node_name>/<topic>``: each image topic, ``timing`` (the node's stages; no ``e2e``, which
has no meaning offline), ``anomaly_summary`` and ``anomaly_objects``. The input topics are
copied through unless asked not to. A ground-truth topic (mono8 labels, Image or png
CompressedImage) is paired with the anomaly maps by header stamp and pooled into AP / FPR95 /
AUROC (``metrics.stamped``).

Bad frames (a corrupt message, an image that does not decode, one the pipeline refuses) are
counted with their reason and left out; bad labels likewise. A broken file ends the run with
a ``BagError``; the output bag is then closed, complete and readable, with every frame
written before it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from synboost_ros.analysis import ANALYSIS_MAPS, analyze
from synboost_ros.benchmark import percentiles
from synboost_ros.metrics.stamped import StampedAnomalyMetrics
from synboost_ros.pipeline import InvalidImageError
from synboost_ros.postprocess.options import PostprocessOptions
from synboost_ros.ros.anomaly_messages import objects_message, objects_message_type, summary_message
from synboost_ros.ros.bag_files import (
    BadMessage,
    BagError,
    BagMessage,
    BagTopic,
    InputBag,
    OutputBag,
    deserialize,
    msgtype_of,
    serialize,
)
from synboost_ros.ros.frame_outputs import (
    TIMING_TOPIC,
    RenderSettings,
    image_topics,
    required_maps,
    stage_times,
)
from synboost_ros.ros.image_conversion import ImageDecodeError, decode_compressed, decode_image
from synboost_ros.ros.labels import decode_label
from synboost_ros.ros.node import DEFAULT_NODE_NAME
from synboost_ros.ros.outputs import image_message, timing_message
from synboost_ros.ros.parameters import NodeParameters
from synboost_ros.ros.scene_outputs import OBJECTS_TOPIC, SUMMARY_TOPIC
from synboost_ros.ros.stamps import stamp_ns

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
DECODERS: dict[str, Callable[[Any], np.ndarray]] = {
    IMAGE: decode_image,
    COMPRESSED_IMAGE: decode_compressed,
}
MAX_EXAMPLES = 20  # reasons kept per kind of bad input; all are counted
_NODE_NAME = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
# Errors that make one frame bad without being a bug of this package (as in the node).
FRAME_ERRORS = (BadMessage, ImageDecodeError, InvalidImageError)


@dataclass(frozen=True)
class BagProcessOptions:
    """What to read, where to write, and under which node name."""

    source: Path
    topic: str
    out: Path
    gt_topic: str | None = None
    storage: str | None = None  # None = the input's
    node_name: str = DEFAULT_NODE_NAME
    copy_input: bool = True

    def __post_init__(self) -> None:
        if not _NODE_NAME.fullmatch(self.node_name):
            raise ValueError(
                f"node name {self.node_name!r} is not a valid ROS name (letters, digits and "
                "underscores, not starting with a digit; namespaces separated by /)"
            )

    @property
    def qualified_name(self) -> str:
        """The node's fully qualified name, e.g. ``/anomaly_node``."""
        return "/" + self.node_name.strip("/")

    def output_topic(self, topic: str) -> str:
        """``/<node_name>/<topic>``."""
        return f"{self.qualified_name}/{topic}"


@dataclass
class BadInputs:
    """Bad frames or labels: how many, and why (the first ``MAX_EXAMPLES``)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, message: BagMessage, error: Exception) -> None:
        """Count one bad message."""
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"bag time {message.timestamp}: {error}")


class BagProcessor:
    """Processes one bag (``run``); its counters can be read while and after it runs."""

    def __init__(
        self,
        make_pipeline: Callable[[], Any],
        options: BagProcessOptions,
        params: NodeParameters | None = None,
        progress: bool = True,
    ) -> None:
        """``make_pipeline`` returns the ``AnomalyPipeline``; it is called once the bag is
        known to be readable, so that a wrong bag fails before a model loads."""
        self.make_pipeline = make_pipeline
        self.pipeline: Any = None
        self.options = options
        self.params = params or NodeParameters()
        self.progress = progress
        self.frames_in = 0
        self.frames_out = 0
        self.bad_frames = BadInputs()
        self.bad_labels = BadInputs()
        self.labels_in = 0
        self.stage_ms: dict[str, list[float]] = {}
        self.metrics: Any = None
        self._images = image_topics(self.params.publish_synthesized)
        self._maps = required_maps(self._images) | ANALYSIS_MAPS
        self._render = RenderSettings(self.params.anomaly_threshold, self.params.overlay_alpha)
        self._analysis = self.params.analysis_settings()

    def output_topics(self) -> list[BagTopic]:
        """Every topic the node publishes, under ``/<node_name>/``."""
        name = self.options.output_topic
        topics = [BagTopic(name(t), IMAGE, None) for t in self._images]
        topics.append(BagTopic(name(TIMING_TOPIC), DIAGNOSTIC_ARRAY, None))
        topics.append(BagTopic(name(SUMMARY_TOPIC), DIAGNOSTIC_ARRAY, None))
        topics.append(BagTopic(name(OBJECTS_TOPIC), msgtype_of(objects_message_type()), None))
        return topics

    def run(self) -> dict[str, Any]:
        """Process the bag; return the report (``report``)."""
        options = self.options
        with InputBag(options.source) as bag:
            camera = bag.topic(options.topic, DECODERS)
            truth = bag.topic(options.gt_topic, DECODERS) if options.gt_topic else None
            copies = list(bag.topics.values()) if options.copy_input else []
            outputs = self.output_topics()
            taken = {t.name for t in copies} & {t.name for t in outputs}
            if taken:
                raise BagError(
                    f"bag {options.source} already has {', '.join(sorted(taken))}; choose "
                    "another --node-name, or --no-copy-input"
                )
            if options.out.exists():
                raise BagError(f"output {options.out} already exists; remove it or choose another")
            self.pipeline = self.make_pipeline()
            self.metrics = StampedAnomalyMetrics() if truth else None
            storage = options.storage or bag.storage
            started = time.perf_counter()
            self.pipeline.set_postprocess(PostprocessOptions())  # a fresh temporal state
            self.pipeline.set_postprocess(self.params.postprocess_options())
            try:
                with OutputBag(options.out, storage) as out:
                    for topic in (*outputs, *copies):
                        out.add_topic(topic)
                    try:
                        self._process(bag, camera, truth, out)
                    except BagError as error:
                        raise BagError(
                            f"{error}; the {self.frames_out} frames processed before it are in "
                            f"{options.out}, which is complete and readable"
                        ) from error
            finally:
                self.pipeline.set_postprocess(PostprocessOptions())
            wall_s = time.perf_counter() - started
            return self.report(camera, truth, storage, wall_s, out.counts, bag.salvage_reason)

    def _process(
        self, bag: InputBag, camera: BagTopic, truth: BagTopic | None, out: OutputBag
    ) -> None:
        copy = self.options.copy_input
        wanted = set(bag.topics) if copy else {camera.name} | ({truth.name} if truth else set())
        with tqdm(
            total=camera.count, desc="process", unit="frame", disable=not self.progress
        ) as bar:
            for message in bag.messages(wanted):
                if copy:
                    out.write(message.topic, message.timestamp, message.data)
                if message.topic == camera.name:
                    self._frame(message, camera.msgtype, out)
                    bar.update(1)
                    bar.set_postfix(bad=self.bad_frames.count, refresh=False)
                elif truth is not None and message.topic == truth.name:
                    self._label(message, truth.msgtype)

    def _frame(self, message: BagMessage, msgtype: str, out: OutputBag) -> None:
        """One camera message through the pipeline; every output written at its bag time."""
        self.frames_in += 1
        try:
            msg = deserialize(message, msgtype)
            start = time.perf_counter()
            rgb = DECODERS[msgtype](msg)
            decoded = time.perf_counter()
            result = self.pipeline(rgb, outputs=self._maps)
        except FRAME_ERRORS as error:
            self.bad_frames.add(message, error)
            return
        ran = time.perf_counter()
        header, when, name = msg.header, message.timestamp, self.options.qualified_name
        device = self.pipeline.device
        analysis = analyze(result, self._analysis)
        objects = analysis.objects.objects
        summary = summary_message(analysis.summary, header, name, device)
        out.write(self.options.output_topic(SUMMARY_TOPIC), when, serialize(summary))
        found = objects_message(objects, header, name, device)
        out.write(self.options.output_topic(OBJECTS_TOPIC), when, serialize(found))
        analysed = time.perf_counter()
        drawn = objects if self.params.draw_objects else None
        for topic in self._images:
            image = image_message(topic, result, rgb, header, self._render, drawn)
            out.write(self.options.output_topic(topic), when, serialize(image))
        published = time.perf_counter()
        times = stage_times(
            (decoded - start) * 1e3,
            result.timings_ms,
            (analysed - ran) * 1e3,
            (published - analysed) * 1e3,
        )
        timing = timing_message(header, times, name, device)
        out.write(self.options.output_topic(TIMING_TOPIC), when, serialize(timing))
        for stage, ms in times.items():
            self.stage_ms.setdefault(stage, []).append(ms)
        self.frames_out += 1
        if self.metrics is not None:
            self._score(message, lambda: self.metrics.add_scores(stamp_ns(header), result.anomaly))

    def _label(self, message: BagMessage, msgtype: str) -> None:
        """One ground-truth message, paired with its frame's anomaly map by stamp."""
        self.labels_in += 1
        try:
            msg = deserialize(message, msgtype)
            label = decode_label(msg)
        except (BadMessage, ImageDecodeError) as error:
            self.bad_labels.add(message, error)
            return
        self._score(message, lambda: self.metrics.add_label(stamp_ns(msg.header), label))

    def _score(self, message: BagMessage, add: Callable[[], None]) -> None:
        try:
            add()
        except ValueError as error:  # map and label of one stamp differ in size
            self.bad_labels.add(message, error)

    def report(
        self,
        camera: BagTopic,
        truth: BagTopic | None,
        storage: str,
        wall_s: float,
        written: dict[str, int],
        input_note: str | None,
    ) -> dict[str, Any]:
        """What was read, written and measured, as one JSON-ready dict."""
        pipeline = self.pipeline
        report: dict[str, Any] = {
            "input": str(self.options.source),
            "topic": camera.name,
            "msgtype": camera.msgtype,
            "output": str(self.options.out),
            "storage": storage,
            "node_name": self.options.qualified_name,
            "backend": pipeline.backend_name,
            "device": pipeline.device,
            "precision": pipeline.precision,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_bad": self.bad_frames.count,
            "bad_frames": self.bad_frames.examples,
            "wall_s": round(wall_s, 3),
            "fps": round(self.frames_out / wall_s, 3) if wall_s > 0 else None,
            "stages_ms": {stage: percentiles(ms) for stage, ms in self.stage_ms.items()},
            "topics_written": written,
        }
        if input_note:
            report["input_note"] = f"read record by record: {input_note}"
        if truth is not None:
            pairer = self.metrics.pairer
            report["ground_truth"] = {
                "topic": truth.name,
                "labels_in": self.labels_in,
                "labels_bad": self.bad_labels.count,
                "bad_labels": self.bad_labels.examples,
                "frames_without_label": pairer.unpaired_first,
                "labels_without_frame": pairer.unpaired_second,
                **self.metrics.result(),
            }
        return report
