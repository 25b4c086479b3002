"""Where the weights shipped in ``models/`` live, for a source checkout or a ROS install."""

from __future__ import annotations

import contextlib
from pathlib import Path

from synboost_ros.manifest import MANIFEST_NAME, WeightsNotFoundError

PACKAGE = "synboost_ros"


def models_dirs() -> list[Path]:
    """Candidate ``models/`` folders: the ament share folder, then the source checkout."""
    candidates = []
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )

        # Without an ament environment ament_index raises OSError (no AMENT_PREFIX_PATH).
        with contextlib.suppress(PackageNotFoundError, OSError):
            candidates.append(Path(get_package_share_directory(PACKAGE)) / "models")
    except ImportError:
        pass
    candidates.append(Path(__file__).resolve().parent.parent / "models")
    return candidates


def default_weights_path(preset: str) -> Path | None:
    """Manifest of the shipped weights of ``preset`` (``models/<preset>/``), if present."""
    for folder in models_dirs():
        manifest = folder / preset / MANIFEST_NAME
        if manifest.is_file():
            return manifest
    return None


def weights_path(preset: str, weights: str | Path | None = None) -> Path:
    """``weights`` when given, else the shipped weights of ``preset``; ``WeightsNotFoundError``
    when there are none."""
    path = Path(weights) if weights else default_weights_path(preset)
    if path is None:
        raise WeightsNotFoundError(
            f"no shipped weights for preset {preset!r} (models/{preset}/manifest.json; "
            "`git checkout models/` restores the shipped ones): give a weights folder or ask "
            "for random weights"
        )
    return path
