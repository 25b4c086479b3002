"""Provenance records written into the manifest of every trained weights folder."""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from synboost_ros.training.runtime import Runtime

TRAINING_KEY = "training"  # manifest provenance key: list of entries, oldest first


def git_commit() -> str | None:
    """Commit of the source checkout this package runs from, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def hardware(runtime: Runtime) -> dict[str, Any]:
    """Machine, device and software versions of a run."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "device": str(runtime.device),
        "world_size": runtime.world_size,
        "amp": runtime.amp,
    }
    if runtime.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(runtime.device)
    return info


def training_entry(
    stage: str,
    runtime: Runtime,
    data: str | Path | None,
    seed: int,
    steps: int,
    wall_time_s: float,
    metrics: Mapping[str, Any],
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One provenance entry: what was trained, how, on what and with which result."""
    return {
        "stage": stage,
        "command": shlex.join(sys.argv),
        "data": str(data) if data is not None else None,
        "steps": int(steps),
        "seed": int(seed),
        "wall_time_s": round(float(wall_time_s), 1),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(runtime),
        "git_commit": git_commit(),
        "settings": dict(settings or {}),
        "metrics": dict(metrics),
    }


def settings_record(options: Any) -> dict[str, Any]:
    """A dataclass of options as JSON-ready values (paths as strings)."""
    return {
        name: str(value) if isinstance(value, Path) else value
        for name, value in dataclasses.asdict(options).items()
    }


def extend_provenance(previous: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``previous`` with ``entry`` appended to its training history."""
    provenance = dict(previous)
    provenance[TRAINING_KEY] = [*previous.get(TRAINING_KEY, []), dict(entry)]
    return provenance
