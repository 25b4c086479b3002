"""Folders of ONNX stage graphs, checked without torch.

A graph folder holds ``<stage>.onnx`` for each stage and ``sha256.json`` (the graphs' sha256
recorded when they were exported); every graph is checked against it before use. Two kinds of
folder exist: the export cache (``export.cached_onnx``, one folder per model fingerprint,
needs torch) and the graphs kept next to a weights manifest (``<weights>/onnx/``, shipped with
the default weights, written by ``synboost export onnx``). The latter also hold
``source.json``, the configuration and the weights' identity they were exported from: the
onnxruntime backend runs them without torch when these match the weights and the sizes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from synboost_ros.config import STAGE_NAMES, PipelineConfig
from synboost_ros.files import UntrustedFileError, file_problem, read_trusted

CHECKSUMS_NAME = "sha256.json"
SOURCE_NAME = "source.json"
# The graph folder next to a weights manifest.
WEIGHTS_GRAPHS_DIR = "onnx"


def graph_paths(folder: Path) -> dict[str, Path]:
    """Where the stage graphs of a graph folder are."""
    return {stage: folder / f"{stage}.onnx" for stage in STAGE_NAMES}


def graph_source(config: PipelineConfig, weights_identity: dict | None) -> dict:
    """What ``source.json`` records: the graphs' configuration and weights identity, in their
    JSON form (lists for tuples)."""
    return json.loads(json.dumps({"config": config.to_dict(), "weights": weights_identity}))


def _read_json(path: Path) -> tuple[object, str | None]:
    """A JSON file's content, or why it cannot be read."""
    try:
        return json.loads(read_trusted(path)), None
    except FileNotFoundError:
        return None, "is missing"
    except (OSError, ValueError) as error:
        return None, str(error) if isinstance(error, UntrustedFileError) else "is unreadable"


def cache_problem(folder: Path) -> str | None:
    """Why the graphs in ``folder`` cannot be used, or None: "missing" when there is no such
    folder, else what is wrong (e.g. "segmentation.onnx has sha256 ..., not the recorded ...")."""
    if not os.path.lexists(folder):
        return "missing"
    if folder.is_symlink():
        return "is a symbolic link (not followed)"
    recorded, problem = _read_json(folder / CHECKSUMS_NAME)
    if problem == "is missing":
        return f"has no {CHECKSUMS_NAME} (no checksums recorded)"
    if problem is not None or not isinstance(recorded, dict):
        return f"{CHECKSUMS_NAME} {problem or 'is unreadable'}"
    for path in graph_paths(folder).values():
        problem = file_problem(path, recorded.get(path.name))
        if problem is not None:
            return f"{path.name} {problem}"
    return None


def recorded_sha256(graphs: dict[str, Path]) -> dict[str, str]:
    """Each stage graph's sha256 as its folder's ``sha256.json`` records it, for graphs of
    folders ``cache_problem`` found usable; ValueError when a graph has no recorded sha256."""
    sums = {}
    for stage, path in graphs.items():
        recorded, problem = _read_json(path.parent / CHECKSUMS_NAME)
        value = recorded.get(path.name) if isinstance(recorded, dict) else None
        if not isinstance(value, str):
            raise ValueError(f"{path.parent / CHECKSUMS_NAME} {problem or 'has no ' + path.name}")
        sums[stage] = value
    return sums


def source_problem(folder: Path, source: dict) -> str | None:
    """Why the graphs in ``folder`` are not verified graphs exported from ``source``
    (``graph_source``), or None when they are."""
    problem = cache_problem(folder)
    if problem is not None:
        return problem
    recorded, problem = _read_json(folder / SOURCE_NAME)
    if problem is not None:
        return f"{SOURCE_NAME} {problem}"
    if not isinstance(recorded, dict) or recorded.get("weights") != source["weights"]:
        return "were exported from other weights"
    config = _complete_config(recorded.get("config"))
    if config != source["config"]:
        differing = sorted(
            key
            for key in set(source["config"]) | set(config)
            if config.get(key) != source["config"].get(key)
        )
        return f"were exported for another configuration ({', '.join(differing)} differ)"
    return None


def _complete_config(recorded: object) -> dict:
    """A recorded configuration with the fields added since at their defaults (as manifests
    are read), in ``graph_source``'s form; as recorded when it is no configuration."""
    if not isinstance(recorded, dict):
        return {}
    try:
        config = PipelineConfig.from_dict(recorded)
    except (TypeError, ValueError):
        return recorded
    return json.loads(json.dumps(config.to_dict()))


def default_cache_dir() -> Path:
    """``$SYNBOOST_CACHE_DIR``, else ``synboost_ros`` under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get("SYNBOOST_CACHE_DIR"):
        return Path(os.environ["SYNBOOST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synboost_ros"
