"""``synboost export onnx``: one fixed-shape ONNX graph per stage, ready for TensorRT.

``synboost export tensorrt``: build (or load) the TensorRT engines the node would use with the
same model options, and exit (Autoware's ``build_only``): run it once after installing, since
the first build takes minutes on a Jetson. Like the node, it builds from the ONNX graphs kept
with the weights and then needs no torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from synboost_ros.cli.common import add_model_arguments, model_options
from synboost_ros.options import MODEL_OPTION_NAMES, ModelOptions

if TYPE_CHECKING:  # --help loads no torch
    from synboost_ros.model import SynBoostModel


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser("export", help="export the model for deployment")
    formats = parser.add_subparsers(dest="format", required=True)
    onnx_parser = formats.add_parser("onnx", help="write segmentation/synthesis/dissimilarity.onnx")
    onnx_parser.add_argument("--out", type=Path, required=True, help="output folder")
    # The ensemble weights are a graph input, given when the graphs run.
    add_model_arguments(onnx_parser, [n for n in MODEL_OPTION_NAMES if n != "ensemble_weights"])
    onnx_parser.set_defaults(func=run_onnx)
    trt_parser = formats.add_parser(
        "tensorrt",
        help="build the node's TensorRT engines for these options into the engine cache, exit",
    )
    trt_parser.add_argument(
        "--cache-dir",
        type=Path,
        help="engine cache folder (default: the node's, $SYNBOOST_CACHE_DIR/tensorrt)",
    )
    names = [n for n in MODEL_OPTION_NAMES if n not in ("ensemble_weights", "backend")]
    add_model_arguments(trt_parser, names)
    trt_parser.set_defaults(func=run_tensorrt)


def run_onnx(args: argparse.Namespace) -> int:
    """Export the three stage graphs and print their input/output shapes as JSON."""
    from synboost_ros.export import write_graph_folder
    from synboost_ros.stage_io import stage_specs

    options = model_options(args)
    model = _model(options)
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


def run_tensorrt(args: argparse.Namespace) -> int:
    """Build or load each stage's engine, logging each stage with its elapsed time; print
    the engines (file, precision, seconds) as JSON."""
    from synboost_ros.backends.factory import resolve_device
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend
    from synboost_ros.calibration import calibration_set
    from synboost_ros.model_source import ModelSource
    from synboost_ros.options import resolve_precision

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger(__name__)
    options = model_options(args)
    start = time.monotonic()
    device = resolve_device("cuda" if options.device == "auto" else options.device)
    source = ModelSource.open(
        options.preset,
        options.weights or None,
        options.random_weights,
        options.segmentation_size,
        options.synthesis_size,
    )
    graphs = source.onnx_graphs("tensorrt")
    log.info("model %s graphs ready in %.1f s", options.preset, time.monotonic() - start)
    log.warning("building TensorRT engines, this takes minutes (unless they are cached)")
    backend = TensorRTBackend(
        graphs,
        source.config,
        device,
        resolve_precision(options.precision, device),
        cache_dir=args.cache_dir,
        dla_core=options.dla_core,
        calibration=calibration_set(source, options.calibration) if options.calibration else None,
    )
    log.info("TensorRT engines ready in %.1f s", time.monotonic() - start)
    summary = {
        stage: {"engine": path, "precision": backend.stage_precisions[stage], "seconds": seconds}
        for stage, (path, seconds) in backend.stage_engines.items()
    }
    print(json.dumps(summary, indent=2))
    return 0


def _model(options: ModelOptions) -> SynBoostModel:
    """The model the options name: its weights (or random ones) at its stage sizes."""
    from synboost_ros.model_loading import load_or_random_model

    return load_or_random_model(
        options.preset,
        options.weights or None,
        options.random_weights,
        options.segmentation_size,
        options.synthesis_size,
    )
