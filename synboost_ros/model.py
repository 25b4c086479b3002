"""The four trainable parts of a SynBoost model, built from a ``PipelineConfig``."""

from __future__ import annotations

from torch import nn

from synboost_ros.config import MODEL_PARTS, PipelineConfig
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.nn.icnet import ICNet
from synboost_ros.nn.perceptual import PerceptualDifference
from synboost_ros.nn.spade_generator import SPADEGenerator


class SynBoostModel(nn.Module):
    """Container of the segmentation, synthesis, perceptual and dissimilarity networks."""

    def __init__(self, config: PipelineConfig, spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = config
        self.segmentation = ICNet(config.num_classes, config.segmentation_size, config.icnet)
        self.synthesis = SPADEGenerator(
            config.num_classes, config.synthesis_size, config.spade, spectral_norm=spectral_norm
        )
        self.perceptual = PerceptualDifference(
            config.perceptual_vgg_width, config.perceptual_scale, config.perceptual_normalization
        )
        self.dissimilarity = DissimilarityNet(config.num_classes, config.dissimilarity)

    def part(self, name: str) -> nn.Module:
        """Return one of ``MODEL_PARTS`` by name."""
        if name not in MODEL_PARTS:
            raise ValueError(f"unknown model part {name!r}; parts are {MODEL_PARTS}")
        return getattr(self, name)
