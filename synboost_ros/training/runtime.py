"""Where and how a training run executes: seeding, device, mixed precision and torchrun (DDP).

Launched by ``torchrun``, the environment holds RANK / WORLD_SIZE / LOCAL_RANK and every
process trains one replica; otherwise there is one process. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from synboost_ros.options import DEVICE_CHOICES


@dataclass(frozen=True)
class Runtime:
    """Device, precision and process-group facts of one training process."""

    device: torch.device
    amp: bool  # float16 autocast + gradient scaling (CUDA only)
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when running under torchrun with more than one process."""
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op without AMP)."""
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaler for float16 training; disabled (pass-through) without AMP."""
        return torch.amp.GradScaler(self.device.type, enabled=self.amp)

    def wrap(self, module: nn.Module) -> nn.Module:
        """Move to the device and, under torchrun, wrap in DistributedDataParallel."""
        module = module.to(self.device)
        if not self.distributed:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def barrier(self) -> None:
        """Wait for all processes (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def broadcast_from_main(self, value: float) -> float:
        """Rank 0's value on every process (identity in a single process)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def mean_over_ranks(self, value: float) -> float:
        """Average a scalar over processes (identity in a single process)."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a torchrun launch."""
    return int(os.environ.get("RANK", "0")) == 0


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def no_sync(module: nn.Module) -> contextlib.AbstractContextManager:
    """Skip DDP's gradient all-reduce for the backward passes inside the context."""
    if isinstance(module, DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is an error."""
    if name not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was requested but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


@contextlib.contextmanager
def training_runtime(device: str = "auto", amp: bool = False) -> Iterator[Runtime]:
    """Set up the process group when launched by torchrun; tear it down on exit.

    AMP is only used on CUDA; asking for it on the CPU falls back to float32 (``runtime.amp``
    tells which).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = select_device(device, local_rank)
    started_group = False
    if world_size > 1 and not dist.is_initialized():
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        dist.init_process_group("nccl" if torch_device.type == "cuda" else "gloo")
        started_group = True
    try:
        yield Runtime(
            device=torch_device,
            amp=amp and torch_device.type == "cuda",
            rank=rank,
            world_size=world_size,
        )
    finally:
        if started_group:
            dist.destroy_process_group()
