"""``synboost bag process``: a recorded camera topic through the model, offline, into a new bag
with what ``anomaly_node`` publishes, plus a latency summary and, with ground truth, AP / FPR95.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from synboost_ros.cli.common import add_model_arguments, model_options
from synboost_ros.options import ModelOptions

# Node parameters that mean nothing offline (no subscription, no /diagnostics, no self-test).
ONLINE_ONLY = ("input", "input_qos", "diagnostics_period", "latency_budget_ms", "min_rate_hz")
ONLINE_ONLY += ("self_test",)
INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bag`` command and its ``process`` action."""
    parser = subparsers.add_parser("bag", help="process recorded rosbag2 files offline")
    actions = parser.add_subparsers(dest="action", required=True)
    process = actions.add_parser(
        "process",
        help="run a camera topic of a bag through the model; write the node's outputs to a bag",
        description="Reads a rosbag2 (mcap or sqlite3), runs every frame of --topic "
        "(sensor_msgs/Image or CompressedImage) through the pipeline in process, and writes "
        "every output topic of anomaly_node (/<node-name>/<topic>: the images, timing, "
        "anomaly_summary, anomaly_objects) with the input header at the input's bag time into "
        "a new bag, with the input topics copied through. Prints per-stage p50/p95 and FPS, "
        "and with --gt-topic (mono8 labels 0/1/255) AP / FPR95 / AUROC.",
    )
    process.add_argument("source", type=Path, metavar="IN", help="input bag folder or file")
    process.add_argument("--topic", required=True, help="camera topic (Image or CompressedImage)")
    process.add_argument("--out", required=True, type=Path, help="new output bag folder")
    process.add_argument("--gt-topic", help="ground-truth labels, paired by header stamp")
    process.add_argument(
        "--storage", choices=("mcap", "sqlite3"), help="output storage (default: the input's)"
    )
    process.add_argument(
        "--node-name", default="anomaly_node", help="outputs go under /NAME/ (anomaly_node)"
    )
    process.add_argument(
        "--no-copy-input",
        dest="copy_input",
        action="store_false",
        help="write only the outputs, not the input topics",
    )
    process.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="a node parameter other than the model options (e.g. temporal_fusion:=false, "
        "publish_synthesized:=true); repeatable",
    )
    add_model_arguments(process)
    process.add_argument("--json", action="store_true", help="print one JSON object")
    process.set_defaults(func=_process)


def _value(text: str, default: Any) -> Any:
    """``text`` read as the type of ``default``."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() == "true"
    return type(default)(text)


def node_parameters(model: ModelOptions, settings: list[str]) -> Any:
    """The node's parameters: ``model`` plus ``NAME:=VALUE`` settings; ``ValueError`` naming
    every bad one."""
    from synboost_ros.ros.parameters import NodeParameters

    defaults = NodeParameters()
    model_names = {f.name for f in dataclasses.fields(ModelOptions)}
    values = {name: getattr(model, name) for name in model_names}
    problems = []
    for setting in settings:
        name, separator, text = setting.partition(":=")
        if not separator:
            name, separator, text = setting.partition("=")
        if not separator or not hasattr(defaults, name):
            problems.append(f"{setting!r} is not NAME:=VALUE with a node parameter NAME")
        elif name in model_names:
            problems.append(f"{name} is a model option: use --{name.replace('_', '-')}")
        elif name in ONLINE_ONLY:
            problems.append(f"{name} has no meaning offline")
        else:
            try:
                values[name] = _value(text, getattr(defaults, name))
            except ValueError as error:
                problems.append(f"{name}: {error}")
    params = defaults.replace(**values)
    problems += params.problems()
    if problems:
        raise ValueError("invalid parameters: " + "; ".join(problems))
    return params


def _process(args: argparse.Namespace) -> int:
    from synboost_ros.pipeline import AnomalyPipeline
    from synboost_ros.ros.bag_processing import BagProcessOptions, BagProcessor

    params = node_parameters(model_options(args), args.param)
    options = BagProcessOptions(
        source=args.source,
        topic=args.topic,
        out=args.out,
        gt_topic=args.gt_topic,
        storage=args.storage,
        node_name=args.node_name,
        copy_input=args.copy_input,
    )
    arguments = params.pipeline_arguments()
    processor = BagProcessor(lambda: AnomalyPipeline.create(**arguments), options, params)
    try:
        report = processor.run()
    except KeyboardInterrupt:
        print(
            f"synboost bag: interrupted; {processor.frames_out} frames processed are in "
            f"{args.out}, which is complete and readable",
            file=sys.stderr,
        )
        return INTERRUPTED
    if args.json:
        print(json.dumps(report))
    else:
        print("\n".join(summary_lines(report)))
    if report["frames_out"] == 0:
        print("synboost bag: error: no frame could be processed", file=sys.stderr)
        return 1
    return 0


def _ms(value: dict[str, float]) -> str:
    return f"{value['p50']:.1f} / {value['p95']:.1f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report as a few lines of text."""
    lines = [
        f"{report['frames_out']} of {report['frames_in']} frames of {report['topic']} processed "
        f"({report['frames_bad']} bad) in {report['wall_s']:.1f} s: {report['fps']} FPS "
        f"({report['backend']} / {report['device']} / {report['precision']})"
    ]
    lines += [f"  bad frame: {reason}" for reason in report["bad_frames"]]
    if report.get("input_note"):
        lines.append(f"input: {report['input_note']}")
    stages = report["stages_ms"]
    if stages:
        lines.append("stage ms, p50 / p95:")
        lines += [f"  {stage:<14} {_ms(value)}" for stage, value in stages.items()]
    truth = report.get("ground_truth")
    if truth is not None:
        scores = (
            f"AP {truth['ap']:.4f}, FPR95 {truth['fpr95']:.4f}, AUROC {truth['auroc']:.4f}"
            if truth["ap"] is not None
            else f"no metrics: {truth['note']}"
        )
        lines.append(
            f"ground truth {truth['topic']}: {truth['frames_scored']} frames scored, {scores} "
            f"({truth['labels_bad']} bad labels, {truth['frames_without_label']} frames without "
            f"label, {truth['labels_without_frame']} labels without frame)"
        )
        lines += [f"  bad label: {reason}" for reason in truth["bad_labels"]]
    written = report["topics_written"]
    lines.append(
        f"wrote {report['output']} ({report['storage']}): {len(written)} topics, "
        f"{sum(written.values())} messages, outputs under {report['node_name']}/"
    )
    return lines
