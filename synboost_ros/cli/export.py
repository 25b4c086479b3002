"""``synboost export onnx``: one fixed-shape ONNX graph per stage, ready for TensorRT."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from synboost_ros.cli.common import add_model_arguments, model_options
from synboost_ros.options import MODEL_OPTION_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser("export", help="export the model for deployment")
    formats = parser.add_subparsers(dest="format", required=True)
    onnx_parser = formats.add_parser("onnx", help="write segmentation/synthesis/dissimilarity.onnx")
    onnx_parser.add_argument("--out", type=Path, required=True, help="output folder")
    # The ensemble weights are a graph input, given when the graphs run.
    add_model_arguments(onnx_parser, [n for n in MODEL_OPTION_NAMES if n != "ensemble_weights"])
    onnx_parser.set_defaults(func=run_onnx)


def run_onnx(args: argparse.Namespace) -> int:
    """Export the three stage graphs and print their input/output shapes as JSON."""
    from synboost_ros.export import write_graph_folder
    from synboost_ros.model_loading import load_or_random_model
    from synboost_ros.stages import stage_specs

    options = model_options(args)
    model = load_or_random_model(
        options.preset,
        options.weights or None,
        options.random_weights,
        options.segmentation_size,
        options.synthesis_size,
    )
    paths = write_graph_folder(model, args.out)
    specs = stage_specs(model.config)
    summary = {
        name: {
            "path": str(path),
            "inputs": {t.name: list(t.shape) for t in specs[name].inputs},
            "outputs": {t.name: list(t.shape) for t in specs[name].outputs},
        }
        for name, path in paths.items()
    }
    print(json.dumps(summary, indent=2))
    return 0
