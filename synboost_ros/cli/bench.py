"""``synboost bench``: measure the pipeline's speed on this machine."""

from __future__ import annotations

import argparse
import json

from synboost_ros.cli.common import add_model_arguments, create_pipeline, parse_size
from synboost_ros.options import BACKEND_CHOICES
from synboost_ros.pipeline import OUTPUT_NAMES

RESIDENT_CHOICES = ("auto", "on", "off")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand."""
    parser = subparsers.add_parser("bench", help="time the pipeline per stage")
    add_model_arguments(parser)
    parser.add_argument(
        "--size", "--camera", dest="size", type=parse_size, default=(256, 512), help="camera HxW"
    )
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
    add_device_arguments(parser)
    parser.set_defaults(func=run)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device-resident`` and ``--outputs``: how frames run and which maps come back."""
    parser.add_argument(
        "--device-resident",
        choices=RESIDENT_CHOICES,
        default="auto",
        help="keep frames on the torch backend's device (auto: on CUDA; on: also on the CPU)",
    )
    parser.add_argument(
        "--outputs",
        nargs="+",
        default=None,
        choices=OUTPUT_NAMES,
        help="maps computed and copied back per frame (default: all)",
    )


def weights_label(args: argparse.Namespace) -> str:
    """The weights a bench ran, for its report."""
    if args.random_weights:
        return "random (timing only: the maps are meaningless)"
    return args.weights or f"shipped {args.preset or 'default'} weights"


def prepare_pipeline(pipeline, resident: str) -> None:
    """Apply ``--device-resident`` (auto leaves the backend's choice)."""
    if resident != "auto":
        pipeline.device_resident = resident == "on"


def run(args: argparse.Namespace) -> int:
    """Benchmark the chosen backend (and any --compare backends)."""
    from synboost_ros.benchmark import run_benchmark
    from synboost_ros.device_bench import device_figures

    pipelines = []
    for backend in [args.backend, *args.compare]:
        args.backend = backend
        pipelines.append(create_pipeline(args))
        prepare_pipeline(pipelines[-1], args.device_resident)
    reports = run_benchmark(pipelines, args.size, args.iters, args.warmup, outputs=args.outputs)
    main, others = reports[0], reports[1:]
    if args.json:
        weights = weights_label(args)
        result = {
            **main.to_json(),
            **device_figures(pipelines[0], main, weights),
            "outputs": sorted(args.outputs or OUTPUT_NAMES),
            "requested": {"precision": args.precision, "graphs": args.graphs},
        }
        if others:
            result["compare"] = {
                r.backend: {**r.to_json(), **device_figures(p, r, weights)}
                for p, r in zip(pipelines[1:], others, strict=True)
            }
        print(json.dumps(result))
        return 0
    for pipeline, report in zip(pipelines, reports, strict=True):
        stages = ", ".join(f"{k} {v['p50']:.1f}" for k, v in report.stages.items())
        print(
            f"{report.backend:12s} {report.device} {report.precision} preset={report.preset} "
            f"graphs={pipeline.graphs} "
            f"{report.size[0]}x{report.size[1]}: {report.fps:.2f} fps, total p50 "
            f"{report.total_ms['p50']:.1f} ms p95 {report.total_ms['p95']:.1f} ms ({stages})"
        )
    flops = main.flops
    per_stage = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in flops.items() if k != "total")
    print(f"GFLOP per frame: {flops['total'] / 1e9:.2f} ({per_stage}); FLOP = 2 x MAC")
    return 0
