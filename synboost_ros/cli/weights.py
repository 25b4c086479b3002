"""``synboost weights``: tools for weights folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from synboost_ros.config import MODEL_PARTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``weights`` subcommand."""
    parser = subparsers.add_parser("weights", help="inspect and combine weights folders")
    actions = parser.add_subparsers(dest="action", required=True)
    combine = actions.add_parser(
        "combine", help="take some parts from other folders (e.g. parts trained in parallel)"
    )
    combine.add_argument("--base", type=Path, required=True, help="folder for the other parts")
    combine.add_argument("--out", type=Path, required=True, help="new weights folder")
    for part in MODEL_PARTS:
        combine.add_argument(f"--{part}", type=Path, help=f"folder to take the {part} part from")
    combine.set_defaults(func=run_combine)
    calibrate = actions.add_parser(
        "calibrate", help="set the perceptual-difference scale from training images"
    )
    calibrate.add_argument("--weights", type=Path, required=True, help="weights folder")
    calibrate.add_argument("--data", type=Path, required=True, help="Cityscapes-layout root")
    calibrate.add_argument("--split", default="train")
    calibrate.add_argument("--limit", type=int, default=100, help="images to use")
    calibrate.add_argument("--quantile", type=float, default=0.95)
    calibrate.add_argument("--out", type=Path, required=True, help="new weights folder")
    calibrate.set_defaults(func=run_calibrate)


def run_combine(args: argparse.Namespace) -> int:
    """Combine the named parts into a new folder and print its manifest path."""
    from synboost_ros.weights import combine_weights

    sources = {part: getattr(args, part) for part in MODEL_PARTS if getattr(args, part)}
    if not sources:
        raise ValueError("name at least one part to take, e.g. --synthesis DIR")
    print(combine_weights(sources, args.base, args.out))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """Calibrate the perceptual scale on the first ``--limit`` images and save a new folder."""
    from synboost_ros.data.cityscapes import CityscapesDataset
    from synboost_ros.training.perceptual_calibration import calibrate_perceptual_scale
    from synboost_ros.training.provenance import extend_provenance
    from synboost_ros.weights import load_model, save_weights

    model, manifest = load_model(args.weights)
    dataset = CityscapesDataset(args.data, args.split)
    images = (dataset[i].image for i in range(min(args.limit, len(dataset))))
    calibrated = calibrate_perceptual_scale(model, images, args.quantile)
    scale = calibrated.config.perceptual_scale
    step = {
        "stage": "perceptual calibration",
        "data": str(args.data),
        "images": min(args.limit, len(dataset)),
        "quantile": args.quantile,
        "perceptual_scale": scale,
    }
    print(save_weights(calibrated, args.out, extend_provenance(manifest.provenance, step)))
    print(f"perceptual_scale = {scale:.6g}")
    return 0
