"""Entry point of the ``synboost`` command: one module per subcommand."""

from __future__ import annotations

import argparse
import sys

from synboost_ros.cli import (
    ablation,
    bag,
    bench,
    demo,
    eval,
    export,
    infer,
    soak,
    train,
    weights,
    world,
)

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func``; they
# import torch only inside the commands, so that ``--help`` stays quick.
SUBCOMMANDS = (infer, export, bench, world, train, eval, ablation, demo, bag, weights, soak)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser."""
    parser = argparse.ArgumentParser(
        prog="synboost", description="SynBoost pixel-wise anomaly detection for driving images."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    from synboost_ros.weights import ModelLoadError  # after parsing: --help loads no torch

    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ModelLoadError) as error:
        print(f"synboost {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
