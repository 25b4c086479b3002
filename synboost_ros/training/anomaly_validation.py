"""A held-out anomaly set with its inference maps computed once, for model selection.

The maps (segmentation, synthesis, perceptual difference) do not change while the
dissimilarity net trains or while ensemble weights are searched, so they are computed once.
Scores are evaluated at the synthesis size with the labels nearest-resized to it: a selection
metric. The reported metrics come from ``synboost eval`` at the labels' own resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from synboost_ros.classes import IGNORE_ID
from synboost_ros.config import InputNormalization
from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator, AnomalyMetrics
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.preprocessing import resize_labels
from synboost_ros.training.inference_maps import (
    InferenceMaps,
    MapExtractor,
    dissimilarity_probability,
)


@dataclass
class ValidationImage:
    """Inference maps and the anomaly label of one image, at the synthesis size."""

    stem: str
    maps: InferenceMaps
    label: np.ndarray  # HxW uint8: 0 normal, 1 anomaly, 255 ignore


def pooled_metrics(scores: np.ndarray, labels: np.ndarray) -> AnomalyMetrics:
    """AP / FPR95 / AUROC of 1-D score and label arrays pooled over a data set."""
    accumulator = AnomalyMetricAccumulator()
    accumulator.update(scores.reshape(1, -1), labels.reshape(1, -1))
    return accumulator.compute()


class AnomalyValidationSet:
    """Inference maps of an anomaly set; scores dissimilarity nets and map combinations."""

    def __init__(self, images: Sequence[ValidationImage]) -> None:
        if not images:
            raise ValueError("the validation set has no images")
        self.images = list(images)
        self._evaluated = [image.label != IGNORE_ID for image in self.images]
        self.labels = np.concatenate(
            [image.label[mask] for image, mask in zip(self.images, self._evaluated, strict=True)]
        )

    @classmethod
    def compute(
        cls, samples: Sequence, extractor: MapExtractor, limit: int | None = None
    ) -> AnomalyValidationSet:
        """Run segmentation, synthesis and perceptual difference once per anomaly sample."""
        count = len(samples) if limit is None else min(limit, len(samples))
        images = []
        for index in tqdm(range(count), desc="validation maps", unit="img"):
            sample = samples[index]
            images.append(
                ValidationImage(
                    stem=sample.stem,
                    maps=extractor(sample.image),
                    label=resize_labels(sample.label, extractor.config.synthesis_size),
                )
            )
        return cls(images)

    def pooled(self, maps: Sequence[np.ndarray]) -> np.ndarray:
        """Concatenate per-image HxW maps over the evaluated (non-ignored) pixels."""
        return np.concatenate(
            [np.asarray(m, np.float32)[mask] for m, mask in zip(maps, self._evaluated, strict=True)]
        )

    def pooled_map(self, name: str) -> np.ndarray:
        """An inference map (``entropy``, ``distance`` or ``perceptual``), pooled."""
        return self.pooled([getattr(image.maps, name) for image in self.images])

    def dissimilarity_maps(
        self, net: DissimilarityNet, device: torch.device, normalization: InputNormalization
    ) -> list[np.ndarray]:
        """The net's anomaly probability on every image (``normalization``: its image input's)."""
        was_training = net.training
        net.eval()
        maps = [
            dissimilarity_probability(net, image.maps, device, normalization)
            for image in tqdm(self.images, desc="validation", unit="img", leave=False)
        ]
        net.train(was_training)
        return maps

    def evaluate(self, maps: Sequence[np.ndarray]) -> AnomalyMetrics:
        """Pooled metrics of per-image score maps."""
        return pooled_metrics(self.pooled(maps), self.labels)
