"""The package's layers (README, Architecture): a module imports its own layer and lower ones.

Every import of every module counts, at module level and inside functions alike.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "synboost_ros"

# Lowest first; each entry names modules or packages directly under synboost_ros/.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "__init__",
            "classes",
            "config",
            "ensemble",
            "files",
            "manifest",
            "options",
            "preprocessing",
            "stage_clock",
            "torch_missing",
        ),
    ),
    ("nn", ("nn",)),
    (
        "core",
        (
            "model",
            "weights",
            "weights_import",
            "shipped",
            "model_loading",
            "graphs",
            "model_source",
            "stage_io",
            "stages",
            "uncertainty",
            "device_ops",
            "cuda_graphs",
            "export",
            "flops",
            "metrics",
            "data",
            "postprocess",
        ),
    ),
    ("backends", ("backends",)),
    (
        "pipeline",
        (
            "pipeline",
            "device_pipeline",
            "device_bench",
            "calibration",
            "evaluation",
            "benchmark",
            "visualize",
            "analysis",
            "self_test",
        ),
    ),
    ("training", ("training",)),
    ("ros", ("ros",)),
    ("demo", ("demo",)),
    ("cli", ("cli",)),
)
# rclpy and ROS message packages: only the ROS layer and the ROS demo talk to ROS.
ROS_CLIENT_LAYERS = {"ros", "demo"}


def _is_ros_client(name: str) -> bool:
    top = name.split(".")[0]
    return top in ("rclpy", "cv_bridge", "rcl_interfaces") or top.endswith("_msgs")


@dataclass(frozen=True)
class Import:
    """One import statement of a package module."""

    module: str  # dotted name of the importing module
    path: str  # its file, relative to the repository
    line: int
    target: str  # dotted name of the imported module


def _module_names() -> dict[str, Path]:
    names = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _imported_module(source: str, name: str) -> str:
    """What ``from source import name`` imports: the submodule ``name`` or ``source``."""
    return f"{source}.{name}" if f"{source}.{name}" in MODULES else source


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def read_imports(modules: Mapping[str, Path], root: Path = ROOT) -> list[Import]:
    """Every import of ``modules`` (name -> file), package targets resolved to modules."""
    found = []
    for module, path in modules.items():
        where = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), where)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(module, path, node)
                targets = [_imported_module(source, alias.name) for alias in node.names]
            else:
                continue
            for target in dict.fromkeys(targets):
                found.append(Import(module, where, node.lineno, target))
    return found


IMPORTS = read_imports(MODULES)


def layer_of(module: str) -> int | None:
    """Index in ``LAYERS`` of a package module, None when no layer names it."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    return None


def _layer_name(index: int) -> str:
    return LAYERS[index][0]


ORDER = " < ".join(name for name, _ in LAYERS)


def upward_imports(imports: Iterable[Import]) -> list[str]:
    """One message per import of a module of a higher layer."""
    upward = []
    for item in imports:
        if item.target.split(".")[0] != PACKAGE:
            continue
        own, imported = layer_of(item.module), layer_of(item.target)
        if own is not None and imported is not None and imported > own:
            upward.append(
                f"{item.path}:{item.line}: {item.module} (layer {_layer_name(own)}) imports "
                f"{item.target} (layer {_layer_name(imported)}); a module may import only its "
                f"own and lower layers: {ORDER}"
            )
    return upward


def test_every_module_has_a_layer() -> None:
    missing = [str(MODULES[m].relative_to(ROOT)) for m in MODULES if layer_of(m) is None]
    assert not missing, f"modules without a layer (add them to LAYERS and README): {missing}"


def test_no_layer_imports_a_higher_one() -> None:
    upward = upward_imports(IMPORTS)
    assert not upward, "\n".join(upward)


def test_package_imports_name_existing_modules() -> None:
    unknown = [
        f"{item.path}:{item.line}: {item.module} imports {item.target}, not a module of {PACKAGE}"
        for item in IMPORTS
        if item.target.split(".")[0] == PACKAGE and item.target not in MODULES
    ]
    assert not unknown, "\n".join(unknown)


def test_only_the_ros_layers_import_ros_client_libraries() -> None:
    allowed = {index for index, (name, _) in enumerate(LAYERS) if name in ROS_CLIENT_LAYERS}
    outside = [
        f"{item.path}:{item.line}: {item.module} imports {item.target}; rclpy and ROS messages "
        f"belong to the {' and '.join(sorted(ROS_CLIENT_LAYERS))} layers only"
        for item in IMPORTS
        if _is_ros_client(item.target) and layer_of(item.module) not in allowed
    ]
    assert not outside, "\n".join(outside)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("import synboost_ros.ros.node\n", "synboost_ros.ros.node"),
        ("from synboost_ros.ros.node import main\n", "synboost_ros.ros.node"),
        ("from synboost_ros import ros\n", "synboost_ros.ros"),
        ("def f():\n    from synboost_ros.cli import main\n", "synboost_ros.cli.main"),
        ("from ..training.loop import run_loop\n", "synboost_ros.training.loop"),
    ],
)
def test_an_upward_import_is_reported_with_file_line_and_rule(tmp_path, source, target) -> None:
    fake = tmp_path / PACKAGE / "nn" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"import numpy\n{source}")

    line = 1 + source.count("\n")  # the package import is the file's last line

    imports = read_imports({"synboost_ros.nn.fake": fake}, tmp_path)

    assert [item.target for item in imports] == ["numpy", target]
    (message,) = upward_imports(imports)
    assert message.startswith(f"synboost_ros/nn/fake.py:{line}: ")
    assert f"(layer nn) imports {target} (layer " in message
    assert f"may import only its own and lower layers: {ORDER}" in message
