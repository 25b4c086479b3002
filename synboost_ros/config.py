"""Model presets: network widths, stage input sizes, input normalisation, ensemble weights."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from synboost_ros.classes import NUM_CLASSES

Size = tuple[int, int]  # (height, width)
# Weight-file parts of a model (``SynBoostModel``), in pipeline order.
MODEL_PARTS = ("segmentation", "synthesis", "perceptual", "dissimilarity")
# The inference stages, one ONNX graph / engine each (``stages.py``).
STAGE_NAMES = ("segmentation", "synthesis", "dissimilarity")
# The ``PipelineConfig`` fields that belong to one part: they travel with it when parts of
# different models are combined (``synboost weights combine``). The remaining fields (preset,
# classes, stage sizes) must agree; the ensemble weights belong to the whole model.
PART_CONFIG_FIELDS = {
    "segmentation": ("icnet", "segmentation_normalization"),
    "synthesis": ("spade",),
    "perceptual": (
        "perceptual_backbone",
        "perceptual_vgg_width",
        "perceptual_normalization",
        "perceptual_scale",
    ),
    "dissimilarity": ("dissimilarity", "dissimilarity_image_normalization"),
}

CHANNEL_ORDERS = ("rgb", "bgr")
# Feature networks of the perceptual difference (``PipelineConfig.perceptual_backbone``).
PERCEPTUAL_BACKBONES = ("vgg19", "efficientnet_lite0")


@dataclass(frozen=True)
class InputNormalization:
    """The input a network's weights expect, made from an RGB image x in [0, 1].

    The channels are put in ``channel_order``, then each becomes (x * scale - mean) / std, with
    ``mean`` and ``std`` given in that channel order and scale (scale 1: input in [0, 1];
    scale 255: input in 0-255). Example: BGR 0-255 mean-subtracted input is
    ``InputNormalization("bgr", 255.0, (104.0, 116.7, 122.7), (1.0, 1.0, 1.0))``.
    """

    channel_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"channel order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}"
            )
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"input scale must be positive, got {self.scale}")
        if len(self.mean) != 3 or not all(math.isfinite(m) for m in self.mean):
            raise ValueError(f"mean must be three finite numbers, got {self.mean}")
        if len(self.std) != 3 or not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"std must be three positive numbers, got {self.std}")


# torchvision's ImageNet weights (VGG, ResNet): RGB in [0, 1], ImageNet mean and std.
IMAGENET_NORMALIZATION = InputNormalization(
    channel_order="rgb", scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)
# EfficientNet-Lite0's ImageNet weights (nn/pretrained.py): (x / 255 - 0.5) / 0.5, RGB.
LITE0_NORMALIZATION = InputNormalization(
    channel_order="rgb", scale=1.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
)
# The public Cityscapes ICNet (lxtGH/Fast_Seg, trained with ``--rgb 0``): BGR on the 0-255
# scale minus the mean of its scripts (``val.py``), not divided.
FAST_SEG_BGR_NORMALIZATION = InputNormalization(
    channel_order="bgr",
    scale=255.0,
    mean=(104.00698793, 116.66876762, 122.67891434),
    std=(1.0, 1.0, 1.0),
)

# Layouts of the ICNet (``ICNetConfig.layout``): this package's compact one (nn/icnet.py),
# the layout of the public Cityscapes checkpoint (nn/icnet_psp.py) and the compact cascade
# with an EfficientNet-Lite0 trunk (nn/icnet_lite0.py).
ICNET_LAYOUTS = ("compact", "psp", "lite0")


@dataclass(frozen=True)
class ICNetConfig:
    """ICNet widths: a dilated ResNet-50-style deep branch plus two light branches."""

    base_width: int = 64  # stem / first bottleneck width of the deep branch (ResNet-50: 64)
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)  # bottlenecks per ResNet stage
    light_width: int = 32  # first conv width of the full-resolution light branch
    fusion_width: int = 128  # channels of the cascade feature fusion outputs
    # "compact" (nn/icnet.py) or "psp" (nn/icnet_psp.py: the layout of lxtGH/Fast_Seg's
    # icnet_final.pth: deep stem, PSPNet pyramid pooling head, 1x1 branch projections,
    # align_corners resizes); the widths above apply to both. "lite0" (nn/icnet_lite0.py):
    # an EfficientNet-Lite0 trunk in place of the ResNet (``blocks`` unused).
    layout: str = "compact"


@dataclass(frozen=True)
class SpadeConfig:
    """SPADE generator (no VAE encoder)."""

    ngf: int = 64
    num_upsampling_layers: str = "more"  # "normal" | "more" | "most"
    spade_hidden: int = 128
    # SPADE's parameter-free normalisation: "instance", or "batch" (running statistics at
    # inference; NVlabs SPADE's sync batch norm, which is plain batch norm in eval mode).
    param_free_norm: str = "instance"
    # Generator input (nn/label_maps.py): "train_ids", the one-hot trainIds; or
    # "label_ids_edges", the one-hot of the 35 Cityscapes labelIds plus an instance-edge
    # channel made from the class boundaries (NVlabs SPADE's Cityscapes generator, fed as
    # SynBoost feeds it).
    label_input: str = "train_ids"


DISSIMILARITY_ENCODERS = ("vgg16", "efficientnet_lite0")


@dataclass(frozen=True)
class DissimilarityConfig:
    """Dissimilarity network widths (the reference model uses multiplier 1.0)."""

    vgg_width: float = 1.0  # VGG16 image encoder width multiplier
    semantic_widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    prior_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    fusion_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    spade_hidden: int = 128
    # Decoder output widths per level, finest first; () = fusion_widths shifted one level
    # (SynBoost's released net: (64, 128, 256, 256)).
    decoder_widths: tuple[int, ...] = ()
    # Real/synthesis feature correlation over channels: "mean", or "sum" (SynBoost's).
    correlation: str = "mean"
    # Image encoder (``DISSIMILARITY_ENCODERS``): "vgg16", or "efficientnet_lite0" (its taps
    # projected to the VGG16 tap widths; pair it with ``LITE0_NORMALIZATION``).
    encoder: str = "vgg16"


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
    # Feature network of the perceptual difference, one of PERCEPTUAL_BACKBONES: "vgg19" (the
    # paper's) or "efficientnet_lite0" (pretrained ImageNet trunk; give it
    # LITE0_NORMALIZATION). ``synboost weights calibrate --perceptual-backbone``.
    perceptual_backbone: str = "vgg19"
    perceptual_vgg_width: float = 1.0  # VGG19 width of the perceptual difference
    # Input normalisation of the networks that read images: the ICNet, the dissimilarity
    # network's VGG16 image encoder (camera and synthesized image), the perceptual
    # difference's backbone (the SPADE training's VGG loss shares a full-width VGG19's weights).
    segmentation_normalization: InputNormalization = IMAGENET_NORMALIZATION
    dissimilarity_image_normalization: InputNormalization = IMAGENET_NORMALIZATION
    perceptual_normalization: InputNormalization = IMAGENET_NORMALIZATION
    # V -> 1 - exp(-V / perceptual_scale): a fixed, monotone map to [0, 1).
    perceptual_scale: float = 1.0
    # Weights of (dissimilarity, entropy, perceptual difference, distance).
    ensemble_weights: tuple[float, float, float, float] = (0.75, 0.25, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.perceptual_backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(
                f"perceptual backbone must be one of {PERCEPTUAL_BACKBONES}, "
                f"got {self.perceptual_backbone!r}"
            )

    def to_dict(self) -> dict:
        """Plain-JSON form, as stored in a weights manifest."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PipelineConfig:
        """Inverse of ``to_dict``; unknown keys are an error, missing ones take their defaults
        (manifests written before the normalisation fields read as ImageNet RGB, those before
        ``perceptual_backbone`` as VGG19)."""
        data = dict(data)
        nested = {
            "icnet": ICNetConfig,
            "spade": SpadeConfig,
            "dissimilarity": DissimilarityConfig,
            "segmentation_normalization": InputNormalization,
            "dissimilarity_image_normalization": InputNormalization,
            "perceptual_normalization": InputNormalization,
        }
        for key, sub_cls in nested.items():
            if key in data:
                data[key] = sub_cls(**_tuples(data[key]))
        return cls(**_tuples(data))

    def replace(self, **changes) -> PipelineConfig:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def with_part_of(self, part: str, other: PipelineConfig) -> PipelineConfig:
        """Copy with the fields of ``part`` (``PART_CONFIG_FIELDS``) taken from ``other``;
        ValueError when the two disagree on a field no part owns."""
        owned = {name for fields in PART_CONFIG_FIELDS.values() for name in fields}
        shared = [
            f.name
            for f in dataclasses.fields(self)
            if f.name not in owned and f.name != "ensemble_weights"
        ]
        differing = [name for name in shared if getattr(self, name) != getattr(other, name)]
        if differing:
            raise ValueError(f"the two configurations differ in {', '.join(differing)}")
        return self.replace(**{name: getattr(other, name) for name in PART_CONFIG_FIELDS[part]})


def _tuples(data: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


PRESETS: dict[str, PipelineConfig] = {
    # The paper's "Light" pipeline: ICNet-R50, SPADE ngf 64, full-width VGG16 / VGG19, in the
    # layouts of the public Cityscapes checkpoints (``synboost weights import``).
    "light": PipelineConfig(
        preset="light",
        icnet=ICNetConfig(layout="psp"),
        spade=SpadeConfig(param_free_norm="batch", label_input="label_ids_edges"),
        dissimilarity=DissimilarityConfig(decoder_widths=(64, 128, 256, 256), correlation="sum"),
        segmentation_normalization=FAST_SEG_BGR_NORMALIZATION,
    ),
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


def with_sizes(config: PipelineConfig, seg: Size | None, syn: Size | None) -> PipelineConfig:
    """Override the stage input sizes where given."""
    changes = {}
    if seg:
        changes["segmentation_size"] = tuple(seg)
    if syn:
        changes["synthesis_size"] = tuple(syn)
    return config.replace(**changes) if changes else config
