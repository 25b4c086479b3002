"""The one model-options schema: precision rule, CLI flags and node parameters from it."""

from __future__ import annotations

import argparse
import dataclasses
import logging

import pytest

from synboost_ros import options as options_module
from synboost_ros.cli.common import add_model_arguments, model_options, parse_size, positive_int
from synboost_ros.config import PRESETS
from synboost_ros.options import (
    DEFAULT_OPTIONS,
    DEFAULT_PRESET,
    MODEL_OPTION_NAMES,
    PRECISION_CHOICES,
    ModelOptions,
    resolve_precision,
)
from synboost_ros.ros.parameters import NodeParameters, parameter_spec


def model_parser(names=MODEL_OPTION_NAMES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser, names)
    return parser


@pytest.mark.parametrize(
    ("precision", "device", "runs"),
    [
        ("auto", "cuda", "fp16"),
        ("auto", "cpu", "fp32"),
        ("fp16", "cuda", "fp16"),
        ("fp32", "cuda", "fp32"),
        ("fp32", "cpu", "fp32"),
        ("int8", "cuda:1", "int8"),
    ],
)
def test_precision_rule(precision, device, runs, caplog, monkeypatch):
    monkeypatch.setattr(options_module, "native_bf16", lambda: False)  # a CPU without bf16
    with caplog.at_level(logging.INFO):
        assert resolve_precision(precision, device) == runs
    assert caplog.text == ""


def test_fp16_on_the_cpu_runs_fp32_with_one_log_line(caplog):
    with caplog.at_level(logging.INFO):
        assert resolve_precision("fp16", "cpu") == "fp32"
    assert [r.getMessage() for r in caplog.records] == [
        "fp16 needs a CUDA device; running fp32 on the CPU"
    ]


@pytest.mark.parametrize(
    ("precision", "cpu_bf16", "runs"),
    [
        ("auto", True, "bf16"),
        ("auto", False, "fp32"),
        ("bf16", True, "bf16"),
        ("fp32", True, "fp32"),
    ],
)
def test_bf16_runs_on_cpus_with_bf16_instructions(precision, cpu_bf16, runs, caplog):
    with caplog.at_level(logging.INFO):
        assert resolve_precision(precision, "cpu", cpu_bf16=cpu_bf16) == runs
    assert caplog.text == ""


def test_bf16_asked_for_without_bf16_instructions_runs_emulated_with_a_warning(caplog):
    with caplog.at_level(logging.INFO):
        assert resolve_precision("bf16", "cpu", cpu_bf16=False) == "bf16"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "bf16 runs emulated, slower than fp32" in record.getMessage()


def test_auto_follows_this_machines_cpu(monkeypatch):
    monkeypatch.setattr(options_module, "native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "cuda") == "fp16"  # the CPU's bf16 plays no part on a GPU
    monkeypatch.setattr(options_module, "native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"


def test_precision_rule_refuses_unknown_names():
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_precision("auto", "auto")  # the device is resolved first


def test_one_default_everywhere():
    assert DEFAULT_PRESET in PRESETS
    assert DEFAULT_OPTIONS.preset == DEFAULT_PRESET and DEFAULT_OPTIONS.precision == "auto"
    assert PRECISION_CHOICES[0] == "auto"
    node = NodeParameters()
    for name in MODEL_OPTION_NAMES:
        assert getattr(node, name) == getattr(DEFAULT_OPTIONS, name), name
        assert parameter_spec(name) == ModelOptions.__dataclass_fields__[name].metadata["spec"]


def test_cli_defaults_are_the_schema_defaults():
    assert model_options(model_parser().parse_args([])) == DEFAULT_OPTIONS


def test_every_model_option_becomes_a_flag():
    args = model_parser().parse_args(
        ["--preset", "light", "--weights", "/w", "--backend", "torch", "--device", "cpu",
         "--precision", "fp16", "--segmentation-size", "192x256", "--synthesis-size", "64x128",
         "--ensemble-weights", "1", "0", "0.5", "0"]
    )  # fmt: skip
    options = model_options(args)
    assert options == ModelOptions(
        preset="light",
        weights="/w",
        backend="torch",
        device="cpu",
        precision="fp16",
        segmentation_height=192,
        segmentation_width=256,
        synthesis_height=64,
        synthesis_width=128,
        ensemble_weights=(1.0, 0.0, 0.5, 0.0),
    )
    assert options.pipeline_arguments()["segmentation_size"] == (192, 256)
    assert options.pipeline_arguments()["weights"] == "/w"


def test_flags_take_the_choices_of_the_schema(capsys):
    parser = model_parser()
    for flag, value in (("--precision", "fp8"), ("--preset", "huge")):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, value])
        assert "invalid choice" in capsys.readouterr().err


