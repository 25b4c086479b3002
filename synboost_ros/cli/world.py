"""``synboost world generate``: write a procedural driving data set."""

from __future__ import annotations

import argparse
import os

from synboost_ros.data.world import generate_world


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (e.g. ``256x512``) into (height, width)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"size must look like HxW, e.g. 256x512, got {text!r}")
    height, width = int(parts[0]), int(parts[1])
    if height < 8 or width < 8:
        raise argparse.ArgumentTypeError(f"size must be at least 8x8, got {text!r}")
    return height, width


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``world`` command and its ``generate`` action."""
    parser = subparsers.add_parser("world", help="procedural driving scenes (training data)")
    actions = parser.add_subparsers(dest="action", required=True)
    generate = actions.add_parser(
        "generate",
        help="write scenes in the Cityscapes layout (or, with --anomalies, the Fishyscapes format)",
    )
    generate.add_argument("--out", required=True, help="output folder")
    generate.add_argument("--n", type=int, required=True, help="number of scenes")
    generate.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    generate.add_argument(
        "--size", type=parse_size, default=(256, 512), help="HxW (default 256x512)"
    )
    generate.add_argument(
        "--anomalies",
        action="store_true",
        help="add anomalies; write OUT/images, OUT/labels and OUT/cityscapes",
    )
    generate.add_argument("--split", choices=("train", "val"), default="train")
    generate.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="processes (default: all cores)"
    )
    generate.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    generate_world(
        out=args.out,
        n=args.n,
        seed=args.seed,
        size=args.size,
        anomalies=args.anomalies,
        split=args.split,
        workers=args.workers,
    )
    return 0
