"""Grid search of the ensemble weights (paper Sec. 3.3) on a validation anomaly set.

Candidates: every (dissimilarity, entropy, perceptual, distance) weight vector in {0,1,2,3}^4
except all zeros, L1-normalised, proportional duplicates removed. The model runs once per
image; every candidate is scored from those maps. Selection: lowest FPR95, then highest AP.
"""

from __future__ import annotations

import csv
import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synboost_ros.ensemble import ENSEMBLE_INPUTS
from synboost_ros.metrics.anomaly import AnomalyMetrics
from synboost_ros.training.anomaly_validation import AnomalyValidationSet, pooled_metrics
from synboost_ros.training.inference_maps import MapExtractor
from synboost_ros.training.model_io import save_trained_model, starting_model
from synboost_ros.training.options import TrainOptions
from synboost_ros.training.provenance import training_entry
from synboost_ros.training.runtime import seed_everything, training_runtime

WEIGHT_LEVELS = (0, 1, 2, 3)
Weights = tuple[float, float, float, float]


@dataclass(frozen=True)
class CandidateResult:
    """Metrics of one weight vector."""

    weights: Weights
    metrics: AnomalyMetrics


def candidate_weights(levels: Sequence[int] = WEIGHT_LEVELS) -> list[Weights]:
    """L1-normalised weight vectors of the grid, one per direction, in grid order."""
    seen: set[tuple[int, ...]] = set()
    candidates = []
    for combo in itertools.product(levels, repeat=len(ENSEMBLE_INPUTS)):
        divisor = math.gcd(*combo)
        if divisor == 0:
            continue  # all zero
        reduced = tuple(value // divisor for value in combo)
        if reduced in seen:
            continue
        seen.add(reduced)
        total = sum(combo)
        candidates.append(tuple(value / total for value in combo))
    return candidates


def selection_key(result: CandidateResult) -> tuple[float, float]:
    """Sort key of the selection: lower FPR95 first, then higher AP."""
    return result.metrics.fpr95, -result.metrics.ap


def search_weights(
    pooled_maps: Mapping[str, np.ndarray],
    labels: np.ndarray,
    candidates: Sequence[Weights] | None = None,
) -> tuple[CandidateResult, list[CandidateResult]]:
    """Score every candidate on 1-D pooled maps (keys ``ENSEMBLE_INPUTS``); return best and all."""
    missing = [name for name in ENSEMBLE_INPUTS if name not in pooled_maps]
    if missing:
        raise ValueError(f"maps missing for {missing}")
    candidates = list(candidates) if candidates is not None else candidate_weights()
    if not candidates:
        raise ValueError("no candidate weights to search")
    stack = np.stack([np.asarray(pooled_maps[name], np.float32) for name in ENSEMBLE_INPUTS])
    results = []
    for weights in tqdm(candidates, desc="ensemble weights", unit="cand"):
        scores = np.tensordot(np.asarray(weights, np.float32), stack, axes=1)
        results.append(CandidateResult(tuple(weights), pooled_metrics(scores, labels)))
    return min(results, key=selection_key), results


def write_results_csv(path: Path, results: Sequence[CandidateResult]) -> None:
    """One row per candidate: its weights and metrics."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"w_{name}" for name in ENSEMBLE_INPUTS), "ap", "fpr95", "auroc"])
        for result in results:
            m = result.metrics
            writer.writerow([*(f"{w:.6f}" for w in result.weights), m.ap, m.fpr95, m.auroc])


def search_ensemble(
    options: TrainOptions, val_format: str = "fishyscapes", limit: int | None = None
) -> Path:
    """Search the weights of ``options.init_weights`` on ``options.data``; write ``out``."""
    from synboost_ros.data.anomaly_sets import AnomalyDataset

    if options.init_weights is None:
        raise ValueError("the ensemble search needs trained weights: pass --init-weights")
    started = time.perf_counter()
    with training_runtime(options.device, amp=False) as runtime:
        if runtime.distributed:
            raise ValueError("the ensemble search runs in one process; launch it without torchrun")
        seed_everything(options.seed)
        start = starting_model(options)
        model = start.model
        validation = AnomalyValidationSet.compute(
            AnomalyDataset(options.data, val_format), MapExtractor(model, runtime.device), limit
        )
        maps = {
            "dissimilarity": validation.pooled(
                validation.dissimilarity_maps(
                    model.dissimilarity.to(runtime.device),
                    runtime.device,
                    model.config.dissimilarity_image_normalization,
                )
            ),
            **{name: validation.pooled_map(name) for name in ENSEMBLE_INPUTS[1:]},
        }
        best, results = search_weights(maps, validation.labels)
        write_results_csv(options.out / "train_state" / "ensemble_search.csv", results)
        model.config = model.config.replace(ensemble_weights=best.weights)
        entry = training_entry(
            "ensemble",
            runtime,
            options.data,
            options.seed,
            0,
            time.perf_counter() - started,
            {"ap": best.metrics.ap, "fpr95": best.metrics.fpr95, "auroc": best.metrics.auroc},
            {
                "ensemble_weights": list(best.weights),
                "inputs": list(ENSEMBLE_INPUTS),
                "candidates": len(results),
                "images": len(validation.images),
                "selection": "lowest FPR95, then highest AP, at the synthesis size",
            },
        )
        save_trained_model(model, options.out, start, entry)
    return options.out
