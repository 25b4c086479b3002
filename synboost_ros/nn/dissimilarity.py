"""SynBoost dissimilarity network: encoders, per-level fusion and a SPADE decoder."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from synboost_ros.config import DISSIMILARITY_ENCODERS, DissimilarityConfig
from synboost_ros.nn.lite0_pyramid import Lite0Pyramid
from synboost_ros.nn.normalization import SPADE
from synboost_ros.nn.vgg import VGGFeatures, scaled_width

VGG_TAPS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # 1, 1/2, 1/4, 1/8
VGG_TAP_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)  # at width multiplier 1
NUM_LEVELS = len(VGG_TAPS)
UNCERTAINTY_CHANNELS = 3  # entropy, perceptual difference, distance


class PyramidEncoder(nn.Module):
    """Four-level encoder: conv7x7 s1, then three conv3x3 s2; ReLU after each.

    Returns features at 1, 1/2, 1/4 and 1/8 of the input size with ``widths`` channels.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        if len(widths) != NUM_LEVELS:
            raise ValueError(f"need {NUM_LEVELS} encoder widths, got {widths}")
        stages = [nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, padding=3), nn.ReLU())]
        for in_ch, out_ch in itertools.pairwise(widths):
            stages.append(
                nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), nn.ReLU())
            )
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the per-level features, finest first."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class SPADESELUBlock(nn.Module):
    """SPADE -> SELU -> conv3x3 -> SPADE -> SELU, keeping the channel count."""

    def __init__(self, channels: int, label_channels: int, hidden: int) -> None:
        super().__init__()
        self.norm_0 = SPADE(channels, label_channels, hidden)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm_1 = SPADE(channels, label_channels, hidden)
        self.activation = nn.SELU()

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` conditioned on the one-hot ``label`` map."""
        x = self.conv(self.activation(self.norm_0(x, label)))
        return self.activation(self.norm_1(x, label))


class DecoderStage(nn.Module):
    """conv3x3 + SELU, SPADE block, then (unless finest) a 2x2 stride-2 transposed conv."""

    def __init__(
        self, in_ch: int, out_ch: int, label_channels: int, hidden: int, upsample: bool
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.SELU())
        self.block = SPADESELUBlock(out_ch, label_channels, hidden)
        self.up = nn.ConvTranspose2d(out_ch, out_ch, 2, stride=2) if upsample else nn.Identity()

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Decode ``x`` and, for coarse stages, double its size."""
        return self.up(self.block(self.conv(x), label))


CORRELATIONS = ("mean", "sum")


def channel_correlation(
    real: torch.Tensor, synth: torch.Tensor, mode: str = "mean"
) -> torch.Tensor:
    """Per-pixel dot product over channels, divided by the channel count for ``mode``
    "mean": (N, 1, h, w)."""
    product = real * synth
    if mode == "sum":
        return product.sum(dim=1, keepdim=True)
    return product.mean(dim=1, keepdim=True)


class DissimilarityNet(nn.Module):
    """Predicts per-pixel anomaly logits from an image and its re-synthesis.

    Channels per level l = 0..3 (sizes 1, 1/2, 1/4, 1/8; V = VGG16 tap widths, 64/128/256/512
    times ``vgg_width``; S, P, F = ``semantic_widths``, ``prior_widths``, ``fusion_widths``):

    - encoders: the image encoder shared by image and synthesis (V[l] each): VGG16 (``vgg``),
      or with ``encoder`` "efficientnet_lite0" an EfficientNet-Lite0 trunk whose taps are
      projected to V[l] (``lite0``, nn/lite0_pyramid.py); semantic encoder on the
      one-hot map (S[l]), uncertainty encoder on the 3 uncertainty maps (P[l], P == F);
    - fusion: 1x1 conv of concat(real, synth, semantic) (2 V[l] + S[l]) -> F[l], multiplied
      by the uncertainty features, then the real/synth correlation appended: F[l] + 1;
    - decoder, coarse to fine, width D[l] = ``decoder_widths[l]`` or, where that is empty,
      F[max(l - 1, 0)]: stage 3 takes F[3] + 1, stage
      l < 3 takes D[l + 1] + F[l] + 1 (upsampled coarser output + fused level); each stage is
      conv3x3 + SELU, a SPADE block (hidden ``spade_hidden``, one-hot conditioned) and, above
      level 0, a 2x2 stride-2 transposed conv;
    - head: 1x1 conv D[0] -> 2 logits at input size (channel 1 = anomaly).

    The correlation channel is the channel mean or sum of real * synth (``correlation``).

    ``use_uncertainty=False`` (the paper's ablation) drops the uncertainty encoder and the
    multiplication.
    """

    def __init__(
        self, num_classes: int, config: DissimilarityConfig, use_uncertainty: bool = True
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        fusion_widths = tuple(config.fusion_widths)
        if len(fusion_widths) != NUM_LEVELS:
            raise ValueError(f"need {NUM_LEVELS} fusion widths, got {fusion_widths}")
        if use_uncertainty and tuple(config.prior_widths) != fusion_widths:
            raise ValueError(
                f"prior_widths {config.prior_widths} must equal fusion_widths {fusion_widths}: "
                "the fused features are multiplied element-wise by the uncertainty features"
            )
        if config.encoder not in DISSIMILARITY_ENCODERS:
            raise ValueError(
                f"encoder must be one of {DISSIMILARITY_ENCODERS}, got {config.encoder!r}"
            )
        if config.correlation not in CORRELATIONS:
            raise ValueError(
                f"correlation must be one of {CORRELATIONS}, got {config.correlation!r}"
            )
        self.num_classes = num_classes
        self.use_uncertainty = use_uncertainty
        self.correlation = config.correlation

        self.vgg: VGGFeatures | None = None
        self.lite0: Lite0Pyramid | None = None
        if config.encoder == "vgg16":
            self.vgg = VGGFeatures(16, VGG_TAPS, config.vgg_width)
        else:
            self.lite0 = Lite0Pyramid(scaled_width(w, config.vgg_width) for w in VGG_TAP_WIDTHS)
        self.semantic_encoder = PyramidEncoder(num_classes, tuple(config.semantic_widths))
        self.prior_encoder = (
            PyramidEncoder(UNCERTAINTY_CHANNELS, fusion_widths) if use_uncertainty else None
        )
        self.fusion = nn.ModuleList(
            nn.Conv2d(2 * vgg_ch + sem_ch, out_ch, kernel_size=1)
            for vgg_ch, sem_ch, out_ch in zip(
                self.image_encoder.tap_channels, config.semantic_widths, fusion_widths, strict=True
            )
        )
        decoder_widths = list(config.decoder_widths) or [
            fusion_widths[max(level - 1, 0)] for level in range(NUM_LEVELS)
        ]
        if len(decoder_widths) != NUM_LEVELS or min(decoder_widths) < 1:
            raise ValueError(
                f"need {NUM_LEVELS} positive decoder widths, got {config.decoder_widths}"
            )
        stages = []
        for level in reversed(range(NUM_LEVELS)):
            in_ch = fusion_widths[level] + 1
            if level < NUM_LEVELS - 1:
                in_ch += decoder_widths[level + 1]
            stages.append(
                DecoderStage(
                    in_ch, decoder_widths[level], num_classes, config.spade_hidden, level > 0
                )
            )
        self.decoder = nn.ModuleList(stages)  # coarsest first
        self.head = nn.Conv2d(decoder_widths[0], 2, kernel_size=1)

    @property
    def image_encoder(self) -> VGGFeatures | Lite0Pyramid:
        """The encoder shared by the image and its synthesis."""
        return self.vgg if self.vgg is not None else self.lite0

    @property
    def trunk(self) -> nn.Module:
        """The part ImageNet weights initialise: the VGG16, or the Lite0 trunk."""
        return self.vgg if self.vgg is not None else self.lite0.trunk

    def forward(
        self,
        image: torch.Tensor,
        synthesized: torch.Tensor,
        semantic_onehot: torch.Tensor,
        uncertainty: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return logits (N, 2, H, W).

        ``image`` and ``synthesized``: (N, 3, H, W), normalised for the image encoder
        (``dissimilarity_image_normalization``); ``semantic_onehot``: (N, num_classes, H, W);
        ``uncertainty``: (N, 3, H, W) in [0, 1] (entropy, perceptual difference, distance), or
        None when the net was built with ``use_uncertainty=False``. H and W must be multiples
        of 8.
        """
        self._check_inputs(image, synthesized, semantic_onehot, uncertainty)
        batch = image.shape[0]
        image_features = self.image_encoder(torch.cat([image, synthesized], dim=0))
        semantic_features = self.semantic_encoder(semantic_onehot)
        prior_features = self.prior_encoder(uncertainty) if self.prior_encoder is not None else None
        fused_levels = []
        for level, fuse in enumerate(self.fusion):
            real, synth = image_features[level][:batch], image_features[level][batch:]
            fused = fuse(torch.cat([real, synth, semantic_features[level]], dim=1))
            if prior_features is not None:
                fused = fused * prior_features[level]
            correlation = channel_correlation(real, synth, self.correlation)
            fused_levels.append(torch.cat([fused, correlation], dim=1))

        x = self.decoder[0](fused_levels[-1], semantic_onehot)
        for stage, fused in zip(self.decoder[1:], reversed(fused_levels[:-1]), strict=True):
            x = stage(torch.cat([x, fused], dim=1), semantic_onehot)
        return self.head(x)

    def _check_inputs(
        self,
        image: torch.Tensor,
        synthesized: torch.Tensor,
        semantic_onehot: torch.Tensor,
        uncertainty: torch.Tensor | None,
    ) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (N, 3, H, W), got {tuple(image.shape)}")
        batch, _, height, width = image.shape
        if height % 8 or width % 8:
            raise ValueError(f"image height and width must be multiples of 8, got {height}x{width}")
        expected = {
            "synthesized": (synthesized, 3),
            "semantic_onehot": (semantic_onehot, self.num_classes),
        }
        if self.use_uncertainty:
            if uncertainty is None:
                raise ValueError("this DissimilarityNet uses uncertainty maps; got None")
            expected["uncertainty"] = (uncertainty, UNCERTAINTY_CHANNELS)
        elif uncertainty is not None:
            raise ValueError("this DissimilarityNet was built with use_uncertainty=False")
        for name, (tensor, channels) in expected.items():
            if tuple(tensor.shape) != (batch, channels, height, width):
                raise ValueError(
                    f"{name} must be ({batch}, {channels}, {height}, {width}), "
                    f"got {tuple(tensor.shape)}"
                )
