"""Tiny model configurations and data sets shared by the training tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from synboost_ros.config import (
    DissimilarityConfig,
    ICNetConfig,
    PipelineConfig,
    SpadeConfig,
    get_preset,
)
from synboost_ros.model_loading import random_model
from synboost_ros.weights import save_weights

# ICNet needs both sides >= 192; the other stages run at 32 x 64.
TINY_CONFIG: PipelineConfig = get_preset("edge").replace(
    segmentation_size=(192, 192),
    synthesis_size=(32, 64),
    icnet=ICNetConfig(base_width=8, blocks=(1, 1, 1, 1), light_width=4, fusion_width=8),
    spade=SpadeConfig(ngf=4, num_upsampling_layers="normal", spade_hidden=8),
    dissimilarity=DissimilarityConfig(
        vgg_width=1 / 16,
        semantic_widths=(4, 4, 8, 8),
        prior_widths=(4, 8, 8, 8),
        fusion_widths=(4, 8, 8, 8),
        spade_hidden=8,
    ),
    perceptual_vgg_width=1 / 16,
)
WORLD_SIZE = (64, 128)


def write_tiny_weights(folder: Path, seed: int = 0) -> Path:
    """A random tiny model saved as a weights folder; returns the folder."""
    save_weights(random_model(TINY_CONFIG, seed), folder, {"origin": "test"})
    return folder


def write_world(folder: Path, n: int, anomalies: bool = False, seed: int = 0) -> Path:
    """A procedural data set of ``n`` 64x128 scenes; returns the folder."""
    from synboost_ros.data.world import generate_world

    split = "val" if anomalies else "train"
    generate_world(folder, n, seed, WORLD_SIZE, anomalies=anomalies, split=split, workers=1)
    return folder


def single_torch_thread() -> Iterator[None]:
    """Fixture body: one intra-op thread while a module runs (tiny nets on a shared CPU run
    much faster without thread contention), then the previous setting again."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
