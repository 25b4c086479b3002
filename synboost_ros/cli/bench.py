"""``synboost bench``: measure the pipeline's speed on this machine."""

from __future__ import annotations

import argparse
import json

from synboost_ros.cli.common import add_model_arguments, create_pipeline, parse_size
from synboost_ros.options import BACKEND_CHOICES, device_kind
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
    parser.add_argument(
        "--peak-seconds",
        type=float,
        default=0.5,
        help="seconds of matrix products per precision measuring this machine's peak, the "
        "reference of each stage's achieved GFLOP/s (0 = no peak)",
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
    peaks = _peaks(reports, args.peak_seconds)
    main, others = reports[0], reports[1:]
    if args.json:
        weights = weights_label(args)
        result = {
            **_report_json(main, peaks),
            **device_figures(pipelines[0], main, weights),
            "outputs": sorted(args.outputs or OUTPUT_NAMES),
            "requested": {"precision": args.precision, "graphs": args.graphs},
        }
        if others:
            result["compare"] = {
                r.backend: {**_report_json(r, peaks), **device_figures(p, r, weights)}
                for p, r in zip(pipelines[1:], others, strict=True)
            }
        result["peak_gflops_per_s"] = peaks
        print(json.dumps(result))
        return 0
    for pipeline, report in zip(pipelines, reports, strict=True):
        stages = ", ".join(f"{k} {v['p50']:.1f}" for k, v in report.stages.items())
        print(
            f"{report.backend:12s} {report.device} {report.precision} {report.layout} "
            f"preset={report.preset} graphs={pipeline.graphs} "
            f"{report.size[0]}x{report.size[1]}: {report.fps:.2f} fps, total p50 "
            f"{report.total_ms['p50']:.1f} ms p95 {report.total_ms['p95']:.1f} ms ({stages})"
        )
    flops = main.flops
    per_stage = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in flops.items() if k != "total")
    print(f"GFLOP per frame: {flops['total'] / 1e9:.2f} ({per_stage}); FLOP = 2 x MAC")
    if peaks:
        measured = ", ".join(f"{p} {v:.1f}" for p, v in peaks.items())
        print(f"measured matmul peak, GFLOP/s: {measured}")
    from synboost_ros.bench_efficiency import efficiency_table

    for report in reports:
        print(f"{report.backend} {report.precision}:")
        print(efficiency_table(_efficiency(report, peaks), report.precision))
    return 0


def _peaks(reports: list, seconds: float) -> dict[str, float]:
    """Matmul GFLOP/s on the first report's device: fp32 and bf16 on a CPU; fp32 and the
    precisions that ran elsewhere."""
    if seconds <= 0:
        return {}
    from synboost_ros.peak import CPU_PEAK_PRECISIONS, PEAK_DTYPES, measure_peaks

    device = reports[0].device
    wanted = list(CPU_PEAK_PRECISIONS) if device_kind(device) == "cpu" else ["fp32"]
    wanted += [r.precision for r in reports if r.precision in PEAK_DTYPES]
    return measure_peaks(tuple(dict.fromkeys(wanted)), device, seconds)


def _efficiency(report, peaks: dict[str, float]) -> dict:
    from synboost_ros.bench_efficiency import reference_peak, report_efficiency

    return report_efficiency(report, reference_peak(report.precision, peaks))


def _report_json(report, peaks: dict[str, float]) -> dict:
    result = report.to_json()
    result["efficiency"] = _efficiency(report, peaks)
    return result
