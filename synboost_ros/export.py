"""ONNX export of the three stages with fixed shapes, and a content-keyed graph cache.

The cache holds one folder per model fingerprint with the stage graphs and ``sha256.json``, the
graphs' sha256 recorded when they were exported. Before use every graph is checked against it;
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

from synboost_ros.files import (
    UntrustedFileError,
    atomic_write_text,
    fallback_dir,
    file_problem,
    file_sha256,
    read_trusted,
    writable_error,
)
from synboost_ros.model import SynBoostModel, state_dict_sha256
from synboost_ros.stages import STAGE_NAMES, build_stages, stage_specs

OPSET = 17
# Bump when the exported graphs or the fingerprint's form change for the same weights
# (invalidates caches). 2: tensors hashed by ``state_dict_sha256``.
EXPORT_REVISION = 2
CHECKSUMS_NAME = "sha256.json"

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


def graph_paths(folder: Path) -> dict[str, Path]:
    """Where the stage graphs of a cache folder are."""
    return {stage: folder / f"{stage}.onnx" for stage in STAGE_NAMES}


def cache_problem(folder: Path) -> str | None:
    """Why the graphs in ``folder`` cannot be used, or None: "missing" when there is no such
    folder, else what is wrong (e.g. "segmentation.onnx has sha256 ..., not the recorded ...")."""
    if not os.path.lexists(folder):
        return "missing"
    if folder.is_symlink():
        return "is a symbolic link (not followed)"
    try:
        recorded = json.loads(read_trusted(folder / CHECKSUMS_NAME))
    except FileNotFoundError:
        return f"has no {CHECKSUMS_NAME} (no checksums recorded)"
    except (OSError, ValueError) as error:
        reason = str(error) if isinstance(error, UntrustedFileError) else "is unreadable"
        return f"{CHECKSUMS_NAME} {reason}"
    if not isinstance(recorded, dict):
        return f"{CHECKSUMS_NAME} is unreadable"
    for path in graph_paths(folder).values():
        problem = file_problem(path, recorded.get(path.name))
        if problem is not None:
            return f"{path.name} {problem}"
    return None


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
        exported = export_onnx(model, staging)
        sums = {path.name: file_sha256(path) for path in exported.values()}
        atomic_write_text(staging / CHECKSUMS_NAME, json.dumps(sums, indent=2, sort_keys=True))
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
