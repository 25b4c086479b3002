"""Model presets: network widths, stage input sizes and ensemble weights."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from synboost_ros.classes import NUM_CLASSES

Size = tuple[int, int]  # (height, width)
# Weight-file parts of a model (``SynBoostModel``), in pipeline order.
MODEL_PARTS = ("segmentation", "synthesis", "perceptual", "dissimilarity")


@dataclass(frozen=True)
class ICNetConfig:
    """ICNet widths: a dilated ResNet-50-style deep branch plus two light branches."""

    base_width: int = 64  # stem / first bottleneck width of the deep branch (ResNet-50: 64)
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)  # bottlenecks per ResNet stage
    light_width: int = 32  # first conv width of the full-resolution light branch
    fusion_width: int = 128  # channels of the cascade feature fusion outputs


@dataclass(frozen=True)
class SpadeConfig:
    """SPADE generator (no VAE encoder)."""

    ngf: int = 64
    num_upsampling_layers: str = "more"  # "normal" | "more" | "most"
    spade_hidden: int = 128


@dataclass(frozen=True)
class DissimilarityConfig:
    """Dissimilarity network widths (the reference model uses multiplier 1.0)."""

    vgg_width: float = 1.0  # VGG16 image encoder width multiplier
    semantic_widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    prior_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    fusion_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    spade_hidden: int = 128


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that defines a model apart from its weights."""

    preset: str
    num_classes: int = NUM_CLASSES
    segmentation_size: Size = (512, 1024)
    synthesis_size: Size = (256, 512)  # synthesis, perceptual difference and dissimilarity
    icnet: ICNetConfig = field(default_factory=ICNetConfig)
    spade: SpadeConfig = field(default_factory=SpadeConfig)
    dissimilarity: DissimilarityConfig = field(default_factory=DissimilarityConfig)
    perceptual_vgg_width: float = 1.0  # VGG19 width of the perceptual difference
    # V -> 1 - exp(-V / perceptual_scale): a fixed, monotone map to [0, 1).
    perceptual_scale: float = 1.0
    # Weights of (dissimilarity, entropy, perceptual difference, distance).
    ensemble_weights: tuple[float, float, float, float] = (0.75, 0.25, 0.0, 0.0)

    def to_dict(self) -> dict:
        """Plain-JSON form, as stored in a weights manifest."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PipelineConfig:
        """Inverse of ``to_dict``; unknown keys are an error."""
        data = dict(data)
        nested = {"icnet": ICNetConfig, "spade": SpadeConfig, "dissimilarity": DissimilarityConfig}
        for key, sub_cls in nested.items():
            if key in data:
                data[key] = sub_cls(**_tuples(data[key]))
        return cls(**_tuples(data))

    def replace(self, **changes) -> PipelineConfig:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def without_calibration(self) -> PipelineConfig:
        """Copy with the values set after training (perceptual scale, ensemble weights) at
        their defaults: two models whose copies are equal have interchangeable parts."""
        defaults = PipelineConfig(preset=self.preset)
        return self.replace(
            perceptual_scale=defaults.perceptual_scale, ensemble_weights=defaults.ensemble_weights
        )


def _tuples(data: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


PRESETS: dict[str, PipelineConfig] = {
    # The paper's "Light" pipeline: ICNet-R50, SPADE ngf 64, full-width VGG16 / VGG19.
    "light": PipelineConfig(preset="light"),
    # Slim widths and sizes for CPUs and small GPUs (see README for the measured rate).
    "edge": PipelineConfig(
        preset="edge",
        segmentation_size=(256, 512),
        synthesis_size=(128, 256),
        icnet=ICNetConfig(base_width=16, blocks=(1, 1, 2, 1), light_width=8, fusion_width=32),
        spade=SpadeConfig(ngf=8, num_upsampling_layers="normal", spade_hidden=16),
        dissimilarity=DissimilarityConfig(
            vgg_width=0.125,
            semantic_widths=(8, 16, 32, 64),
            prior_widths=(8, 16, 32, 64),
            fusion_widths=(8, 16, 32, 64),
            spade_hidden=16,
        ),
        perceptual_vgg_width=0.125,
    ),
}


def get_preset(name: str) -> PipelineConfig:
    """Return a preset by name, with a clear error for unknown names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
