"""One frame of ``AnomalyPipeline`` kept on the backend's device, upload to outputs (the
torch backend, or TensorRT's engines bound to the torch tensors: ``run_tensors``).

The camera image is uploaded once (on CUDA through a pinned staging buffer); the resizes to
the stage sizes, the normalisation to [0, 1], the stages (argmax, one-hot and the
uncertainty maps inside them) and the resizes back to the camera size run as torch ops on the
device (``device_ops``, the rules of ``preprocessing``). Only the maps asked for are copied
back: on CUDA into pinned memory, asynchronously, on the pipeline's one stream, waited for
once at the end of the frame. Temporal fusion and gating (OpenCV optical flow, numpy) take
the synthesis-size anomaly, image and classes to the host and the fused map back. On the CPU
the same code runs, with host timing; on CUDA stages are timed by CUDA events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection

import numpy as np
import torch

from synboost_ros.backends.torch_backend import TorchBackend
from synboost_ros.config import PipelineConfig
from synboost_ros.device_ops import (
    image_levels,
    network_input,
    resize_labels,
    resize_levels,
    resize_map,
    upload_image,
)
from synboost_ros.stage_clock import CudaEventClock, PerfClock, StageClock

# (anomaly HxW float32, synthesis-size RGB HxWx3 uint8, classes HxW uint8, lap) -> anomaly
Postprocess = Callable[[np.ndarray, np.ndarray, np.ndarray, Callable[[str], None]], np.ndarray]
FLOAT_MAPS = ("entropy", "distance", "perceptual", "dissimilarity", "anomaly")


class DeviceFrames:
    """Runs frames through a device-resident backend (``TorchBackend``, or TensorRT's with
    torch on CUDA: anything with ``torch_device`` and ``run_tensors``) for one configuration."""

    def __init__(self, backend: TorchBackend, config: PipelineConfig) -> None:
        self._backend = backend
        self._config = config
        self._device = backend.torch_device
        self._cuda = self._device.type == "cuda"
        self._stream = torch.cuda.Stream(self._device) if self._cuda else None
        self._staging: torch.Tensor | None = None

    def __call__(
        self,
        image: np.ndarray,
        ensemble_weights: np.ndarray,
        wanted: Collection[str],
        postprocess: Postprocess | None,
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The wanted maps at the camera size (host arrays) and the stage times (ms)."""
        stream = (
            torch.cuda.stream(self._stream)
            if self._stream is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), stream:
            clock: StageClock = CudaEventClock(self._device) if self._cuda else PerfClock()
            maps = self._frame(image, ensemble_weights, wanted, postprocess, clock)
            clock.lap("postprocess")
            return maps, clock.finish()

    def _frame(
        self,
        image: np.ndarray,
        ensemble_weights: np.ndarray,
        wanted: Collection[str],
        postprocess: Postprocess | None,
        clock: StageClock,
    ) -> dict[str, np.ndarray]:
        run, syn_size = self._backend.run_tensors, self._config.synthesis_size
        levels = upload_image(image, self._device, self._staging_for(image))
        seg_input = network_input(levels, self._config.segmentation_size)
        syn_image = network_input(levels, syn_size)
        clock.lap("preprocess")
        semantic, entropy, distance = run("segmentation", seg_input)
        clock.lap("segmentation")
        syn_semantic = resize_labels(semantic, syn_size)
        (synthesized,) = run("synthesis", syn_semantic)
        clock.lap("synthesis")
        weights = torch.from_numpy(ensemble_weights).to(self._device)
        perceptual, dissimilarity, anomaly = run(
            "dissimilarity",
            syn_image,
            synthesized,
            syn_semantic,
            resize_map(entropy, syn_size),
            resize_map(distance, syn_size),
            weights,
        )
        clock.lap("dissimilarity")
        if postprocess is not None:
            anomaly = self._postprocess(anomaly, syn_image, syn_semantic, postprocess, clock.lap)
        size = image.shape[:2]
        sources = {
            "entropy": entropy,
            "distance": distance,
            "perceptual": perceptual,
            "dissimilarity": dissimilarity,
            "anomaly": anomaly,
        }
        outputs = {
            name: resize_map(sources[name], size)[0, 0] for name in FLOAT_MAPS if name in wanted
        }
        if "semantic" in wanted:
            outputs["semantic"] = resize_labels(semantic, size)[0].to(torch.uint8)
        if "synthesized" in wanted:
            rgb = resize_levels(image_levels(synthesized), size)[0].permute(1, 2, 0)
            outputs["synthesized"] = rgb.to(torch.uint8)
        return self._to_host(outputs)

    def _postprocess(
        self,
        anomaly: torch.Tensor,
        image: torch.Tensor,
        semantic: torch.Tensor,
        postprocess: Postprocess,
        lap: Callable[[str], None],
    ) -> torch.Tensor:
        """The host post-processing on the synthesis-size maps; the result back on the device."""
        host = self._to_host(
            {
                "anomaly": anomaly[0, 0].float(),
                "rgb": image_levels(image)[0].permute(1, 2, 0).to(torch.uint8),
                "semantic": semantic[0].to(torch.uint8),
            }
        )
        plane = postprocess(host["anomaly"], host["rgb"], host["semantic"], lap)
        fused = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))
        return fused.to(self._device)[None, None]

    def _staging_for(self, image: np.ndarray) -> torch.Tensor | None:
        """The pinned upload buffer for the image's shape (CUDA only; one, reused)."""
        if not self._cuda:
            return None
        if self._staging is None or tuple(self._staging.shape) != image.shape:
            self._staging = torch.empty(image.shape, dtype=torch.uint8, pin_memory=True)
        return self._staging

    def _to_host(self, tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Copy tensors to host arrays: on CUDA into fresh pinned memory, asynchronously on
        the current stream, then one wait."""
        if not self._cuda:
            return {name: t.contiguous().numpy() for name, t in tensors.items()}
        pinned = {}
        for name, tensor in tensors.items():
            pinned[name] = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            pinned[name].copy_(tensor, non_blocking=True)
        torch.cuda.current_stream(self._device).synchronize()
        return {name: t.numpy() for name, t in pinned.items()}
