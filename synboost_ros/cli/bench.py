"""``synboost bench``: measure the pipeline's speed on this machine."""

from __future__ import annotations

import argparse
import json

from synboost_ros.cli.common import add_model_arguments, create_pipeline, parse_size
from synboost_ros.options import BACKEND_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser("bench", help="time the pipeline per stage")
    add_model_arguments(parser)
    parser.add_argument("--size", type=parse_size, default=(256, 512), help="camera HxW")
    parser.add_argument("--iters", type=int, default=30, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument(
        "--compare",
        nargs="+",
        default=[],
        choices=[b for b in BACKEND_CHOICES if b != "auto"],
        help="also time these backends, taking turns frame by frame (reported under 'compare')",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Benchmark the chosen backend (and any --compare backends)."""
    from synboost_ros.benchmark import run_benchmark

    pipelines = []
    for backend in [args.backend, *args.compare]:
        args.backend = backend
        pipelines.append(create_pipeline(args))
    reports = run_benchmark(pipelines, args.size, args.iters, args.warmup)
    main, others = reports[0], reports[1:]
    if args.json:
        result = main.to_json()
        if others:
            result["compare"] = {r.backend: r.to_json() for r in others}
        print(json.dumps(result))
        return 0
    for report in reports:
        stages = ", ".join(f"{k} {v['p50']:.1f}" for k, v in report.stages.items())
        print(
            f"{report.backend:12s} {report.device} {report.precision} preset={report.preset} "
            f"{report.size[0]}x{report.size[1]}: {report.fps:.2f} fps, total p50 "
            f"{report.total_ms['p50']:.1f} ms p95 {report.total_ms['p95']:.1f} ms ({stages})"
        )
    flops = main.flops
    per_stage = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in flops.items() if k != "total")
    print(f"GFLOP per frame: {flops['total'] / 1e9:.2f} ({per_stage}); FLOP = 2 x MAC")
    return 0
