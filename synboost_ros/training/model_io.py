"""Where a training run starts from and how its result is written.

Every run starts from a complete weights folder (``--init-weights``) or from random weights for
a preset, trains one part, and writes a new complete weights folder, so the stages chain:
``seg`` -> ``synth`` -> ``dissim`` -> ``ensemble``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synboost_ros.config import PipelineConfig, get_preset, with_sizes
from synboost_ros.manifest import ModelLoadError
from synboost_ros.model import SynBoostModel
from synboost_ros.model_loading import random_model, rebuilt_model
from synboost_ros.nn.dissimilarity import DissimilarityNet
from synboost_ros.options import DEFAULT_PRESET
from synboost_ros.training.options import TrainOptions
from synboost_ros.training.provenance import extend_provenance
from synboost_ros.weights import load_model, load_weights, save_weights

# Provenance flag of folders whose dissimilarity net was trained without uncertainty maps.
USES_UNCERTAINTY_KEY = "dissimilarity_uses_uncertainty"


@dataclass
class StartingPoint:
    """The model a run starts from and the provenance it inherits."""

    model: SynBoostModel
    source: str  # weights folder, or "random (seed S)"
    provenance: dict[str, Any] = field(default_factory=dict)


def starting_model(options: TrainOptions) -> StartingPoint:
    """Load ``options.init_weights`` (its preset must match ``options.preset`` when given) or
    random weights. Stage sizes may be overridden: no weight depends on them.
    """
    preset, init_weights, seed = options.preset, options.init_weights, options.seed
    segmentation_size, synthesis_size = options.segmentation_size, options.synthesis_size
    if init_weights is None:
        config = with_sizes(get_preset(preset or DEFAULT_PRESET), segmentation_size, synthesis_size)
        return StartingPoint(random_model(config, seed), f"random (seed {seed})")
    model, manifest = load_model(init_weights, expected_preset=preset)
    if manifest.provenance.get(USES_UNCERTAINTY_KEY) is False:
        raise ModelLoadError(
            f"{init_weights} holds an ablation dissimilarity net without uncertainty maps; "
            "start from a folder of the full method"
        )
    model = rebuilt_model(model, with_sizes(manifest.config, segmentation_size, synthesis_size))
    return StartingPoint(model, str(init_weights), dict(manifest.provenance))


def fresh_dissimilarity_net(
    config: PipelineConfig, use_uncertainty: bool, seed: int
) -> DissimilarityNet:
    """A randomly initialised dissimilarity net (seeded, global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DissimilarityNet(config.num_classes, config.dissimilarity, use_uncertainty)


def save_trained_model(
    model: SynBoostModel,
    out: str | Path,
    start: StartingPoint,
    entry: dict[str, Any],
    uses_uncertainty: bool = True,
) -> Path:
    """Write a complete weights folder with the inherited provenance plus ``entry``."""
    provenance = extend_provenance(start.provenance, {**entry, "init_weights": start.source})
    if uses_uncertainty:
        provenance.pop(USES_UNCERTAINTY_KEY, None)
    else:
        provenance[USES_UNCERTAINTY_KEY] = False
    return save_weights(model, out, provenance)


def load_dissimilarity_net(path: str | Path) -> tuple[DissimilarityNet, PipelineConfig]:
    """The dissimilarity net of a weights folder, with or without uncertainty maps."""
    manifest, states = load_weights(path, parts=("dissimilarity",))
    uses_uncertainty = manifest.provenance.get(USES_UNCERTAINTY_KEY, True) is not False
    config = manifest.config
    net = DissimilarityNet(config.num_classes, config.dissimilarity, uses_uncertainty)
    try:
        net.load_state_dict(states["dissimilarity"], strict=True)
    except RuntimeError as error:
        raise ModelLoadError(
            f"dissimilarity weights in {path} do not fit a net with use_uncertainty="
            f"{uses_uncertainty}: {str(error).splitlines()[0]}"
        ) from None
    return net.eval(), config
