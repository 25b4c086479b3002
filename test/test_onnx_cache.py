"""The ONNX graph cache heals itself (``export.cached_onnx``): every cached graph is checked
against the sha256 recorded at export time, symbolic links are not followed, and an unwritable
cache folder leaves nothing behind.

Most tests replace the exporter by one that writes small tagged files, so they run in
milliseconds; one test exports and loads the real graphs with onnxruntime.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from synboost_ros import export
from synboost_ros.export import cached_onnx
from synboost_ros.graphs import CHECKSUMS_NAME
from synboost_ros.stages import STAGE_NAMES

ROOT = Path(__file__).resolve().parent.parent
FINGERPRINT = "ab" * 32
FOLDER = FINGERPRINT[:32]
FAKE_EXPORT = """
def fake_export(model, out_dir):
    from pathlib import Path
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stage in ("segmentation", "synthesis", "dissimilarity"):
        paths[stage] = out_dir / f"{stage}.onnx"
        paths[stage].write_bytes(f"graph of {stage}".encode() * 100)
    return paths
"""


def _fake_export():
    namespace: dict = {}
    exec(FAKE_EXPORT, namespace)
    return namespace["fake_export"]


@pytest.fixture
def exports(monkeypatch) -> list[Path]:
    """The fake exporter in place; lists the folders it exported into."""
    fake, calls = _fake_export(), []

    def record(model, out_dir):
        calls.append(Path(out_dir))
        return fake(model, out_dir)

    monkeypatch.setattr(export, "export_onnx", record)
    return calls


def _cached(cache: Path) -> dict[str, Path]:
    return cached_onnx(None, cache, fingerprint=FINGERPRINT)


def _good_bytes(stage: str) -> bytes:
    return f"graph of {stage}".encode() * 100


def _cache_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cached ONNX graphs" in r.getMessage()]


def test_graphs_are_exported_once_with_their_checksums(exports, tmp_path):
    first = _cached(tmp_path)
    second = _cached(tmp_path)
    assert len(exports) == 1 and first == second
    assert first == {stage: tmp_path / FOLDER / f"{stage}.onnx" for stage in STAGE_NAMES}
    recorded = json.loads((tmp_path / FOLDER / CHECKSUMS_NAME).read_text())
    assert set(recorded) == {f"{stage}.onnx" for stage in STAGE_NAMES}
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]  # no staging folder left


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda folder: (folder / "synthesis.onnx").write_bytes(b"\x00junk"), id="corrupt"
        ),
        pytest.param(
            lambda folder: (folder / "synthesis.onnx").write_bytes(_good_bytes("synthesis")[:-7]),
            id="truncated",
        ),
        pytest.param(  # a well-formed graph, but another one, under the right name
            lambda folder: (folder / "synthesis.onnx").write_bytes(_good_bytes("dissimilarity")),
            id="foreign",
        ),
        pytest.param(lambda folder: (folder / CHECKSUMS_NAME).unlink(), id="no-checksums"),
        pytest.param(lambda folder: (folder / CHECKSUMS_NAME).write_text("{"), id="bad-checksums"),
    ],
)
def test_a_damaged_cache_is_exported_again_with_one_log_line(exports, tmp_path, caplog, damage):
    _cached(tmp_path)
    damage(tmp_path / FOLDER)
    with caplog.at_level(logging.WARNING):
        paths = _cached(tmp_path)
    assert len(exports) == 2
    (line,) = _cache_lines(caplog)
    assert line.endswith("; exporting them again") and "\n" not in line
    assert all(paths[stage].read_bytes() == _good_bytes(stage) for stage in STAGE_NAMES)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _cached(tmp_path)
    assert len(exports) == 2 and not _cache_lines(caplog)  # healed for good


@pytest.mark.parametrize("linked", ["graph", "folder"])
def test_a_symlink_in_the_cache_is_not_followed(exports, tmp_path, caplog, linked):
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    _cached(elsewhere)  # a complete, valid cache outside
    _cached(cache)
    if linked == "graph":
        link = cache / FOLDER / "segmentation.onnx"
        link.unlink()
        link.symlink_to(elsewhere / FOLDER / "segmentation.onnx")
    else:
        link = cache / FOLDER
        for path in link.iterdir():
            path.unlink()
        link.rmdir()
        link.symlink_to(elsewhere / FOLDER, target_is_directory=True)
    with caplog.at_level(logging.WARNING):
        paths = _cached(cache)
    (line,) = _cache_lines(caplog)
    assert "symbolic link (not followed)" in line
    assert not (cache / FOLDER).is_symlink() and not paths["segmentation"].is_symlink()
    assert (elsewhere / FOLDER / "segmentation.onnx").read_bytes() == _good_bytes("segmentation")


def test_an_unwritable_cache_reuses_one_per_user_folder(exports, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with caplog.at_level(logging.WARNING):
        first = _cached(blocker / "cache")
        second = _cached(blocker / "cache")
    assert "is not writable" in caplog.text
    assert first == second and len(exports) == 1
    assert (
        first["segmentation"].parent.parent
        == tmp_path / "tmp" / f"synboost_ros-{os.getuid()}" / "onnx"
    )


def _start(tmp_path: Path) -> subprocess.CompletedProcess:
    """A process that asks for the graphs in an unwritable cache folder, then exits."""
    script = FAKE_EXPORT + (
        "import sys\n"
        "from synboost_ros import export\n"
        "export.export_onnx = fake_export\n"
        f"paths = export.cached_onnx(None, sys.argv[1], fingerprint={FINGERPRINT!r})\n"
        "assert all(p.is_file() for p in paths.values())\n"
        "print(paths['segmentation'].parent)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a-file" / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("shared_usable", [True, False])
def test_starts_with_an_unwritable_cache_leave_no_temporary_folders(tmp_path, shared_usable):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "tmp").mkdir()
    shared = tmp_path / "tmp" / f"synboost_ros-{os.getuid()}"
    if not shared_usable:
        shared.write_text("someone else's file where the per-user folder would be")
    used = [Path(_start(tmp_path).stdout.strip()) for _ in range(2)]
    left = sorted(p.name for p in (tmp_path / "tmp").iterdir())
    assert left == [shared.name]  # no synboost-onnx-* / synboost_ros-onnx-* folder leaked
    if shared_usable:
        assert used[0] == used[1] == shared / "onnx" / FOLDER  # reused by the second start
    else:
        assert shared.is_file() and all(not p.exists() for p in used)  # removed at exit


def test_real_graphs_heal_and_load_in_onnxruntime(edge_random_model, tmp_path, caplog):
    from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

    graph = cached_onnx(edge_random_model, tmp_path)["segmentation"]
    graph.write_bytes(
        graph.read_bytes()[: graph.stat().st_size // 2]
    )  # onnxruntime: protobuf error
    with caplog.at_level(logging.WARNING):
        backend = OnnxRuntimeBackend(cached_onnx(edge_random_model, tmp_path), "cpu")
    (line,) = _cache_lines(caplog)
    assert "segmentation.onnx has sha256" in line
    assert backend.precision == "fp32"
