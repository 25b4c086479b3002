"""``AnomalyPipeline``: camera image in, semantic / uncertainty / anomaly maps out."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from synboost_ros.backends.base import Backend
from synboost_ros.backends.factory import create_backend, resolve_device
from synboost_ros.calibration import calibration_set
from synboost_ros.config import PipelineConfig, Size
from synboost_ros.ensemble import validate_weights
from synboost_ros.model_source import ModelSource
from synboost_ros.options import DEFAULT_OPTIONS, device_kind
from synboost_ros.postprocess.gating import gate_anomaly
from synboost_ros.postprocess.options import PostprocessOptions
from synboost_ros.postprocess.temporal import TemporalFusion
from synboost_ros.preprocessing import (
    network_input,
    resize,
    resize_labels,
    resize_map,
    to_uint8_image,
)
from synboost_ros.stage_clock import PerfClock

if TYPE_CHECKING:
    from synboost_ros.device_pipeline import DeviceFrames

OUTPUT_NAMES = (
    "semantic",
    "entropy",
    "distance",
    "perceptual",
    "dissimilarity",
    "anomaly",
    "synthesized",
)


class InvalidImageError(ValueError):
    """The input is not a usable HxWx3 uint8 image."""


@dataclass
class PipelineResult:
    """All maps at the input resolution; maps that were not requested are None."""

    semantic: np.ndarray | None = None  # HxW uint8 class ids
    entropy: np.ndarray | None = None  # HxW float32 in [0, 1]
    distance: np.ndarray | None = None
    perceptual: np.ndarray | None = None
    dissimilarity: np.ndarray | None = None
    anomaly: np.ndarray | None = None  # final ensemble score
    synthesized: np.ndarray | None = None  # HxWx3 uint8 RGB
    timings_ms: dict[str, float] = field(default_factory=dict)


class AnomalyPipeline:
    """The SynBoost pipeline on one backend, with optional post-processing of the anomaly map
    (``set_postprocess``: temporal fusion, drivable-area gating).

    The torch backend on CUDA, and TensorRT where torch with CUDA is installed, keep each
    frame on the GPU from upload to the outputs (``device_pipeline``); the other backends, and
    torch on the CPU, run the stages on numpy arrays with OpenCV resizes (``preprocessing``).
    ``device_resident`` switches such a backend between the two (the device path on the CPU:
    its tests and the GPU script's CPU rehearsal).
    """

    def __init__(self, config: PipelineConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.ensemble_weights = np.asarray(config.ensemble_weights, dtype=np.float32)
        self.postprocess = PostprocessOptions()
        self._device_resident = backend.device_resident
        self._temporal = TemporalFusion()
        self._device_frames: DeviceFrames | None = None

    @classmethod
    def create(
        cls,
        preset: str = DEFAULT_OPTIONS.preset,
        weights: str | Path | None = None,
        random_weights: bool = DEFAULT_OPTIONS.random_weights,
        backend: str = DEFAULT_OPTIONS.backend,
        device: str = DEFAULT_OPTIONS.device,
        precision: str = DEFAULT_OPTIONS.precision,
        graphs: str = DEFAULT_OPTIONS.graphs,
        dla_core: int = DEFAULT_OPTIONS.dla_core,
        calibration: str | Path | None = None,
        ensemble_weights: Sequence[float] | None = None,
        segmentation_size: Size | None = None,
        synthesis_size: Size | None = None,
    ) -> AnomalyPipeline:
        """Open weights (or build random ones when asked explicitly) and build a backend;
        with backend onnxruntime or tensorrt and the graphs kept with the weights, torch is
        never imported.

        The arguments are those of ``synboost_ros.options.ModelOptions`` (their defaults and
        rules; ``ModelOptions.pipeline_arguments`` makes them); None = the preset's or the
        model's own value.
        """
        device = resolve_device(device)  # a missing GPU fails before the weights load
        source = ModelSource.open(
            preset, weights, random_weights, segmentation_size, synthesis_size
        )
        images = calibration_set(source, calibration) if calibration else None
        built = create_backend(source, backend, device, precision, dla_core, images, graphs)
        pipeline = cls(source.config, built)
        if ensemble_weights is not None:
            pipeline.set_ensemble_weights(ensemble_weights)
        return pipeline

    @property
    def backend_name(self) -> str:
        """Name of the backend that runs."""
        return self.backend.name

    @property
    def device(self) -> str:
        """Device the backend runs on."""
        return self.backend.device

    @property
    def precision(self) -> str:
        """Precision that actually runs."""
        return self.backend.precision

    @property
    def layout(self) -> str:
        """Memory layout of the activations that actually runs (nchw | channels_last)."""
        return self.backend.layout

    @property
    def device_resident(self) -> bool:
        """Whether frames stay on the backend's device from upload to the outputs."""
        return self._device_resident

    @device_resident.setter
    def device_resident(self, value: bool) -> None:
        if value and not hasattr(self.backend, "run_tensors"):
            raise ValueError(f"backend {self.backend.name} cannot keep frames on its device")
        self._device_resident = value

    @property
    def stage_timer(self) -> str:
        """What times the stages: ``cuda_events`` (frames on a CUDA device) or
        ``perf_counter`` (the host's clock)."""
        on_cuda = device_kind(self.device) == "cuda"
        return "cuda_events" if self.device_resident and on_cuda else "perf_counter"

    @property
    def graphs(self) -> str:
        """``on`` when the stages replay CUDA graphs, else ``off`` (what actually runs)."""
        return "on" if self.backend.graphs else "off"

    def set_ensemble_weights(self, weights: Sequence[float]) -> None:
        """Change the ensemble weights at run time (they are a graph input)."""
        self.ensemble_weights = np.asarray(validate_weights(weights), dtype=np.float32)

    def set_postprocess(self, options: PostprocessOptions) -> None:
        """Change the post-processing; turning temporal fusion off forgets its state."""
        if not options.temporal_fusion:
            self._temporal.reset()
        self._temporal.weight = options.temporal_weight
        self.postprocess = options

    def __call__(
        self,
        image: np.ndarray,
        outputs: Collection[str] | None = None,
        temporal: TemporalFusion | None = None,
    ) -> PipelineResult:
        """Run one HxWx3 uint8 RGB image; ``outputs`` picks the maps to return.

        With temporal fusion on, ``temporal`` holds the state of the camera stream the image
        belongs to (None = the pipeline's own stream, for a single camera).
        """
        wanted = _check_outputs(outputs)
        _check_image(image)
        stream = temporal if temporal is not None else self._temporal
        if self.device_resident:
            maps, timings = self._device_frame(image, wanted, stream)
        else:
            maps, timings = self._host_frame(image, wanted, stream)
        return PipelineResult(**maps, timings_ms=timings)

    def _device_frame(
        self, image: np.ndarray, wanted: set[str], temporal: TemporalFusion
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The frame on the backend's device (``device_pipeline.DeviceFrames``)."""
        if self._device_frames is None:
            from synboost_ros.device_pipeline import DeviceFrames

            self._device_frames = DeviceFrames(self.backend, self.config)

        def postprocess(
            anomaly: np.ndarray, rgb: np.ndarray, semantic: np.ndarray, lap: Callable[[str], None]
        ) -> np.ndarray:
            return self._postprocess(anomaly, rgb, semantic, temporal, lap)

        active = self.postprocess.temporal_fusion or self.postprocess.drivable_gating
        return self._device_frames(
            image, self.ensemble_weights, wanted, postprocess if active else None
        )

    def _host_frame(
        self, image: np.ndarray, wanted: set[str], temporal: TemporalFusion
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The frame through ``backend.run`` per stage, resized on the host with OpenCV."""
        clock = PerfClock()
        height, width = image.shape[:2]
        seg_input = network_input(image, self.config.segmentation_size)
        syn_image = network_input(image, self.config.synthesis_size)
        clock.lap("preprocess")
        seg = self.backend.run("segmentation", {"image": seg_input})
        clock.lap("segmentation")
        seg_semantic = seg["semantic"][0].astype(np.uint8)
        syn_semantic = resize_labels(seg_semantic, self.config.synthesis_size)
        syn_semantic = syn_semantic[None].astype(np.int32)
        synthesized = self.backend.run("synthesis", {"semantic": syn_semantic})["synthesized"]
        clock.lap("synthesis")
        maps = self.backend.run(
            "dissimilarity",
            {
                "image": syn_image,
                "synthesized": synthesized,
                "semantic": syn_semantic,
                "entropy": resize_map(seg["entropy"], self.config.synthesis_size)[None, None],
                "distance": resize_map(seg["distance"], self.config.synthesis_size)[None, None],
                "ensemble_weights": self.ensemble_weights,
            },
        )
        clock.lap("dissimilarity")
        if self.postprocess.temporal_fusion or self.postprocess.drivable_gating:
            maps["anomaly"] = self._postprocess(
                maps["anomaly"].reshape(maps["anomaly"].shape[-2:]),
                to_uint8_image(syn_image[0]),
                syn_semantic[0].astype(np.uint8),
                temporal,
                clock.lap,
            )
        size = (height, width)
        result: dict[str, np.ndarray] = {}
        if "semantic" in wanted:
            result["semantic"] = resize_labels(seg_semantic, size)
        for name, source in (("entropy", seg), ("distance", seg)):
            if name in wanted:
                result[name] = resize_map(source[name], size)
        for name in ("perceptual", "dissimilarity", "anomaly"):
            if name in wanted:
                result[name] = resize_map(maps[name], size)
        if "synthesized" in wanted:
            result["synthesized"] = resize(to_uint8_image(synthesized[0]), size, cv2.INTER_LINEAR)
        clock.lap("postprocess")
        return result, clock.finish()

    def _postprocess(
        self,
        plane: np.ndarray,
        rgb: np.ndarray,
        semantic: np.ndarray,
        temporal: TemporalFusion,
        lap: Callable[[str], None],
    ) -> np.ndarray:
        """Temporal fusion and gating of the HxW anomaly map at the synthesis size (``rgb``
        the HxWx3 uint8 image there, ``semantic`` uint8 classes), each timed as its stage."""
        options = self.postprocess
        if options.temporal_fusion:
            temporal.weight = options.temporal_weight
            plane = temporal(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), semantic, plane)
            lap("temporal")
        if options.drivable_gating:
            plane = gate_anomaly(plane, semantic, options.drivable_classes, options.gating)
            lap("gating")
        return plane

    def run_batch(
        self, images: Sequence[np.ndarray] | np.ndarray, outputs: Collection[str] | None = None
    ) -> list[PipelineResult]:
        """Run a batch (an NxHxWx3 array or a list of images of any sizes)."""
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise InvalidImageError(f"a batch must be NxHxWx3, got shape {images.shape}")
        return [self(image, outputs) for image in images]


def _check_outputs(outputs: Collection[str] | None) -> set[str]:
    if outputs is None:
        return set(OUTPUT_NAMES)
    unknown = set(outputs) - set(OUTPUT_NAMES)
    if unknown:
        raise ValueError(f"unknown outputs {sorted(unknown)}; choose from {OUTPUT_NAMES}")
    return set(outputs)


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError(f"image must be HxWx3 RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise InvalidImageError(f"image must be uint8, got {image.dtype}")
    # Any non-empty image runs: it is resized to the networks' input sizes, optical flow runs
    # at those sizes, and the maps are resized back, so a 1xN line scan gets 1xN maps.
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImageError(f"image is empty: {image.shape[1]}x{image.shape[0]} pixels")
