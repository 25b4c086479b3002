"""``synboost infer``: run the pipeline on image files and write the maps as PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from synboost_ros.cli.common import add_model_arguments, create_pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``infer`` subcommand."""
    parser = subparsers.add_parser("infer", help="detect anomalies in image files")
    parser.add_argument("images", nargs="+", type=Path, help="input images (png, jpg, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--alpha", type=float, default=0.6, help="overlay strength")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write <stem>_semantic/_entropy/_distance/_perceptual/_anomaly/_overlay.png per image."""
    from synboost_ros.visualize import heatmap, overlay, read_rgb, semantic_color, write_rgb

    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"input images not found: {', '.join(missing)}")
    pipeline = create_pipeline(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in tqdm(args.images, desc="infer", unit="img"):
        image = read_rgb(path)
        result = pipeline(image)
        stem = args.out / path.stem
        write_rgb(f"{stem}_semantic.png", semantic_color(result.semantic))
        for name in ("entropy", "distance", "perceptual", "dissimilarity", "anomaly"):
            write_rgb(f"{stem}_{name}.png", heatmap(getattr(result, name)))
        write_rgb(f"{stem}_synthesized.png", result.synthesized)
        write_rgb(f"{stem}_overlay.png", overlay(image, result.anomaly, args.alpha))
    print(
        f"wrote maps of {len(args.images)} image(s) to {args.out} ({pipeline.backend.describe()})"
    )
    return 0
