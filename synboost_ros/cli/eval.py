"""``synboost eval``: anomaly metrics (AP, FPR95, AUROC) or segmentation mIoU on a data set."""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synboost_ros.cli.common import add_model_arguments, create_pipeline, positive_int
from synboost_ros.data.anomaly_sets import ANOMALY_FORMATS, AnomalyDataset
from synboost_ros.evaluation import (
    AnomalyEvaluation,
    AnomalySampleLike,
    SegmentationSampleLike,
    evaluate_anomaly_set,
    evaluate_segmentation,
    score_file_reader,
    segmentation_report,
)
from synboost_ros.metrics.anomaly import TPR_TARGET
from synboost_ros.metrics.segmentation import SegmentationMetrics

if TYPE_CHECKING:
    from synboost_ros.pipeline import AnomalyPipeline

FORMATS = (*ANOMALY_FORMATS, "cityscapes")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate anomaly scores or segmentation on a data set",
        description="Pooled anomaly metrics (Fishyscapes protocol) and SegmentMeIfYouCan "
        "component metrics (sIoU, PPV, mean F1) on an anomaly data set, or "
        "semantic-segmentation mIoU on Cityscapes.",
    )
    parser.add_argument("--data", required=True, type=Path, help="data set root directory")
    parser.add_argument("--format", required=True, choices=FORMATS, help="data set layout")
    parser.add_argument("--split", default="val", help="Cityscapes split (default: val)")
    parser.add_argument(
        "--scores",
        type=Path,
        help="directory of precomputed <stem>.npy anomaly maps; no model runs",
    )
    add_model_arguments(parser)
    parser.add_argument("--plot", type=Path, help="write PR and ROC curves to this PNG file")
    parser.add_argument(
        "--false-alarms-by-class",
        type=Path,
        metavar="CITYSCAPES_ROOT",
        help="semantic ground truth of the same frames (Cityscapes layout, --split, matched by "
        "stem): report each class's false alarms at the operating point (--false-alarms-tpr)",
    )
    parser.add_argument(
        "--false-alarms-by-distance",
        action="store_true",
        help="report the false alarms at the operating point by their distance to the nearest "
        "anomaly pixel of the frame (bands of 2, 5, 10 and 20 label-map pixels)",
    )
    parser.add_argument(
        "--false-alarms-tpr",
        type=_fraction_in_unit_interval,
        metavar="TPR",
        help="operating point of the false-alarm reports: the first threshold that flags this "
        "share of the anomaly pixels (default: 0.95, the FPR95 threshold)",
    )
    parser.add_argument("--limit", type=positive_int, help="evaluate only the first N images")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate and print the metrics; returns the exit code."""
    if args.format == "cityscapes":
        anomaly_only = (
            ("--scores", args.scores is not None),
            ("--plot", args.plot is not None),
            ("--false-alarms-by-class", args.false_alarms_by_class is not None),
            ("--false-alarms-by-distance", args.false_alarms_by_distance),
            ("--false-alarms-tpr", args.false_alarms_tpr is not None),
        )
        for option, given in anomaly_only:
            if given:
                raise ValueError(f"{option} applies to anomaly formats {ANOMALY_FORMATS} only")
        return _run_segmentation(args)
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install synboost_ros[viz]")
    breakdowns = args.false_alarms_by_class is not None or args.false_alarms_by_distance
    if args.false_alarms_tpr is not None and not breakdowns:
        raise ValueError(
            "--false-alarms-tpr sets the operating point of --false-alarms-by-class and "
            "--false-alarms-by-distance; give one of them"
        )
    if args.false_alarms_tpr is None:
        args.false_alarms_tpr = TPR_TARGET
    return _run_anomaly(args)


def _run_anomaly(args: argparse.Namespace) -> int:
    samples = AnomalyDataset(args.data, args.format)
    pipeline = None
    if args.scores is not None:
        score_fn = score_file_reader(args.scores)
    else:
        pipeline = create_pipeline(args)
        score_fn = _model_anomaly_fn(pipeline)
    class_ground_truth = None
    if args.false_alarms_by_class is not None:
        class_ground_truth = (args.false_alarms_by_class, args.split)
    evaluation = evaluate_anomaly_set(
        samples,
        score_fn,
        limit=args.limit,
        class_ground_truth=class_ground_truth,
        by_distance=args.false_alarms_by_distance,
        tpr=args.false_alarms_tpr,
    )
    if args.plot is not None:
        from synboost_ros.metrics.plots import plot_curves

        plot_curves(evaluation.accumulator.curves(), args.plot, evaluation.metrics)
    _print_anomaly(args, evaluation, pipeline)
    return 0


def _run_segmentation(args: argparse.Namespace) -> int:
    from synboost_ros.data.cityscapes import CityscapesDataset

    samples = CityscapesDataset(args.data, args.split)
    pipeline = create_pipeline(args)

    def predict(sample: SegmentationSampleLike) -> np.ndarray:
        return pipeline(sample.image, outputs=("semantic",)).semantic

    accumulator = evaluate_segmentation(samples, predict, limit=args.limit)
    _print_segmentation(args, accumulator.num_images, accumulator.compute(), pipeline)
    return 0


def _ran(pipeline: AnomalyPipeline | None) -> dict[str, str]:
    """Backend, device, precision and layout that computed the maps ({} for score files):
    the record that a ``--precision bf16`` run really ran bf16."""
    if pipeline is None:
        return {}
    backend = pipeline.backend
    return {
        "backend": backend.name,
        "device": backend.device,
        "precision": backend.precision,
        "layout": backend.layout,
    }


def _model_anomaly_fn(pipeline: AnomalyPipeline) -> Callable[[AnomalySampleLike], np.ndarray]:
    """A ``score_fn`` running the model on each sample's image."""

    def score(sample: AnomalySampleLike) -> np.ndarray:
        return pipeline(sample.image, outputs=("anomaly",)).anomaly

    return score


