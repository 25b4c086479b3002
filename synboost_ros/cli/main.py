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
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Bad input, a backend or device this machine lacks and a command that needs PyTorch where
    it is not installed end in one line on stderr and exit code 2; ``--debug`` shows the
    traceback instead.
    """
    args = build_parser().parse_args(argv)
    # After parsing: --help loads no torch.
    from synboost_ros.backends.base import BackendUnavailableError
    from synboost_ros.manifest import ModelLoadError, WeightsNotFoundError
    from synboost_ros.torch_missing import torch_missing

    try:
        return int(args.func(args) or 0)
    except ImportError as error:
        missing = torch_missing(error, f"synboost {args.command}")
        if args.debug or missing is None:
            raise
        print(f"synboost {args.command}: error: {missing}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, ModelLoadError, BackendUnavailableError) as error:
        if args.debug:
            raise
        hint = ""
        if isinstance(error, WeightsNotFoundError) and hasattr(args, "random_weights"):
            hint = " (--weights PATH or --random-weights)"
        print(f"synboost {args.command}: error: {error}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
