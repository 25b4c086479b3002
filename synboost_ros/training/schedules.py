"""Learning-rate schedules as multiplicative factors for ``torch.optim.lr_scheduler.LambdaLR``."""

from __future__ import annotations

from collections.abc import Callable

import torch

POLY_POWER = 0.9


def poly_factor(total_steps: int, power: float = POLY_POWER) -> Callable[[int], float]:
    """Poly decay (ICNet / PSPNet): factor (1 - step / total_steps) ** power."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}")

    def factor(step: int) -> float:
        return max(0.0, 1.0 - step / total_steps) ** power

    return factor


def linear_decay_factor(total_steps: int, decay_start: int) -> Callable[[int], float]:
    """Constant factor 1 until ``decay_start``, then linear to 0 at ``total_steps`` (SPADE)."""
    if not 0 <= decay_start < total_steps:
        raise ValueError(f"need 0 <= decay_start < total_steps, got {decay_start}, {total_steps}")

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / (total_steps - decay_start))

    return factor


def lambda_scheduler(
    optimizer: torch.optim.Optimizer, factor: Callable[[int], float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR stepped once per training step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
