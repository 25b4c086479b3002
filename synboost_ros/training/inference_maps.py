"""The intermediate maps of the inference pipeline, computed exactly as ``AnomalyPipeline`` does.

Training data, validation and the ensemble search need the maps the deployed pipeline would
see: the image resized to the segmentation and synthesis sizes, the predicted semantic map
(nearest-resized) and entropy / distance (bilinear-resized) at the synthesis size, the
synthesized image and the perceptual difference. All maps here are at the synthesis size.
Resizing and conversion are the pipeline's own functions (``synboost_ros.preprocessing``), and
a dissimilarity net is fed by the dissimilarity stage's own ``stages.dissimilarity_logits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synboost_ros.config import InputNormalization
from synboost_ros.model import SynBoostModel
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.preprocessing import (
    image_array,
    network_input,
    resize_image,
    resize_labels,
    resize_map,
)
from synboost_ros.stages import (
    SegmentationStage,
    SynthesisStage,
    dissimilarity_logits,
    uncertainty_stack,
)


@dataclass
class SegmentationMaps:
    """Segmentation outputs resized to the synthesis size."""

    semantic: np.ndarray  # HxW uint8 train ids
    entropy: np.ndarray  # HxW float32 in [0, 1]
    distance: np.ndarray  # HxW float32 in [0, 1]


@dataclass
class InferenceMaps:
    """Everything the dissimilarity stage receives, at the synthesis size."""

    image: np.ndarray  # HxWx3 uint8 RGB
    semantic: np.ndarray  # HxW uint8
    entropy: np.ndarray  # HxW float32
    distance: np.ndarray  # HxW float32
    synthesized: np.ndarray  # 3xHxW float32 RGB in [0, 1]
    perceptual: np.ndarray  # HxW float32


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 1x3xHxW float32 in [0, 1] (the pipeline's input conversion)."""
    return torch.from_numpy(image_array(image))


class MapExtractor:
    """Runs segmentation, synthesis and the perceptual difference of a model on one image."""

    def __init__(self, model: SynBoostModel, device: torch.device) -> None:
        self.config = model.config
        self.device = device
        self.segmentation = SegmentationStage(model).to(device).eval()
        self.synthesis = SynthesisStage(model).to(device).eval()
        self.perceptual = model.perceptual.to(device).eval()

    @torch.no_grad()
    def segment(self, image: np.ndarray) -> SegmentationMaps:
        """Predicted semantic map, entropy and distance of an HxWx3 uint8 image."""
        seg_input = torch.from_numpy(network_input(image, self.config.segmentation_size))
        semantic, entropy, distance = self.segmentation(seg_input.to(self.device))
        size = self.config.synthesis_size
        return SegmentationMaps(
            semantic=resize_labels(semantic[0].cpu().numpy().astype(np.uint8), size),
            entropy=resize_map(entropy[0, 0].cpu().numpy(), size),
            distance=resize_map(distance[0, 0].cpu().numpy(), size),
        )

    @torch.no_grad()
    def synthesize(self, semantic: np.ndarray) -> np.ndarray:
        """Image (3xHxW float32 in [0, 1]) drawn from an HxW train-id map (255: no class)."""
        ids = torch.from_numpy(semantic.astype(np.int32))[None].to(self.device)
        return self.synthesis(ids)[0].float().cpu().numpy()

    @torch.no_grad()
    def perceptual_difference(self, image: np.ndarray, synthesized: np.ndarray) -> np.ndarray:
        """Perceptual difference (HxW float32) of a synthesis-size image and a synthesis."""
        real = image_tensor(image).to(self.device)
        fake = torch.from_numpy(synthesized)[None].to(self.device)
        return self.perceptual(real, fake)[0, 0].float().cpu().numpy()

    def synthesis_input(self, image: np.ndarray) -> np.ndarray:
        """The camera image resized to the synthesis size (HxWx3 uint8)."""
        return resize_image(image, self.config.synthesis_size)

    def __call__(self, image: np.ndarray) -> InferenceMaps:
        """All maps of the inference pipeline for one HxWx3 uint8 RGB image."""
        seg = self.segment(image)
        small = self.synthesis_input(image)
        synthesized = self.synthesize(seg.semantic)
        return InferenceMaps(
            image=small,
            semantic=seg.semantic,
            entropy=seg.entropy,
            distance=seg.distance,
            synthesized=synthesized,
            perceptual=self.perceptual_difference(small, synthesized),
        )


@torch.no_grad()
def dissimilarity_probability(
    net: DissimilarityNet,
    maps: InferenceMaps,
    device: torch.device,
    normalization: InputNormalization,
) -> np.ndarray:
    """Anomaly probability (HxW float32) of a dissimilarity net on precomputed maps; the net's
    image encoder gets ``normalization`` (its model's ``dissimilarity_image_normalization``)."""

    def plane(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]

    uncertainty = uncertainty_stack(
        plane(maps.entropy), plane(maps.perceptual), plane(maps.distance)
    )
    logits = dissimilarity_logits(
        net,
        image_tensor(maps.image).to(device),
        torch.from_numpy(maps.synthesized)[None].to(device),
        torch.from_numpy(maps.semantic.astype(np.int64))[None].to(device),
        uncertainty.to(device) if net.use_uncertainty else None,
        net.num_classes,
        normalization,
    )
    return torch.softmax(logits.float(), dim=1)[0, 1].cpu().numpy()
