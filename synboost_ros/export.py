"""ONNX export of the three stages with fixed shapes, and a content-keyed graph cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from synboost_ros.model import SynBoostModel, state_dict_sha256
from synboost_ros.stages import STAGE_NAMES, build_stages, stage_specs

OPSET = 17
# Bump when the exported graphs or the fingerprint's form change for the same weights
# (invalidates caches). 2: tensors hashed by ``state_dict_sha256``.
EXPORT_REVISION = 2


def model_fingerprint(model: SynBoostModel) -> str:
    """sha256 over configuration, exporter versions and the weights' identity.

    The identity is what the model remembers of its weights (``weights_identity``: the part
    files' sha256s, or a random seed), so loaded weights are not read again; a model without
    one (built or trained in memory) has every tensor hashed instead.
    """
    identity = model.weights_identity
    header = {
        "config": model.config.to_dict(),
        "torch": torch.__version__,
        "opset": OPSET,
        "revision": EXPORT_REVISION,
        "weights": identity if identity is not None else {"tensors": state_dict_sha256(model)},
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode()).hexdigest()


def export_onnx(model: SynBoostModel, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``<stage>.onnx`` for each stage into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    specs = stage_specs(model.config)
    # eval mode on the stage modules too: the exporter restores their mode after the export,
    # which would otherwise switch the shared networks to training mode
    stages = {name: stage.eval() for name, stage in build_stages(model).items()}
    paths: dict[str, Path] = {}
    for name in STAGE_NAMES:
        spec = specs[name]
        example = tuple(_example_input(t.name, t.dtype, t.shape, model) for t in spec.inputs)
        path = out_dir / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                stages[name],
                example,
                str(path),
                input_names=[t.name for t in spec.inputs],
                output_names=[t.name for t in spec.outputs],
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
        paths[name] = path
    return paths


def cached_onnx(
    model: SynBoostModel,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
) -> dict[str, Path]:
    """Return the stage graphs for ``model``, exporting them once per fingerprint
    (``model_fingerprint(model)``, computed here unless the caller has it)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir() / "onnx"
    target = root / (fingerprint or model_fingerprint(model))[:32]
    paths = {name: target / f"{name}.onnx" for name in STAGE_NAMES}
    if all(p.is_file() for p in paths.values()):
        return paths
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".export-"))
    except OSError as error:
        warnings.warn(
            f"ONNX cache {root} is not writable ({error}); exporting to a temporary folder",
            stacklevel=2,
        )
        return export_onnx(model, tempfile.mkdtemp(prefix="synboost-onnx-"))
    try:
        export_onnx(model, staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same export first
            if not all(p.is_file() for p in paths.values()):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def default_cache_dir() -> Path:
    """``$SYNBOOST_CACHE_DIR``, else ``synboost_ros`` under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get("SYNBOOST_CACHE_DIR"):
        return Path(os.environ["SYNBOOST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synboost_ros"


def _example_input(
    name: str, dtype: type, shape: tuple[int, ...], model: SynBoostModel
) -> torch.Tensor:
    if name == "ensemble_weights":
        return torch.tensor(model.config.ensemble_weights, dtype=torch.float32)
    if dtype is np.int32:
        return torch.zeros(shape, dtype=torch.int32)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))
