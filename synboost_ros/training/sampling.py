"""Deterministic, shardable and resumable sample order.

Every sample is addressed by a key ``(index, epoch)``. Datasets derive all their random
augmentation from ``sample_rng(seed, epoch, index)``, so a batch depends only on the seed, the
epoch and its position: independent of DataLoader workers, and identical after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

SampleKey = tuple[int, int]  # (dataset index, epoch)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Random generator of one sample in one epoch."""
    return np.random.default_rng((seed, epoch, index))


class EpochSampler(Sampler[SampleKey]):
    """Per-epoch seeded permutation, split across ranks, that can start mid-epoch.

    Like ``DistributedSampler`` the order is padded by repetition to a multiple of
    ``world_size`` and rank r takes every world_size-th entry from r. ``set_epoch(epoch,
    skip_batches)`` selects the epoch and drops its first ``skip_batches * batch_size`` keys
    of this rank (to resume mid-epoch).
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"need samples and a batch size, got {num_samples}, {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.per_rank = math.ceil(num_samples / world_size)
        self.epoch = 0
        self.skip = 0

    @property
    def batches_per_epoch(self) -> int:
        """Full batches per epoch on each rank (the last partial batch is dropped)."""
        return self.per_rank // self.batch_size

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Choose the epoch and how many of its batches were already consumed."""
        if not 0 <= skip_batches <= self.batches_per_epoch:
            raise ValueError(f"cannot skip {skip_batches} of {self.batches_per_epoch} batches")
        self.epoch = epoch
        self.skip = skip_batches * self.batch_size

    def _order(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = list(range(self.num_samples))
        total = self.per_rank * self.world_size
        while len(order) < total:
            order += order[: total - len(order)]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[SampleKey]:
        for index in self._order()[self.skip :]:
            yield index, self.epoch

    def __len__(self) -> int:
        return self.per_rank - self.skip
