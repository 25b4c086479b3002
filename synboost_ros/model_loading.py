"""Get a model for a preset: shipped or named weights, or random weights when asked."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from synboost_ros.config import PipelineConfig, Size, get_preset, with_sizes
from synboost_ros.model import SynBoostModel
from synboost_ros.shipped import weights_path
from synboost_ros.weights import load_model

RANDOM_WEIGHTS_SEED = 0


def random_model(config: PipelineConfig, seed: int = RANDOM_WEIGHTS_SEED) -> SynBoostModel:
    """A model with deterministic random weights (outputs are meaningless), identified by the
    seed and the configuration they were drawn for."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SynBoostModel(config).eval()
    model.remember_weights({"random_seed": seed, "drawn_for": config.to_dict()})
    return model


def load_or_random_model(
    preset: str,
    weights: str | Path | None = None,
    random_weights: bool = False,
    segmentation_size: Size | None = None,
    synthesis_size: Size | None = None,
) -> SynBoostModel:
    """Load ``weights`` (default: the shipped ones) or build random weights if asked."""
    config = get_preset(preset)
    if random_weights and weights:
        raise ValueError("give either weights or random weights, not both")
    if random_weights:
        warnings.warn(
            "random weights: every output map is meaningless (use for tests and timing only)",
            stacklevel=2,
        )
        return random_model(with_sizes(config, segmentation_size, synthesis_size))
    model, manifest = load_model(weights_path(preset, weights), expected_preset=preset)
    return rebuilt_model(model, with_sizes(manifest.config, segmentation_size, synthesis_size))


def rebuilt_model(model: SynBoostModel, config: PipelineConfig) -> SynBoostModel:
    """The same weights in networks built for ``config``, which may differ in what no weight
    depends on (stage sizes, perceptual scale); ``model`` itself when nothing changes. The
    weights keep their identity."""
    if config == model.config:
        return model
    resized = SynBoostModel(config)
    resized.load_state_dict(model.state_dict(), strict=True)
    identity = model.weights_identity
    if identity is not None:
        resized.remember_weights(identity)
    return resized.eval()
