"""``synboost demo evaluate``: the post-processing options measured on a drive bag, in process.

Each variant (none, temporal fusion, drivable-area gating, both) runs every frame of the drive,
in order, through one ``AnomalyPipeline`` (fresh temporal state per variant). Scored against
the bag's anomaly labels:

- ``full``: every labelled pixel (Fishyscapes protocol, as ``synboost eval``);
- ``road``: the SegmentMeIfYouCan obstacle-track protocol, evaluation only inside the road
  region of interest: the ground-truth road (with the regions it encloses) and the anomaly
  pixels; everything else is void. The ground-truth road comes from re-rendering the drive
  from its ``DriveSpec`` (the default one is the shipped drive); every re-rendered anomaly
  label must equal the bag's, or the run stops;
- pixel AP / FPR95 / AUROC, component sIoU / PPV / mean F1 (``metrics.components``, at the
  best pixel-F1 threshold of the variant) and flicker: the mean absolute change of the anomaly
  score between consecutive frames over the pixels that are normal in both frames and of the
  same ground-truth class in both (the static background, away from moving edges);
- the median time of the ``temporal`` and ``gating`` stages.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from synboost_ros.classes import CLASS_NAMES, IGNORE_ID
from synboost_ros.demo.drive_bag import DriveFrame, read_drive_bag
from synboost_ros.demo.make_drive import DriveSpec
from synboost_ros.metrics.anomaly import ANOMALY_LABEL, NORMAL_LABEL
from synboost_ros.metrics.stamped import PooledAnomalyMetrics
from synboost_ros.postprocess.drivable import fill_holes
from synboost_ros.postprocess.options import PostprocessOptions

VARIANTS: dict[str, PostprocessOptions] = {
    "none": PostprocessOptions(),
    "temporal": PostprocessOptions(temporal_fusion=True),
    "gating": PostprocessOptions(drivable_gating=True),
    "temporal+gating": PostprocessOptions(temporal_fusion=True, drivable_gating=True),
}
ROAD = CLASS_NAMES.index("road")
STAGES = ("temporal", "gating")


@dataclass(frozen=True)
class TruthFrame:
    """One frame of the drive with both protocols' labels and its ground-truth classes."""

    image: np.ndarray
    label: np.ndarray  # 0 normal, 1 anomaly, 255 void
    road_label: np.ndarray  # the same, void outside the road region of interest
    train_ids: np.ndarray


def road_region_label(label: np.ndarray, train_ids: np.ndarray) -> np.ndarray:
    """``label`` made void outside the road (with what it encloses) and the anomalies."""
    region = fill_holes(train_ids == ROAD) | (label == ANOMALY_LABEL)
    return np.where(region, label, IGNORE_ID).astype(np.uint8)


def truth_frames(frames: Iterable[DriveFrame], spec: DriveSpec) -> list[TruthFrame]:
    """The bag's frames with the ground-truth classes re-rendered from ``spec``."""
    from synboost_ros.data.world import render_scene, sample_scene

    scene = sample_scene(spec.seed, spec.index, anomalies=True)
    truth = []
    for index, frame in enumerate(tqdm(list(frames), desc="ground truth", unit="frame")):
        rendered = render_scene(scene, frame.label.shape, spec.camera_offset(index))
        if not np.array_equal(rendered.anomaly_label, frame.label):
            raise ValueError(
                f"frame {index} of the bag does not match the drive `{spec.command('BAG')}`: "
                "pass the --seed/--index/--rate the bag was made with"
            )
        train_ids = rendered.train_ids
        road = road_region_label(frame.label, train_ids)
        truth.append(TruthFrame(frame.image, frame.label, road, train_ids))
    return truth


def flicker(previous: np.ndarray, current: np.ndarray, a: TruthFrame, b: TruthFrame) -> float:
    """Mean |score change| over pixels normal in both frames with one class in both."""
    static = (a.label == NORMAL_LABEL) & (b.label == NORMAL_LABEL)
    static &= (a.train_ids == b.train_ids) & (a.train_ids != IGNORE_ID)
    return float(np.abs(current[static] - previous[static]).mean()) if static.any() else 0.0


def evaluate_variant(
    score: Callable[[np.ndarray], tuple[np.ndarray, dict[str, float]]],
    frames: Iterable[TruthFrame],
) -> dict[str, Any]:
    """Score ``frames`` in order with ``score`` (image -> anomaly map, stage times)."""
    full, road = PooledAnomalyMetrics(), PooledAnomalyMetrics()
    changes, stage_ms = [], {stage: [] for stage in STAGES}
    previous: tuple[np.ndarray, TruthFrame] | None = None
    for frame in frames:
        anomaly, timings = score(frame.image)
        full.update(anomaly, frame.label)
        road.update(anomaly, frame.road_label)
        if previous is not None:
            changes.append(flicker(previous[0], anomaly, previous[1], frame))
        previous = anomaly, frame
        for stage in STAGES:
            if stage in timings:
                stage_ms[stage].append(timings[stage])
    return {
        "full": full.result(),
        "road": road.result(),
        "flicker": float(np.mean(changes)) if changes else None,
        "stage_ms_p50": {s: statistics.median(v) for s, v in stage_ms.items() if v},
    }


def evaluate_drive(
    pipeline: Any,
    bag: str | Path,
    spec: DriveSpec | None = None,
    variants: dict[str, PostprocessOptions] = VARIANTS,
    limit: int | None = None,
) -> dict[str, Any]:
    """Every variant on the drive in ``bag``; the pipeline's post-processing is reset after."""
    frames = truth_frames(list(read_drive_bag(bag))[:limit], spec or DriveSpec())
    results = {}
    try:
        for name, options in variants.items():
            pipeline.set_postprocess(PostprocessOptions())  # forget the previous stream
            pipeline.set_postprocess(options)

            def score(image: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
                result = pipeline(image, outputs=("anomaly",))
                return result.anomaly, result.timings_ms

            results[name] = evaluate_variant(
                score, tqdm(frames, desc=name, unit="frame", leave=False)
            )
    finally:
        pipeline.set_postprocess(PostprocessOptions())
    return {"bag": str(bag), "frames": len(frames), "variants": results}


def table_rows(report: dict[str, Any]) -> list[str]:
    """The report as a text table, one variant per row."""
    header = (
        f"{'variant':<16} {'AP':>6} {'FPR95':>6} {'mF1':>6} {'sIoU':>6} {'PPV':>6} | road: "
        f"{'AP':>6} {'FPR95':>6} {'mF1':>6} | {'flicker':>7} {'ms':>5}"
    )
    rows = [header]
    for name, result in report["variants"].items():
        full, road = result["full"], result["road"]
        cost = sum(result["stage_ms_p50"].values())
        rows.append(
            f"{name:<16} {full['ap']:6.3f} {full['fpr95']:6.3f} "
            f"{_number(full['components']['mean_f1'])} {_number(full['components']['siou'])} "
            f"{_number(full['components']['ppv'])} |       {road['ap']:6.3f} "
            f"{road['fpr95']:6.3f} {_number(road['components']['mean_f1'])} | "
            f"{result['flicker']:7.4f} {cost:5.1f}"
        )
    return rows


def _number(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"
