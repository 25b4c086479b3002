"""The three inference stages as fixed-shape torch modules, one ONNX graph / engine each.

- segmentation: image -> semantic ids, entropy, distance (segmentation size)
- synthesis: semantic ids -> synthesized image (synthesis size)
- dissimilarity: perceptual difference + dissimilarity network + ensemble (synthesis size)

Images are RGB float in [0, 1]; class ids are int32; maps are (N, 1, H, W) float in [0, 1].
Each network's input normalisation (from the model configuration) happens inside the graphs.
"""

from __future__ import annotations

import torch
from torch import nn

from synboost_ros.config import STAGE_NAMES, InputNormalization
from synboost_ros.ensemble import weighted_average
from synboost_ros.model import SynBoostModel
from synboost_ros.nn.input_normalization import normalize_input
from synboost_ros.nn.label_maps import SynthesisLabelInput, one_hot
from synboost_ros.uncertainty import class_probabilities, distance_from_top2, softmax_entropy


class SegmentationStage(nn.Module):
    """ICNet + softmax + entropy and distance maps."""

    def __init__(self, model: SynBoostModel) -> None:
        super().__init__()
        self.network = model.segmentation
        self.normalization = model.config.segmentation_normalization

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (semantic int32, entropy, distance)."""
        logits = self.network(normalize_input(image, self.normalization))
        probs = class_probabilities(logits.float())
        top2 = torch.topk(probs, k=2, dim=1)
        semantic = top2.indices[:, 0].to(torch.int32)
        return semantic, softmax_entropy(probs), distance_from_top2(top2.values)


class SynthesisStage(nn.Module):
    """SPADE generator from the semantic map (as the label input of ``spade.label_input``);
    output RGB in [0, 1]."""

    def __init__(self, model: SynBoostModel) -> None:
        super().__init__()
        self.network = model.synthesis
        self.label_input = SynthesisLabelInput(
            model.config.num_classes, model.config.spade.label_input
        )

    def forward(self, semantic: torch.Tensor) -> torch.Tensor:
        """Return the synthesized image."""
        image = self.network(self.label_input(semantic))
        return ((image.float() + 1.0) * 0.5).clamp(0.0, 1.0)


def uncertainty_stack(
    entropy: torch.Tensor, perceptual: torch.Tensor, distance: torch.Tensor
) -> torch.Tensor:
    """(N, 1, H, W) maps -> the (N, 3, H, W) uncertainty input, in the network's order."""
    return torch.cat([entropy, perceptual, distance], dim=1)


def dissimilarity_logits(
    net: nn.Module,
    image: torch.Tensor,
    synthesized: torch.Tensor,
    semantic: torch.Tensor,
    uncertainty: torch.Tensor | None,
    num_classes: int,
    normalization: InputNormalization,
) -> torch.Tensor:
    """Feed a dissimilarity net, in inference and training alike: images RGB in [0, 1] given
    the image encoder's input ``normalization``, class ids one-hot, ``uncertainty`` from
    ``uncertainty_stack`` (None for a net built without it)."""
    return net(
        normalize_input(image, normalization),
        normalize_input(synthesized, normalization),
        one_hot(semantic, num_classes),
        uncertainty,
    )


class DissimilarityStage(nn.Module):
    """Perceptual difference, dissimilarity probability and the weighted ensemble."""

    def __init__(self, model: SynBoostModel) -> None:
        super().__init__()
        self.perceptual = model.perceptual
        self.network = model.dissimilarity
        self.num_classes = model.config.num_classes
        self.normalization = model.config.dissimilarity_image_normalization

    def forward(
        self,
        image: torch.Tensor,
        synthesized: torch.Tensor,
        semantic: torch.Tensor,
        entropy: torch.Tensor,
        distance: torch.Tensor,
        ensemble_weights: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (perceptual difference, dissimilarity probability, anomaly score)."""
        perceptual = self.perceptual(image, synthesized).float()
        logits = dissimilarity_logits(
            self.network,
            image,
            synthesized,
            semantic,
            uncertainty_stack(entropy, perceptual, distance),
            self.num_classes,
            self.normalization,
        )
        dissimilarity = torch.softmax(logits.float(), dim=1)[:, 1:2]
        anomaly = weighted_average([dissimilarity, entropy, perceptual, distance], ensemble_weights)
        return perceptual, dissimilarity, anomaly.clamp(0.0, 1.0)


def build_stages(model: SynBoostModel) -> dict[str, nn.Module]:
    """The three stage modules of a model, keyed by stage name."""
    modules = (SegmentationStage(model), SynthesisStage(model), DissimilarityStage(model))
    return dict(zip(STAGE_NAMES, modules, strict=True))
