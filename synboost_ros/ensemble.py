"""Weighted ensemble of the dissimilarity probability and the uncertainty maps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only tensor operators are used: the checks load without torch
    import torch

# Order of the maps the ensemble weights refer to.
ENSEMBLE_INPUTS = ("dissimilarity", "entropy", "perceptual", "distance")


def validate_weights(weights: Sequence[float]) -> tuple[float, float, float, float]:
    """Check four finite, non-negative weights with a positive sum; return them as a tuple."""
    values = tuple(float(w) for w in weights)
    if len(values) != len(ENSEMBLE_INPUTS):
        raise ValueError(
            f"ensemble weights need {len(ENSEMBLE_INPUTS)} values {ENSEMBLE_INPUTS}, got {values}"
        )
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"ensemble weights must be finite, >= 0 and not all 0, got {values}")
    return values  # type: ignore[return-value]


def weighted_average(maps: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """L1-normalised weighted average of same-shaped maps; ``weights`` has one entry per map."""
    normalized = weights / weights.sum()
    total = maps[0] * normalized[0]
    for index in range(1, len(maps)):
        total = total + maps[index] * normalized[index]
    return total
