"""Normalisation layers: SPADE and spectral-norm helpers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm

PARAM_FREE_NORMS = ("instance", "batch")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al., CVPR 2019).

    ``x`` is normalised without affine parameters (``param_free_norm``: "instance", or
    "batch": batch statistics in training, running statistics in eval mode) and then modulated
    as ``x * (1 + gamma) + beta``; ``gamma`` and ``beta`` are predicted per pixel from the label
    map (nearest-resized to ``x``) by a shared 3x3 conv with ``hidden`` channels and ReLU,
    followed by one 3x3 conv each.
    """

    def __init__(
        self,
        norm_channels: int,
        label_channels: int,
        hidden: int = 128,
        param_free_norm: str = "instance",
    ) -> None:
        super().__init__()
        for name, value in (
            ("norm_channels", norm_channels),
            ("label_channels", label_channels),
            ("hidden", hidden),
        ):
            if value < 1:
                raise ValueError(f"SPADE {name} must be positive, got {value}")
        self.norm_channels = norm_channels
        self.label_channels = label_channels
        if param_free_norm not in PARAM_FREE_NORMS:
            raise ValueError(
                f"SPADE param_free_norm must be one of {PARAM_FREE_NORMS}, got {param_free_norm!r}"
            )
        self.normalize = (
            nn.InstanceNorm2d(norm_channels, affine=False)
            if param_free_norm == "instance"
            else nn.BatchNorm2d(norm_channels, affine=False)
        )
        self.shared = nn.Sequential(
            nn.Conv2d(label_channels, hidden, kernel_size=3, padding=1), nn.ReLU()
        )
        self.gamma = nn.Conv2d(hidden, norm_channels, kernel_size=3, padding=1)
        self.beta = nn.Conv2d(hidden, norm_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (N, norm_channels, h, w) and modulate it by ``label`` (N, L, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.norm_channels:
            raise ValueError(
                f"SPADE expects features (N, {self.norm_channels}, h, w), got {tuple(x.shape)}"
            )
        if label.dim() != 4 or label.shape[1] != self.label_channels:
            raise ValueError(
                f"SPADE expects a label map (N, {self.label_channels}, H, W), "
                f"got {tuple(label.shape)}"
            )
        label = F.interpolate(label, size=x.shape[-2:], mode="nearest")
        features = self.shared(label)
        return self.normalize(x) * (1 + self.gamma(features)) + self.beta(features)


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Put spectral norm on the weight of every Conv2d / Linear in ``module`` (in place).

    Layers inside a :class:`SPADE` (its gamma/beta branch) stay plain, as in SPADE.
    Layers that are already parametrised are left as they are. Returns ``module``.
    """
    inside_spade = {
        id(inner)
        for outer in module.modules()
        if isinstance(outer, SPADE)
        for inner in outer.modules()
    }
    for layer in list(module.modules()):
        if (
            isinstance(layer, (nn.Conv2d, nn.Linear))
            and id(layer) not in inside_spade
            and not parametrize.is_parametrized(layer, "weight")
        ):
            spectral_norm(layer)
    return module


def remove_spectral_norm(module: nn.Module) -> nn.Module:
    """Bake spectral norm into plain weights everywhere in ``module`` (in place).

    Each weight becomes the normalised weight that eval mode uses (stored power-iteration
    vectors, no further iteration), so outputs in eval mode are unchanged and exporters see
    ordinary layers. Returns ``module``.
    """
    with torch.no_grad():
        for layer in list(module.modules()):
            if not parametrize.is_parametrized(layer, "weight"):
                continue
            parametrizations = layer.parametrizations["weight"]
            if not all(isinstance(p, _SpectralNorm) for p in parametrizations):
                raise ValueError(
                    f"{type(layer).__name__} has weight parametrisations other than spectral "
                    "norm; refusing to bake them"
                )
            parametrizations.eval()  # no power iteration while computing the baked weight
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return module
