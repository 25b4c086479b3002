"""Shared fixtures: a private ONNX cache and small ready-made pipelines."""

from __future__ import annotations

import os
import tempfile
import warnings

import pytest
import torch

# One intra-op thread per test process: on a 2-core machine, thread contention between
# small ops costs far more than the parallelism gains.
torch.set_num_threads(1)

# Graph caches of this test run stay out of the user's ~/.cache.
os.environ.setdefault("SYNBOOST_CACHE_DIR", tempfile.mkdtemp(prefix="synboost-test-cache-"))


@pytest.fixture(scope="session")
def edge_random_model():
    """The edge preset with deterministic random weights."""
    from synboost_ros.config import get_preset
    from synboost_ros.model_loading import random_model

    return random_model(get_preset("edge"))


@pytest.fixture(scope="session")
def torch_pipeline():
    """Edge preset, random weights, torch backend on the CPU."""
    from synboost_ros.pipeline import AnomalyPipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AnomalyPipeline.create("edge", random_weights=True, backend="torch", device="cpu")


@pytest.fixture(scope="session")
def onnx_pipeline():
    """Edge preset, random weights, onnxruntime on the CPU."""
    from synboost_ros.pipeline import AnomalyPipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AnomalyPipeline.create(
            "edge", random_weights=True, backend="onnxruntime", device="cpu"
        )
