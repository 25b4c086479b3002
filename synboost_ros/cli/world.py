"""``synboost world generate``: write a procedural driving data set."""

from __future__ import annotations

import argparse
import functools
import os

from synboost_ros.cli.common import parse_size
from synboost_ros.data.world import generate_world
from synboost_ros.data.world.render import MIN_SIDE


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
        "--size",
        type=functools.partial(parse_size, minimum=MIN_SIDE),
        default=(256, 512),
        help=f"HxW, at least {MIN_SIDE}x{MIN_SIDE} (default 256x512)",
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
