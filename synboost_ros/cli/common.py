"""Arguments shared by subcommands: the model options as flags, sizes and counts."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Collection
from typing import Any

from synboost_ros.config import Size
from synboost_ros.options import MODEL_OPTION_NAMES, ModelOptions, OptionSpec

_SIZE = re.compile(r"(\d+)x(\d+)")


def parse_size(text: str, minimum: int = 1) -> Size:
    """``HxW`` (e.g. ``256x512``) -> (height, width): two whole numbers, each >= ``minimum``."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"size must look like HxW, e.g. 256x512, got {text!r}")
    height, width = int(match[1]), int(match[2])
    if height < minimum or width < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return height, width


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_model_arguments(
    parser: argparse.ArgumentParser,
    names: Collection[str] = MODEL_OPTION_NAMES,
    preset_from_weights: bool = False,
) -> None:
    """The ``ModelOptions`` fields in ``names`` as flags: ``--preset``, ``--weights`` /
    ``--random-weights`` (one or the other), ``--backend``, ``--device``, ``--precision``,
    ``--dla-core``, ``--calibration``, ``--segmentation-size`` / ``--synthesis-size HxW``,
    ``--ensemble-weights W W W W``.

    With ``preset_from_weights``, ``--preset`` left out is None in the parsed arguments (the
    command then takes the preset of ``--weights``); ``model_options`` still gives the default.
    """
    groups: dict[str, Any] = {}
    for item in dataclasses.fields(ModelOptions):
        spec: OptionSpec = item.metadata["spec"]
        if item.name not in names:
            continue
        target = parser
        if spec.exclusive:
            if spec.exclusive not in groups:
                groups[spec.exclusive] = parser.add_mutually_exclusive_group()
            target = groups[spec.exclusive]
        if spec.size_of is not None:
            stage, axis = spec.size_of
            if axis == 0:
                target.add_argument(
                    f"--{stage}-size",
                    type=parse_size,
                    metavar="HxW",
                    help=f"{stage} input size, multiples of {spec.step} (default: the preset's)",
                )
            continue
        flag = "--" + item.name.replace("_", "-")
        if isinstance(item.default, bool):
            target.add_argument(flag, action="store_true", help=spec.description)
        elif spec.count:
            target.add_argument(
                flag, type=float, nargs=spec.count, metavar="W", help=spec.description
            )
        else:
            default = item.default or None
            help_text = spec.description + (f" (default: {default})" if default else "")
            if preset_from_weights and item.name == "preset":
                default = None
                help_text = f"{spec.description} (default: the weights', else {item.default})"
            if spec.indexed:  # cuda:N cannot be listed as argparse choices
                target.add_argument(
                    flag,
                    default=default,
                    type=_one_of(spec),
                    metavar="{" + spec.allowed().replace(", ", ",") + "}",
                    help=help_text,
                )
            else:
                target.add_argument(
                    flag,
                    default=default,
                    type=type(item.default) if isinstance(item.default, (int, float)) else None,
                    choices=spec.choices or None,
                    help=help_text,
                )


def _one_of(spec: OptionSpec) -> Callable[[str], str]:
    """An argparse type accepting what ``spec`` accepts, e.g. ``cuda:1``."""

    def check(text: str) -> str:
        if not spec.accepts(text):
            raise argparse.ArgumentTypeError(f"must be one of {spec.allowed()}, got {text!r}")
        return text

    return check


def model_options(args: argparse.Namespace) -> ModelOptions:
    """The ``ModelOptions`` given by the flags of ``add_model_arguments`` (others: defaults).

    Raises ``ValueError`` naming every invalid value.
    """
    values: dict[str, Any] = {}
    for item in dataclasses.fields(ModelOptions):
        spec: OptionSpec = item.metadata["spec"]
        if spec.size_of is not None:
            stage, axis = spec.size_of
            size = getattr(args, f"{stage}_size", None)
            if size is not None:
                values[item.name] = size[axis]
            continue
        value = getattr(args, item.name, None)
        if value is not None:
            values[item.name] = tuple(value) if spec.count else value
    options = ModelOptions(**values)
    problems = options.problems()
    if problems:
        raise ValueError("invalid model options: " + "; ".join(problems))
    return options


def create_pipeline(args: argparse.Namespace):
    """Build an ``AnomalyPipeline`` from the model arguments."""
    from synboost_ros.pipeline import AnomalyPipeline

    return AnomalyPipeline.create(**model_options(args).pipeline_arguments())
