"""Entry point of the ``synboost`` command: one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module defines ``register(subparsers)`` which adds its parser and sets ``func``.
SUBCOMMAND_MODULES = (
    "infer",
    "export",
    "bench",
    "world",
    "train",
    "eval",
    "ablation",
    "demo",
    "weights",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser."""
    parser = argparse.ArgumentParser(
        prog="synboost", description="SynBoost pixel-wise anomaly detection for driving images."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"synboost_ros.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    from synboost_ros.weights import ModelLoadError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, ModelLoadError) as error:
        print(f"synboost {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