def test_weights_and_random_weights_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        model_parser().parse_args(["--weights", "/w", "--random-weights"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(ValueError, match="set either weights or random_weights, not both"):
        model_options(argparse.Namespace(weights="/w", random_weights=True))


def test_cli_values_follow_the_node_rules():
    args = model_parser().parse_args(["--segmentation-size", "100x192"])
    with pytest.raises(ValueError, match="segmentation_height must be a multiple of 32"):
        model_options(args)
    args = model_parser().parse_args(["--ensemble-weights", "0", "0", "0", "0"])
    with pytest.raises(ValueError, match="not all 0"):
        model_options(args)


def test_a_subset_of_the_flags():
    parser = model_parser(("preset", "weights", "random_weights"))
    flags = {a.dest for a in parser._actions} - {"help"}
    assert flags == {"preset", "weights", "random_weights"}
    options = model_options(parser.parse_args(["--random-weights"]))
    assert options == dataclasses.replace(DEFAULT_OPTIONS, random_weights=True)


def test_preset_from_weights_leaves_the_preset_unset_for_the_command(capsys):
    parser = argparse.ArgumentParser()
    add_model_arguments(parser, ("preset", "weights"), preset_from_weights=True)
    args = parser.parse_args(["--weights", "/w"])
    assert args.preset is None
    assert model_options(args) == DEFAULT_OPTIONS.replace(weights="/w")
    assert parser.parse_args(["--preset", "light"]).preset == "light"
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    assert f"(default: the weights', else {DEFAULT_PRESET})" in capsys.readouterr().out


def test_parse_size():
    assert parse_size("256x512") == (256, 512)
    assert parse_size(" 32X64 ") == (32, 64)
    for text in ("256", "axb", "256by512", "-5x3", "1x2x3"):
        with pytest.raises(argparse.ArgumentTypeError, match="HxW"):
            parse_size(text)
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1x1"):
        parse_size("0x5")
    with pytest.raises(argparse.ArgumentTypeError, match="at least 8x8"):
        parse_size("4x64", minimum=8)
    assert parse_size("8x8", minimum=8) == (8, 8)


def test_positive_int():
    assert positive_int("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
        positive_int("0")


def test_jetson_options_come_from_the_schema_and_are_checked_together():
    args = model_parser().parse_args(
        ["--precision", "int8", "--calibration", "/images", "--dla-core", "1"]
    )
    options = model_options(args)
    assert (options.precision, options.calibration, options.dla_core) == ("int8", "/images", 1)
    assert options.pipeline_arguments()["dla_core"] == 1
    assert options.pipeline_arguments()["calibration"] == "/images"
    assert DEFAULT_OPTIONS.pipeline_arguments()["calibration"] is None
    assert DEFAULT_OPTIONS.dla_core == -1
    problems = {
        "int8 without images": ModelOptions(precision="int8"),
        "images without int8": ModelOptions(calibration="/images"),
        "fp32 on a DLA": ModelOptions(precision="fp32", dla_core=0),
        "no such DLA core": ModelOptions(dla_core=2),
    }
    found = {name: options.problems() for name, options in problems.items()}
    assert found == {
        "int8 without images": [
            "precision int8 needs calibration (a folder of images), and only it"
        ],
        "images without int8": [
            "precision int8 needs calibration (a folder of images), and only it"
        ],
        "fp32 on a DLA": ["dla_core runs fp16 or int8 only; got precision fp32"],
        "no such DLA core": ["dla_core must be <= 1; got 2"],
    }
    assert ModelOptions(precision="int8", calibration="/images", dla_core=0).problems() == []
