"""ONNX export of the three stages with fixed shapes, and a content-keyed graph cache.

``write_graph_folder`` writes a graph folder (``graphs.py``: the stage graphs, their sha256 and
what they were exported from); ``synboost export onnx`` writes one, e.g. next to a weights
manifest, where the onnxruntime backend runs it without torch. The cache holds one graph folder
per model fingerprint. Before use every graph is checked against its recorded sha256;
a folder with a corrupt, truncated or replaced graph, a symbolic link (never followed) or no
checksums is exported again, with one log line. An unwritable cache folder falls back to
``files.fallback_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from synboost_ros.files import atomic_write_text, fallback_dir, file_sha256, writable_error
from synboost_ros.graphs import (
    CHECKSUMS_NAME,
    SOURCE_NAME,
    cache_problem,
    default_cache_dir,
    graph_paths,
    graph_source,
)
from synboost_ros.model import SynBoostModel, state_dict_sha256
from synboost_ros.stage_io import stage_specs
from synboost_ros.stages import STAGE_NAMES, build_stages

OPSET = 17
# Bump when the exported graphs or the fingerprint's form change for the same weights
# (invalidates caches). 2: tensors hashed by ``state_dict_sha256``.
EXPORT_REVISION = 2

logger = logging.getLogger(__name__)


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


def write_graph_folder(model: SynBoostModel, folder: str | os.PathLike) -> dict[str, Path]:
    """Export the stage graphs into ``folder`` with what they were exported from
    (``source.json``) and their sha256 (``sha256.json``); return the graph paths."""
    return _export_with_checksums(model, folder, graph_source(model.config, model.weights_identity))


def _export_with_checksums(
    model: SynBoostModel, folder: str | os.PathLike, source: dict | None = None
) -> dict[str, Path]:
    """Export the stage graphs into ``folder``, write ``source`` (when given), and record the
    graphs' sha256 last: a folder left half-written never verifies."""
    exported = export_onnx(model, folder)
    if source is not None:
        text = json.dumps(source, indent=2, sort_keys=True) + "\n"
        atomic_write_text(Path(folder) / SOURCE_NAME, text)
    sums = {path.name: file_sha256(path) for path in exported.values()}
    text = json.dumps(sums, indent=2, sort_keys=True) + "\n"
    atomic_write_text(Path(folder) / CHECKSUMS_NAME, text)
    return exported


def cached_onnx(
    model: SynBoostModel,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
) -> dict[str, Path]:
    """Return the verified stage graphs for ``model``, exporting them once per fingerprint
    (``model_fingerprint(model)``, computed here unless the caller has it)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir() / "onnx"
    name = (fingerprint or model_fingerprint(model))[:32]
    if cache_problem(root / name) is None:  # also a read-only cache, e.g. an installed one
        return graph_paths(root / name)
    error = writable_error(root)
    if error is not None:
        fallback = fallback_dir("onnx")
        logger.warning("ONNX cache %s is not writable (%s); using %s", root, error, fallback)
        root = fallback
    return _verified_or_exported(model, root / name)


def _verified_or_exported(model: SynBoostModel, target: Path) -> dict[str, Path]:
    """The graphs in ``target`` if they verify; else export them there (one log line when a
    bad cache is replaced)."""
    problem = cache_problem(target)
    if problem is None:
        return graph_paths(target)
    if problem != "missing":
        logger.warning("cached ONNX graphs %s: %s; exporting them again", target, problem)
        _discard(target)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".export-"))
    try:
        _export_with_checksums(model, staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same export first
            if cache_problem(target) is not None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return graph_paths(target)


def _discard(path: Path) -> None:
    """Remove a cache entry; a symbolic link is removed itself, never what it points to."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _example_input(
    name: str, dtype: type, shape: tuple[int, ...], model: SynBoostModel
) -> torch.Tensor:
    if name == "ensemble_weights":
        return torch.tensor(model.config.ensemble_weights, dtype=torch.float32)
    if dtype is np.int32:
        return torch.zeros(shape, dtype=torch.int32)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))
