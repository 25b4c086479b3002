"""``synboost ablation``: the paper's Table 2 rows (AP, FPR95) on an anomaly set, with the
SegmentMeIfYouCan component metrics (sIoU, PPV, mean F1 at each row's best pixel-F1 threshold).

The model runs once per image; every row is scored from that pass. Scores are resized to the
label resolution as in ``synboost eval``. The "w/o uncertainty maps" row needs a dissimilarity
net trained with ``synboost train dissim --no-uncertainty`` (``--no-uncertainty-weights``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synboost_ros.cli.common import add_model_arguments, model_options
from synboost_ros.data.anomaly_sets import ANOMALY_FORMATS
from synboost_ros.options import ModelOptions

ROWS = (
    ("ensemble", "full method (ensemble)"),
    ("dissimilarity", "w/o ensemble (dissimilarity only)"),
    ("no_uncertainty", "w/o uncertainty maps"),
    ("entropy", "softmax entropy only"),
    ("distance", "softmax distance only"),
    ("perceptual", "perceptual difference only (resynthesis)"),
)
NOT_RUN = (
    "not run (train with `synboost train dissim --no-uncertainty`, "
    "pass its folder as --no-uncertainty-weights)"
)
SHARED_PARTS = ("segmentation", "synthesis", "perceptual")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ablation`` command."""
    parser = subparsers.add_parser(
        "ablation",
        help="ablation table (paper Table 2) on an anomaly set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, type=Path, help="anomaly set root")
    parser.add_argument("--format", required=True, choices=ANOMALY_FORMATS)
    add_model_arguments(
        parser, ("preset", "weights", "random_weights", "device"), preset_from_weights=True
    )
    parser.add_argument(
        "--no-uncertainty-weights",
        type=Path,
        help="weights folder of `synboost train dissim --no-uncertainty`",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run_ablation)


@dataclass
class RowResult:
    """One table row: metrics, or why it was not run."""

    key: str
    method: str
    ap: float | None = None
    fpr95: float | None = None
    auroc: float | None = None
    siou: float | None = None
    ppv: float | None = None
    mean_f1: float | None = None
    status: str = "ok"


def ensemble_map(maps: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """L1-normalised weighted average of same-shaped maps."""
    total = float(sum(weights))
    return sum(w / total * m for w, m in zip(weights, maps, strict=True))


def run_ablation(args: argparse.Namespace) -> int:
    """Score every row on the anomaly set and print the table."""
    from synboost_ros.data.anomaly_sets import AnomalyDataset
    from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator
    from synboost_ros.metrics.components import ComponentMetrics
    from synboost_ros.preprocessing import resize_map
    from synboost_ros.training.inference_maps import MapExtractor, dissimilarity_probability
    from synboost_ros.training.model_io import load_dissimilarity_net
    from synboost_ros.training.runtime import select_device

    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be positive, got {args.limit}")
    options = model_options(args)
    device = select_device(options.device)
    model = _load_model(options, args.preset)
    weights = model.config.ensemble_weights
    normalization = model.config.dissimilarity_image_normalization
    no_uncertainty = no_uncertainty_normalization = None
    if args.no_uncertainty_weights is not None:
        no_uncertainty, no_uncertainty_config = load_dissimilarity_net(args.no_uncertainty_weights)
        no_uncertainty_normalization = no_uncertainty_config.dissimilarity_image_normalization
        if no_uncertainty.use_uncertainty:
            raise ValueError(
                f"{args.no_uncertainty_weights} holds a net with uncertainty inputs; pass the "
                "output of `synboost train dissim --no-uncertainty`"
            )
        no_uncertainty = no_uncertainty.to(device)
        if options.weights:
            _warn_if_other_maps(Path(options.weights), args.no_uncertainty_weights)
    extractor = MapExtractor(model, device)
    dissimilarity_net = model.dissimilarity.to(device).eval()
    samples = AnomalyDataset(args.data, args.format)
    count = len(samples) if args.limit is None else min(args.limit, len(samples))
    accumulators = {key: AnomalyMetricAccumulator() for key, _ in ROWS}
    components = {key: ComponentMetrics() for key, _ in ROWS}
    for index in tqdm(range(count), desc="ablation", unit="img"):
        sample = samples[index]
        maps = extractor(sample.image)
        scores = {
            "dissimilarity": dissimilarity_probability(
                dissimilarity_net, maps, device, normalization
            ),
            "entropy": maps.entropy,
            "distance": maps.distance,
            "perceptual": maps.perceptual,
        }
        ordered = [scores[name] for name in ("dissimilarity", "entropy", "perceptual", "distance")]
        scores["ensemble"] = ensemble_map(ordered, weights)
        if no_uncertainty is not None:
            scores["no_uncertainty"] = dissimilarity_probability(
                no_uncertainty, maps, device, no_uncertainty_normalization
            )
        for key, score in scores.items():
            resized = resize_map(score, sample.label.shape)
            accumulators[key].update(resized, sample.label)
            components[key].update(resized, sample.label)
    rows = []
    for key, method in ROWS:
        if key == "no_uncertainty" and no_uncertainty is None:
            rows.append(RowResult(key, method, status=NOT_RUN))
            continue
        metrics = accumulators[key].compute()
        parts = components[key].compute(accumulators[key].threshold_best_f1())
        rows.append(
            RowResult(
                key,
                method,
                metrics.ap,
                metrics.fpr95,
                metrics.auroc,
                parts.mean_siou,
                parts.mean_ppv,
                parts.mean_f1,
            )
        )
    _print(args, rows, count, weights)
    return 0


def _load_model(options: ModelOptions, preset: str | None):
    """The model of ``options``, of ``preset`` if given, else of the weights' preset."""
    from synboost_ros.manifest import read_manifest
    from synboost_ros.model_loading import load_or_random_model

    if preset is None:
        preset = read_manifest(options.weights).preset if options.weights else options.preset
    return load_or_random_model(preset, options.weights or None, options.random_weights)


def _warn_if_other_maps(weights: Path, no_uncertainty_weights: Path) -> None:
    """Note when the ablation net was trained on another model's segmentation / synthesis."""
    from synboost_ros.manifest import read_manifest

    full, ablation = read_manifest(weights), read_manifest(no_uncertainty_weights)
    differing = [
        part
        for part in SHARED_PARTS
        if full.files[part]["sha256"] != ablation.files[part]["sha256"]
    ]
    if differing:
        print(
            f"note: {no_uncertainty_weights} has other {', '.join(differing)} weights than "
            f"{weights}; its row uses the maps of {weights}",
            file=sys.stderr,
        )


def _cell(value: float | None) -> str:
    return f"{'n/a':>7}" if value is None else f"{value:7.4f}"


def _print(
    args: argparse.Namespace, rows: list[RowResult], count: int, weights: Sequence[float]
) -> None:
    if args.json:
        report = {
            "format": args.format,
            "num_images": count,
            "ensemble_weights": list(weights),
            "rows": [asdict(row) for row in rows],
        }
        print(json.dumps(report))
        return
    width = max(len(row.method) for row in rows)
    columns = ("AP", "FPR95", "sIoU", "PPV", "mean F1")
    print(f"{'method':<{width}}  " + "  ".join(f"{c:>7}" for c in columns))
    for row in rows:
        if row.status != "ok":
            print(f"{row.method:<{width}}  {row.status}")
        else:
            values = (row.ap, row.fpr95, row.siou, row.ppv, row.mean_f1)
            print(f"{row.method:<{width}}  " + "  ".join(_cell(v) for v in values))
    print(f"({count} images, ensemble weights {list(weights)})", file=sys.stderr)
