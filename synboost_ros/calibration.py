"""INT8 calibration data: each stage's inputs for a folder of images, made the pipeline's way.

The images run through ``AnomalyPipeline`` on the fp32 ONNX graphs the engines are built from
(onnxruntime on the CPU; preprocessing in numpy and OpenCV, so no torch where those graphs are
kept with the weights), and a recording backend keeps what each stage was given, so the
calibration batches carry the stage's own preprocessing and the real outputs of the stages
before it, at the engines' fixed shapes. It runs only when an int8 engine is built without a
calibration cache.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from synboost_ros.backends.base import Backend
from synboost_ros.backends.tensorrt.calibration import (
    CalibrationSet,
    calibration_digest,
    calibration_images,
)

if TYPE_CHECKING:
    from synboost_ros.config import PipelineConfig
    from synboost_ros.model_source import ModelSource

logger = logging.getLogger(__name__)

CALIBRATION_IMAGES = 64  # the first images of the folder, by name


class RecordingBackend(Backend):
    """Runs another backend and keeps a copy of every stage's inputs."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name, self.device, self.precision = inner.name, inner.device, inner.precision
        self.inputs: dict[str, list[dict[str, np.ndarray]]] = {}

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Record ``inputs``, then run the stage on the inner backend."""
        self.inputs.setdefault(stage, []).append({k: np.array(v) for k, v in inputs.items()})
        return self.inner.run(stage, inputs)


def record_stage_inputs(
    config: PipelineConfig, images: list[np.ndarray], backend: Backend
) -> dict[str, list[dict[str, np.ndarray]]]:
    """Each stage's inputs, per image, when ``images`` run through the pipeline on ``backend``."""
    from synboost_ros.pipeline import AnomalyPipeline  # the pipeline imports this module

    recorder = RecordingBackend(backend)
    pipeline = AnomalyPipeline(config, recorder)
    for image in images:
        pipeline(image, outputs=())
    return recorder.inputs


def calibration_set(
    source: ModelSource, folder: str | os.PathLike, limit: int = CALIBRATION_IMAGES
) -> CalibrationSet:
    """The calibration set of the first ``limit`` images of ``folder`` for the model of
    ``source`` (read, and run on its ONNX graphs, when used)."""
    files = calibration_images(folder, limit)
    recorded: dict[str, list[dict[str, np.ndarray]]] = {}

    def stage_inputs(stage: str) -> list[dict[str, np.ndarray]]:
        if not recorded:
            from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
            from synboost_ros.data.image_files import read_rgb

            logger.info("INT8 calibration: running %d images of %s in fp32", len(files), folder)
            backend = OnnxRuntimeBackend(source.onnx_graphs("tensorrt"), "cpu")
            images = [read_rgb(f) for f in files]
            recorded.update(record_stage_inputs(source.config, images, backend))
        return recorded[stage]

    return CalibrationSet(calibration_digest(files), stage_inputs)
