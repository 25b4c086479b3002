"""Generate a data set of procedural scenes in parallel; the output does not depend on workers."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import cv2
from tqdm import tqdm

from synboost_ros.data.world.render import MIN_SIDE, render_scene
from synboost_ros.data.world.scene import sample_scene
from synboost_ros.data.world.writer import SPLITS, scene_stem, write_anomaly_scene, write_cityscapes

_Job = tuple[Path, int, int, tuple[int, int], bool, str]


def generate_world(
    out: str | Path,
    n: int,
    seed: int,
    size: tuple[int, int],
    anomalies: bool = False,
    split: str = "train",
    workers: int | None = None,
) -> None:
    """Write scenes 0..n-1 of world ``seed`` under ``out``.

    Without ``anomalies``: the Cityscapes layout. With it: the Fishyscapes format under ``out``
    and the matching Cityscapes layout under ``out/cityscapes``.
    """
    if n < 1:
        raise ValueError(f"the number of scenes must be at least 1, got {n}")
    if seed < 0:
        raise ValueError(f"the seed must be non-negative, got {seed}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if size[0] < MIN_SIDE or size[1] < MIN_SIDE:
        raise ValueError(
            f"image size must be at least {MIN_SIDE}x{MIN_SIDE}, got {size[0]}x{size[1]}"
        )
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"the number of workers must be at least 1, got {workers}")
    jobs: list[_Job] = [(Path(out), seed, index, size, anomalies, split) for index in range(n)]
    progress = tqdm(total=n, desc="world scenes", unit="scene")
    if workers == 1:
        for job in jobs:
            _make_scene(job)
            progress.update()
    else:
        # "spawn": forked workers can hang on thread pools (OpenMP, OpenCV) that the parent
        # process had started, e.g. after torch ran in it.
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, n), initializer=_quiet_opencv) as pool:
            for _ in pool.imap_unordered(_make_scene, jobs, chunksize=4):
                progress.update()
    progress.close()


def _quiet_opencv() -> None:
    """One OpenCV thread per worker process: the pool already uses every core."""
    cv2.setNumThreads(1)


def _make_scene(job: _Job) -> None:
    """Sample, render and write one scene."""
    out, seed, index, size, anomalies, split = job
    scene = render_scene(sample_scene(seed, index, anomalies), size)
    stem = scene_stem(seed, index)
    if anomalies:
        write_anomaly_scene(out, split, stem, scene)
    else:
        write_cityscapes(out, split, stem, scene)