def _print_anomaly(
    args: argparse.Namespace, evaluation: AnomalyEvaluation, pipeline: AnomalyPipeline | None
) -> None:
    ran = _ran(pipeline)
    if args.json:
        print(json.dumps({**evaluation.report(args.format), **({"ran": ran} if ran else {})}))
        return
    metrics, accumulator = evaluation.metrics, evaluation.accumulator
    rows = [
        ("format", args.format),
        *([("ran", " ".join(ran.values()))] if ran else []),
        ("images", str(accumulator.num_images)),
        ("AP", f"{metrics.ap:.4f}"),
        ("FPR95", f"{metrics.fpr95:.4f}"),
        ("AUROC", f"{metrics.auroc:.4f}"),
        ("pixels", str(metrics.num_pixels)),
        ("anomaly pixels", str(metrics.num_anomaly_pixels)),
        ("exact", "yes" if metrics.exact else f"no ({accumulator.mantissa_bits} mantissa bits)"),
    ]
    components = evaluation.components
    rows += [
        ("components at score", f"{components.score_threshold:g} (best pixel F1, grid 0.05)"),
        ("sIoU", _fraction(components.mean_siou)),
        ("PPV", _fraction(components.mean_ppv)),
        ("mean F1", _fraction(components.mean_f1)),
        ("components GT/pred.", f"{components.gt_components} / {components.predicted_components}"),
    ]
    for kind, breakdown in evaluation.breakdowns.items():
        operating_point = f"TPR {evaluation.tpr:g}, threshold {breakdown.threshold:.6g}"
        rows.append((f"false alarms by {kind}", operating_point))
        rows += [
            (f"  {g.name}", f"rate {_fraction(g.rate)}  share {_fraction(g.share)}")
            for g in breakdown.groups
            if g.normal_pixels
        ]
    _print_rows(rows)


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_segmentation(
    args: argparse.Namespace,
    num_images: int,
    metrics: SegmentationMetrics,
    pipeline: AnomalyPipeline,
) -> None:
    ran = _ran(pipeline)
    if args.json:
        print(json.dumps({**segmentation_report(args.format, num_images, metrics), "ran": ran}))
        return
    rows = [
        ("format", f"{args.format} ({args.split})"),
        ("ran", " ".join(ran.values())),
        ("images", str(num_images)),
        ("mIoU", f"{metrics.miou:.4f}"),
        ("pixel accuracy", f"{metrics.pixel_accuracy:.4f}"),
    ]
    rows += [
        (f"IoU {name}", "n/a" if iou is None else f"{iou:.4f}")
        for name, iou in metrics.per_class_iou.items()
    ]
    _print_rows(rows)


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _fraction_in_unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value
