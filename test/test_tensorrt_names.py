"""Every TensorRT name the backend uses, against the ``tensorrt-stubs`` type stubs (``make setup``
installs them without dependencies).

``api.TENSORRT_NAMES`` is the written list (with each name's status in TensorRT 8.6); this test
checks that each listed name exists in the stubs (TensorRT 10.x, inherited members included),
that the backend's modules use no ``trt.<name>`` and call no TensorRT method missing from the
list, and that the list names nothing the backend no longer uses.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from synboost_ros.backends.tensorrt.api import NAMED_TENSOR_API, TENSORRT_NAMES

BACKEND = Path(__file__).resolve().parent.parent / "synboost_ros" / "backends" / "tensorrt"
STUB_FILES = ("tensorrt_bindings/__init__.pyi", "tensorrt_bindings/tensorrt.pyi")


def _stub_paths() -> list[Path]:
    for entry in sys.path:
        paths = [Path(entry) / name for name in STUB_FILES]
        if all(p.is_file() for p in paths):
            return paths
    pytest.fail("tensorrt-stubs is missing: pip install --no-deps tensorrt-stubs (as make setup)")


def _stubs() -> tuple[set[str], dict[str, set[str]]]:
    """Module-level names and each class's members (its bases' members included)."""
    names: set[str] = set()
    own: dict[str, set[str]] = {}
    bases: dict[str, list[str]] = {}
    for path in _stub_paths():
        for node in _parse_stub(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                own[node.name] = _members(node)
                bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
            names |= _targets(node)
    names |= set(own)

    def members(name: str) -> set[str]:
        found = set(own.get(name, ()))
        for base in bases.get(name, []):
            found |= members(base)
        return found

    return names, {name: members(name) for name in own}


def _parse_stub(text: str) -> ast.Module:
    """``ast.parse``, with the parameter lists of the few generated signatures that are not
    valid Python (a parameter without default after defaulted ones) replaced by ``*args``."""
    lines = text.splitlines()
    for _ in range(100):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as error:
            line = lines[error.lineno - 1]
            fixed = re.sub(r"^(\s*def \w+)\(.*\)", r"\1(*args, **kwargs)", line)
            if fixed == line:
                raise
            lines[error.lineno - 1] = fixed
    raise AssertionError("too many invalid signatures in the stubs")


def _targets(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    return set()


def _members(node: ast.ClassDef) -> set[str]:
    found = set()
    for item in node.body:
        found |= _targets(item)
    return found


def _backend_trees() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted(BACKEND.glob("*.py")):
        tree = ast.parse(path.read_text())
        # the list itself does not count as a use
        tree.body = [
            n
            for n in tree.body
            if not (
                isinstance(n, ast.AnnAssign)
                and isinstance(n.target, ast.Name)
                and n.target.id == "TENSORRT_NAMES"
            )
        ]
        trees[path.name] = tree
    return trees


def _trt_chains(tree: ast.Module) -> set[str]:
    """``trt.A`` / ``trt.A.B`` / ``self.trt.A.B``: the dotted names after ``trt``."""
    chains = set()
    for node in ast.walk(tree):
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        root = node.id if isinstance(node, ast.Name) else None
        parts.reverse()
        if root == "trt" and parts:
            chains.add(".".join(parts[:2]))
        elif root == "self" and len(parts) > 1 and parts[0] == "trt":
            chains.add(".".join(parts[1:3]))
    return chains


def _used_words(tree: ast.Module) -> set[str]:
    """Attribute names, string constants (hasattr / getattr names), methods defined (the
    calibrator's overrides)."""
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.FunctionDef):
            words.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.add(node.value)
    return words


def _called_or_set(tree: ast.Module) -> set[str]:
    """Method names called (``x.m(...)``) and attributes assigned (``x.a = ...``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names.add(node.func.attr)
        elif isinstance(node, ast.Assign):  # on TensorRT objects, not on ``self``
            names |= {
                t.attr
                for t in node.targets
                if isinstance(t, ast.Attribute)
                and not (isinstance(t.value, ast.Name) and t.value.id == "self")
            }
    return names


def test_every_listed_name_is_in_the_tensorrt_stubs():
    module_names, classes = _stubs()
    assert {"Builder", "IBuilderConfig", "nptype", "__version__"} <= module_names  # parsed
    missing = []
    for name in TENSORRT_NAMES:
        owner, _, member = name.partition(".")
        if owner not in module_names or (member and member not in classes.get(owner, ())):
            missing.append(name)
    assert missing == []
    for owner, member in NAMED_TENSOR_API:
        assert f"{owner}.{member}" in TENSORRT_NAMES


def test_the_backend_uses_only_listed_tensorrt_names():
    _, classes = _stubs()
    listed_members = {name.partition(".")[2] for name in TENSORRT_NAMES} - {""}
    tensorrt_methods = set().union(
        *(classes.get(n.partition(".")[0], set()) for n in TENSORRT_NAMES)
    )
    trees = _backend_trees()
    for module, tree in trees.items():
        owners = {name.partition(".")[0] for name in TENSORRT_NAMES}  # trt.A of trt.A.B
        unlisted = sorted(_trt_chains(tree) - set(TENSORRT_NAMES) - owners)
        assert unlisted == [], f"{module} uses TensorRT names not in TENSORRT_NAMES: {unlisted}"
    # TensorRTApi's own methods, and hashlib's update, share names with TensorRT members
    ours = {"build", "deserialize", "calibrator", "io_tensors", "update"}
    called = set().union(*(_called_or_set(t) for t in trees.values()))
    unlisted = sorted((called & tensorrt_methods) - listed_members - ours)
    assert unlisted == [], f"TensorRT methods used but not in TENSORRT_NAMES: {unlisted}"
    used = set().union(*(_used_words(t) for t in trees.values()))
    stale = sorted(n for n in TENSORRT_NAMES if n.rpartition(".")[2] not in used)
    assert stale == [], f"listed but no longer used: {stale}"


def test_every_name_says_its_tensorrt_8_6_status():
    assert all(status.startswith("8.6: ") for status in TENSORRT_NAMES.values())
    absent_in_8_6 = {n for n, status in TENSORRT_NAMES.items() if status.startswith("8.6: no")}
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" in absent_in_8_6
