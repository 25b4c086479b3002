"""``synboost weights``: tools for weights folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from synboost_ros.model import MODEL_PARTS


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


def run_combine(args: argparse.Namespace) -> int:
    """Combine the named parts into a new folder and print its manifest path."""
    from synboost_ros.weights import combine_weights

    sources = {part: getattr(args, part) for part in MODEL_PARTS if getattr(args, part)}
    if not sources:
        raise ValueError("name at least one part to take, e.g. --synthesis DIR")
    print(combine_weights(sources, args.base, args.out))
    return 0
