"""``synboost eval``: anomaly metrics (AP, FPR95, AUROC) or segmentation mIoU on a data set."""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from synboost_ros.cli.common import add_model_arguments, create_pipeline
from synboost_ros.evaluation import (
    AnomalySampleLike,
    SegmentationSampleLike,
    evaluate_anomaly_scores,
    evaluate_segmentation,
    score_file_reader,
)
from synboost_ros.metrics.anomaly import AnomalyMetricAccumulator, AnomalyMetrics
from synboost_ros.metrics.false_alarms import FalseAlarmBreakdown, FalseAlarmsByClass
from synboost_ros.metrics.segmentation import SegmentationMetrics

ANOMALY_FORMATS = ("fishyscapes", "folder")
FORMATS = (*ANOMALY_FORMATS, "cityscapes")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate anomaly scores or segmentation on a data set",
        description="Pooled anomaly metrics (Fishyscapes protocol) on an anomaly data set, or "
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
        "stem): report each class's false alarms at the FPR95 threshold",
    )
    parser.add_argument("--limit", type=_positive_int, help="evaluate only the first N images")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate and print the metrics; returns the exit code."""
    if args.format == "cityscapes":
        anomaly_only = (
            ("--scores", args.scores),
            ("--plot", args.plot),
            ("--false-alarms-by-class", args.false_alarms_by_class),
        )
        for option, value in anomaly_only:
            if value is not None:
                raise ValueError(f"{option} applies to anomaly formats {ANOMALY_FORMATS} only")
        return _run_segmentation(args)
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib: pip install synboost_ros[viz]")
    return _run_anomaly(args)


def _run_anomaly(args: argparse.Namespace) -> int:
    from synboost_ros.data.anomaly_sets import AnomalyDataset

    samples = AnomalyDataset(args.data, args.format)
    if args.scores is not None:
        score_fn = score_file_reader(args.scores)
    else:
        score_fn = _model_anomaly_fn(args)
    observers = []
    by_class = None
    if args.false_alarms_by_class is not None:
        by_class = FalseAlarmsByClass()
        observers.append(_class_observer(args.false_alarms_by_class, args.split, by_class))
    accumulator = evaluate_anomaly_scores(samples, score_fn, limit=args.limit, observers=observers)
    metrics = accumulator.compute()
    if args.plot is not None:
        from synboost_ros.metrics.plots import plot_curves

        plot_curves(accumulator.curves(), args.plot, metrics)
    breakdown = None
    if by_class is not None:
        breakdown = by_class.compute(accumulator.threshold_at_tpr())
    _print_anomaly(args, accumulator, metrics, breakdown)
    return 0


def _class_observer(
    root: Path, split: str, by_class: FalseAlarmsByClass
) -> Callable[[AnomalySampleLike, np.ndarray], None]:
    """Feeds ``by_class`` with each frame's scores and its semantic ground truth from ``root``."""
    from synboost_ros.classes import label_ids_to_train_ids
    from synboost_ros.data.cityscapes import CityscapesDataset

    ground_truth = CityscapesDataset(root, split)
    index_of = {ground_truth.stem(i): i for i in range(len(ground_truth))}

    def observe(sample: AnomalySampleLike, scores: np.ndarray) -> None:
        index = index_of.get(sample.stem)
        if index is None:
            raise FileNotFoundError(
                f"frame {sample.stem!r} has no semantic ground truth in {root} (split {split!r})"
            )
        by_class.update(scores, sample.label, label_ids_to_train_ids(ground_truth.label_ids(index)))

    return observe


def _run_segmentation(args: argparse.Namespace) -> int:
    from synboost_ros.data.cityscapes import CityscapesDataset

    samples = CityscapesDataset(args.data, args.split)
    pipeline = create_pipeline(args)

    def predict(sample: SegmentationSampleLike) -> np.ndarray:
        return pipeline(sample.image, outputs=("semantic",)).semantic

    accumulator = evaluate_segmentation(samples, predict, limit=args.limit)
    _print_segmentation(args, accumulator.num_images, accumulator.compute())
    return 0


def _model_anomaly_fn(args: argparse.Namespace) -> Callable[[AnomalySampleLike], np.ndarray]:
    """A ``score_fn`` running the model on each sample's image."""
    pipeline = create_pipeline(args)

    def score(sample: AnomalySampleLike) -> np.ndarray:
        return pipeline(sample.image, outputs=("anomaly",)).anomaly

    return score


def _print_anomaly(
    args: argparse.Namespace,
    accumulator: AnomalyMetricAccumulator,
    metrics: AnomalyMetrics,
    breakdown: FalseAlarmBreakdown | None,
) -> None:
    report = {
        "format": args.format,
        "num_images": accumulator.num_images,
        "ap": metrics.ap,
        "fpr95": metrics.fpr95,
        "auroc": metrics.auroc,
        "num_pixels": metrics.num_pixels,
        "num_anomaly_pixels": metrics.num_anomaly_pixels,
        "exact": metrics.exact,
    }
    if breakdown is not None:
        report["false_alarms_by_class"] = _breakdown_report(breakdown)
    if args.json:
        print(json.dumps(report))
        return
    rows = [
        ("format", args.format),
        ("images", str(accumulator.num_images)),
        ("AP", f"{metrics.ap:.4f}"),
        ("FPR95", f"{metrics.fpr95:.4f}"),
        ("AUROC", f"{metrics.auroc:.4f}"),
        ("pixels", str(metrics.num_pixels)),
        ("anomaly pixels", str(metrics.num_anomaly_pixels)),
        ("exact", "yes" if metrics.exact else f"no ({accumulator.mantissa_bits} mantissa bits)"),
    ]
    if breakdown is not None:
        rows.append(("false alarms at FPR95", f"threshold {breakdown.threshold:.6g}"))
        rows += [
            (f"  {c.name}", f"rate {_fraction(c.rate)}  share {_fraction(c.share)}")
            for c in breakdown.classes
            if c.normal_pixels
        ]
    _print_rows(rows)


def _breakdown_report(breakdown: FalseAlarmBreakdown) -> dict:
    """JSON form of a false-alarm breakdown (classes without normal pixels left out)."""
    return {
        "threshold": breakdown.threshold,
        "false_alarms": breakdown.total_false_alarms,
        "exact": breakdown.exact,
        "classes": {
            c.name: {
                "normal_pixels": c.normal_pixels,
                "false_alarms": c.false_alarms,
                "rate": c.rate,
                "share": c.share,
            }
            for c in breakdown.classes
            if c.normal_pixels
        },
    }


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_segmentation(
    args: argparse.Namespace, num_images: int, metrics: SegmentationMetrics
) -> None:
    report = {
        "format": args.format,
        "num_images": num_images,
        "miou": metrics.miou,
        "per_class_iou": metrics.per_class_iou,
        "pixel_accuracy": metrics.pixel_accuracy,
    }
    if args.json:
        print(json.dumps(report))
        return
    rows = [
        ("format", f"{args.format} ({args.split})"),
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
