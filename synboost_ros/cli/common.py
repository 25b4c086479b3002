"""Arguments shared by subcommands that load a model."""

from __future__ import annotations

import argparse

from synboost_ros.backends.factory import BACKEND_CHOICES, DEVICE_CHOICES, PRECISION_CHOICES
from synboost_ros.config import PRESETS, Size


def add_model_arguments(parser: argparse.ArgumentParser, default_backend: str = "auto") -> None:
    """--preset, --weights / --random-weights, --backend, --device, --precision."""
    parser.add_argument("--preset", default="edge", choices=sorted(PRESETS))
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--weights", help="weights folder or manifest.json (default: the shipped weights)"
    )
    source.add_argument(
        "--random-weights",
        action="store_true",
        help="use random weights: outputs are meaningless (tests and timing only)",
    )
    parser.add_argument("--backend", default=default_backend, choices=BACKEND_CHOICES)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES)


def parse_size(text: str) -> Size:
    """Parse ``HxW`` (e.g. ``256x512``) into (height, width)."""
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x512, got {text!r}") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return height, width


def create_pipeline(args: argparse.Namespace):
    """Build an ``AnomalyPipeline`` from the model arguments."""
    from synboost_ros.pipeline import AnomalyPipeline

    return AnomalyPipeline.create(
        preset=args.preset,
        weights=args.weights,
        random_weights=args.random_weights,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
    )
