"""Resumable training checkpoints readable with ``torch.load(weights_only=True)``.

A checkpoint holds the step, the state dicts of the trained modules, optimizers, LR schedulers
and the gradient scaler, the Python / NumPy / torch random states (as tensors and plain
numbers only) and a dict of plain extra values. Nothing is ever unpickled on loading.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synboost_ros.files import atomic_write
from synboost_ros.training.runtime import Runtime

CHECKPOINT_FORMAT = "synboost_ros.checkpoint/1"


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA random states as tensors and plain numbers."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python_version": int(py_version),
        "python_state": torch.tensor(py_state, dtype=torch.int64),
        "python_gauss": py_gauss,
        "numpy_name": str(np_name),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of ``capture_rng_state``."""
    random.setstate(
        (
            state["python_version"],
            tuple(int(v) for v in state["python_state"].tolist()),
            state["python_gauss"],
        )
    )
    np.random.set_state(
        (
            state["numpy_name"],
            state["numpy_keys"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | os.PathLike,
    step: int,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, Any],
    scaler: torch.amp.GradScaler,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the training state atomically (temporary file + rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "format": CHECKPOINT_FORMAT,
        "step": int(step),
        "modules": {name: module.state_dict() for name, module in modules.items()},
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "schedulers": {name: sched.state_dict() for name, sched in schedulers.items()},
        "scaler": scaler.state_dict(),
        "rng": capture_rng_state(),
        "extra": dict(extra or {}),
    }
    atomic_write(path, lambda tmp: torch.save(content, tmp))
    return path


def load_checkpoint(
    path: str | os.PathLike,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, Any],
    scaler: torch.amp.GradScaler,
) -> tuple[int, dict[str, Any]]:
    """Restore everything ``save_checkpoint`` wrote (weights-only load); return (step, extra)."""
    path = Path(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt or foreign files fail in many ways
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    for group, targets in (
        ("modules", modules),
        ("optimizers", optimizers),
        ("schedulers", schedulers),
    ):
        missing = sorted(set(targets) - set(content[group]))
        if missing:
            raise ValueError(f"checkpoint {path} has no {group} entries {missing}")
        for name, target in targets.items():
            target.load_state_dict(content[group][name])
    if content["scaler"]:  # empty when the run was saved without AMP
        scaler.load_state_dict(content["scaler"])
    restore_rng_state(content["rng"])
    return int(content["step"]), dict(content["extra"])


def checkpoint_saver(
    path: str | os.PathLike,
    runtime: Runtime,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, Any],
    scaler: torch.amp.GradScaler,
    extra: Callable[[], Mapping[str, Any]] | None = None,
) -> Callable[[int], None]:
    """A ``checkpoint(step)`` callback: rank 0 writes, every rank waits for it."""

    def checkpoint(step: int) -> None:
        if runtime.is_main:
            values = extra() if extra is not None else None
            save_checkpoint(path, step, modules, optimizers, schedulers, scaler, values)
        runtime.barrier()

    return checkpoint
