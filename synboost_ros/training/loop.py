"""The step loop shared by the trainers: epochs, resume mid-epoch, logging and checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from synboost_ros.training.metric_log import MetricLogger
from synboost_ros.training.runtime import Runtime
from synboost_ros.training.sampling import EpochSampler

StepFn = Callable[[dict, int], Mapping[str, float]]  # (batch, step) -> metrics
EpochEndFn = Callable[[int, int], None]  # (finished epoch, step)
CheckpointFn = Callable[[int], None]  # (step)


@dataclass(frozen=True)
class LoopSettings:
    """Length and cadence of a training loop."""

    total_steps: int
    log_every: int = 10
    checkpoint_every: int = 1000


def total_steps(steps: int | None, epochs: int | None, batches_per_epoch: int) -> int:
    """Steps of a run given ``steps`` or ``epochs`` (exactly one of them)."""
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps and epochs")
    if batches_per_epoch < 1:
        raise ValueError("the training set is smaller than one batch: lower the batch size")
    total = steps if steps is not None else epochs * batches_per_epoch
    if total < 1:
        raise ValueError(f"need at least one training step, got {total}")
    return total


def make_loader(
    dataset: Dataset, batch_size: int, seed: int, runtime: Runtime, workers: int
) -> tuple[DataLoader, EpochSampler]:
    """Shuffled, rank-sharded loader of full batches whose sampler can resume mid-epoch."""
    sampler = EpochSampler(
        len(dataset), batch_size, seed, rank=runtime.rank, world_size=runtime.world_size
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=runtime.device.type == "cuda",
    )
    return loader, sampler


def run_loop(
    loader: DataLoader,
    sampler: EpochSampler,
    settings: LoopSettings,
    start_step: int,
    train_step: StepFn,
    checkpoint: CheckpointFn,
    logger: MetricLogger,
    runtime: Runtime,
    description: str,
    on_epoch_end: EpochEndFn | None = None,
) -> int:
    """Run ``train_step`` from ``start_step`` to ``settings.total_steps``; return the last step.

    The epoch and the position in it follow from the step, so a resumed run sees the same
    batches as an uninterrupted one. Metrics are averaged over each logging interval.
    ``on_epoch_end`` runs before the checkpoint of the same step.
    """
    per_epoch = sampler.batches_per_epoch
    step = start_step
    sums: dict[str, float] = {}
    count = 0
    with tqdm(
        total=settings.total_steps,
        initial=start_step,
        desc=description,
        unit="step",
        disable=not runtime.is_main,
    ) as bar:
        while step < settings.total_steps:
            epoch, done = divmod(step, per_epoch)
            sampler.set_epoch(epoch, done)
            for batch in loader:
                metrics = train_step(batch, step)
                step += 1
                count += 1
                for name, value in metrics.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                bar.update(1)
                if step % settings.log_every == 0 or step == settings.total_steps:
                    averaged = {name: total / count for name, total in sums.items()}
                    logger.log(step, averaged)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in averaged.items()})
                    sums, count = {}, 0
                if on_epoch_end is not None and step % per_epoch == 0:
                    on_epoch_end(epoch, step)
                if step % settings.checkpoint_every == 0 or step == settings.total_steps:
                    checkpoint(step)
                if step >= settings.total_steps:
                    break
    return step
