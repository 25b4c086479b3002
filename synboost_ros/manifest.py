"""Weights manifests (``manifest.json``), read without torch.

A manifest holds ``format`` (the version), ``classes`` (names and colours), ``config`` (the
full ``PipelineConfig``), ``files`` (each part file's name, size and sha256) and
``provenance`` (how the weights were made); ``weights.py`` writes and loads the part files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from synboost_ros.classes import CLASS_NAMES, PALETTE
from synboost_ros.config import MODEL_PARTS, PipelineConfig

MANIFEST_NAME = "manifest.json"
FORMAT = "synboost_ros.weights/1"


# What to do about a damaged weights folder, in this project (nothing is downloaded).
WEIGHTS_REMEDY = (
    "shipped weights: restore them with `git checkout models/` (a ROS install: rebuild or "
    "reinstall the package); weights you trained: copy the folder again from where "
    "`synboost train` wrote it, or train them again"
)


class ModelLoadError(RuntimeError):
    """A weights file is missing, corrupt, tampered with or made for another model."""


class WeightsNotFoundError(ModelLoadError):
    """No weights where they were looked for; the caller adds how to name others in its own
    terms (command-line flags, ROS parameters)."""


@dataclass
class Manifest:
    """Contents of a weights manifest."""

    config: PipelineConfig
    files: dict[str, dict] = field(default_factory=dict)  # part -> {path, sha256, bytes}
    provenance: dict = field(default_factory=dict)

    @property
    def preset(self) -> str:
        """Name of the preset these weights belong to."""
        return self.config.preset

    def weights_identity(self) -> dict:
        """The identity a model loaded from these weights remembers: each part file's sha256."""
        return {"sha256": {part: self.files[part]["sha256"] for part in MODEL_PARTS}}

    def to_json(self) -> dict:
        """JSON form written to disk."""
        return {
            "format": FORMAT,
            "classes": [
                {"name": name, "color": [int(c) for c in PALETTE[i]]}
                for i, name in enumerate(CLASS_NAMES[: self.config.num_classes])
            ],
            "config": self.config.to_dict(),
            "files": self.files,
            "provenance": self.provenance,
        }


def resolve_manifest_path(path: str | os.PathLike) -> Path:
    """Accept a manifest file or a folder holding ``manifest.json``."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def read_manifest(path: str | os.PathLike, expected_preset: str | None = None) -> Manifest:
    """Parse and validate a manifest; errors name the file and say what is wrong. Another
    preset's weights than ``expected_preset`` (when given) are refused."""
    manifest_path = resolve_manifest_path(path)
    if not manifest_path.is_file():
        raise WeightsNotFoundError(
            f"weights manifest {manifest_path} not found: give an existing weights folder or its "
            "manifest.json, or ask for random weights"
        )
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        config = PipelineConfig.from_dict(data["config"])
        files = data["files"]
        missing = [part for part in MODEL_PARTS if part not in files]
        if missing:
            raise ValueError(f"no file listed for parts {missing}")
    except (ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"weights manifest {manifest_path} is invalid: {error}") from None
    if expected_preset is not None and config.preset != expected_preset:
        raise ModelLoadError(
            f"weights {manifest_path} are for preset {config.preset!r}, not {expected_preset!r}: "
            f"choose preset {config.preset!r} or weights trained for {expected_preset!r}"
        )
    return Manifest(config=config, files=files, provenance=data.get("provenance", {}))
