"""``synboost demo make-bag`` and ``synboost demo run``: the recorded drive demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synboost_ros.cli.common import add_model_arguments, model_options, parse_size
from synboost_ros.demo.make_drive import (
    DEFAULT_FRAMES,
    DEFAULT_INDEX,
    DEFAULT_RATE_HZ,
    DEFAULT_SEED,
    DEFAULT_SIZE,
)

DEFAULT_OUT = Path("out/demo")
DEFAULT_TIMEOUT_S = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command and its ``make-bag`` and ``run`` actions."""
    parser = subparsers.add_parser("demo", help="replay a recorded drive through anomaly_node")
    actions = parser.add_subparsers(dest="action", required=True)

    make = actions.add_parser("make-bag", help="render the demo drive into a rosbag2 (mcap)")
    make.add_argument("--out", required=True, type=Path, help="new bag folder")
    make.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="number of frames")
    make.add_argument("--rate", type=float, default=DEFAULT_RATE_HZ, help="frame rate (Hz)")
    make.add_argument("--seed", type=int, default=DEFAULT_SEED, help="world seed")
    make.add_argument("--index", type=int, default=DEFAULT_INDEX, help="scene of the world")
    make.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="HxW (256x512)")
    make.set_defaults(func=_make_bag)

    run = actions.add_parser("run", help="replay a drive bag through anomaly_node; report")
    run.add_argument("--bag", type=Path, help="drive bag folder (default: models/demo_drive)")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder ({DEFAULT_OUT})")
    add_model_arguments(run, ("preset", "weights", "random_weights"))
    run.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for the node to start, and for its last outputs "
        f"({DEFAULT_TIMEOUT_S:g})",
    )
    run.set_defaults(func=_run)

    evaluate = actions.add_parser(
        "evaluate",
        help="measure temporal fusion and drivable-area gating on a drive bag (in process)",
        description="Runs every frame of the drive through AnomalyPipeline once per variant "
        "(none, temporal, gating, temporal+gating) and reports pixel AP / FPR95, component "
        "sIoU / PPV / mean F1 and flicker, over all pixels and inside the road region "
        "(SegmentMeIfYouCan obstacle-track protocol; the road comes from re-rendering the "
        "drive, so --seed/--index/--rate must be the bag's).",
    )
    evaluate.add_argument("--bag", type=Path, help="drive bag folder (default: models/demo_drive)")
    add_model_arguments(evaluate, ("preset", "weights", "random_weights", "backend", "device"))
    evaluate.add_argument("--seed", type=int, default=DEFAULT_SEED, help="world seed of the bag")
    evaluate.add_argument("--index", type=int, default=DEFAULT_INDEX, help="scene of the bag")
    evaluate.add_argument("--rate", type=float, default=DEFAULT_RATE_HZ, help="bag rate (Hz)")
    evaluate.add_argument("--limit", type=int, help="only the first N frames")
    evaluate.add_argument("--out", type=Path, help="also write the report to this JSON file")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=_evaluate)


def _make_bag(args: argparse.Namespace) -> int:
    from synboost_ros.demo.make_drive import DriveSpec, make_drive_bag

    spec = DriveSpec(args.seed, args.index, args.frames, args.rate, args.size)
    count = make_drive_bag(args.out, spec)
    size_mb = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"wrote {count} frames to {args.out} ({size_mb:.1f} MB)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from synboost_ros.demo.runner import DemoError, DemoOptions, run_demo

    model = model_options(args)
    options = DemoOptions(
        out=args.out,
        timeout_s=args.timeout,
        bag=args.bag,
        preset=model.preset,
        weights=model.weights or None,
        random_weights=model.random_weights,
    )
    try:
        files = run_demo(options)
    except DemoError as error:
        print(f"synboost demo: error: {error}", file=sys.stderr)
        return 1
    latency = json.loads(files.latency.read_text(encoding="utf-8"))
    metrics = json.loads(files.metrics.read_text(encoding="utf-8"))
    print(
        f"frames: {latency['frames_published']} published, {latency['frames_out']} processed, "
        f"{latency['frames_dropped']} dropped; {latency['fps']} FPS; "
        f"e2e p50 {(latency['e2e_ms'] or {}).get('p50')} ms"
    )
    print(
        f"AP {metrics['ap']}, FPR95 {metrics['fpr95']}, AUROC {metrics['auroc']} "
        f"over {metrics['frames_scored']} frames"
    )
    components = metrics.get("components") or {}
    print(
        f"components at score {components.get('score_threshold')}: sIoU {components.get('siou')}, "
        f"PPV {components.get('ppv')}, mean F1 {components.get('mean_f1')}"
    )
    summary = json.loads(files.summary.read_text(encoding="utf-8"))
    print(
        f"summary: {summary['frames_with_summary']} frames, alarm rate {summary['alarm_rate']} "
        f"(anomaly in view {summary['alarm_rate_anomaly_in_view']}, "
        f"none in view {summary['alarm_rate_no_anomaly_in_view']})"
    )
    for name in ("animation", "contact_sheet", "latency", "metrics", "summary"):
        print(f"{name}: {getattr(files, name)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from synboost_ros.cli.common import create_pipeline
    from synboost_ros.demo.drive_evaluation import evaluate_drive, table_rows
    from synboost_ros.demo.make_drive import DriveSpec
    from synboost_ros.demo.runner import default_bag_path

    bag = args.bag or default_bag_path()
    if bag is None:
        raise FileNotFoundError("no demo drive found; pass --bag DIR")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be positive, got {args.limit}")
    spec = DriveSpec(seed=args.seed, index=args.index, rate_hz=args.rate)
    report = evaluate_drive(create_pipeline(args), bag, spec, limit=args.limit)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report))
    else:
        print("\n".join(table_rows(report)))
        print(f"({report['frames']} frames of {bag}; mF1 = mean F1 over sIoU 0.25..0.75)")
    return 0
