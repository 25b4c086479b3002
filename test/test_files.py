"""Atomic writes and file hashes (``synboost_ros.files``)."""

from __future__ import annotations

import hashlib
import os

import pytest

from synboost_ros import files
from synboost_ros.files import atomic_write, atomic_write_bytes, atomic_write_text, file_sha256


def test_bytes_and_text_replace_the_target_and_leave_nothing_else(tmp_path):
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    text_target = tmp_path / "m.json"
    atomic_write_text(text_target, "caf\u00e9\n", durable=False)
    assert text_target.read_bytes() == "caf\u00e9\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "x.bin"]


def test_a_path_writer_fills_a_temporary_file_beside_the_target(tmp_path):
    target = tmp_path / "weights.safetensors"
    seen = []

    def write(tmp):
        seen.append(tmp)
        assert not target.exists()  # nothing appears under the target name before the rename
        tmp.write_bytes(b"tensors")

    atomic_write(target, write)
    assert target.read_bytes() == b"tensors"
    assert seen[0].parent == tmp_path and seen[0] != target and not seen[0].exists()


def test_a_failing_writer_leaves_the_old_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"old")

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("writer broke")

    def interrupted(tmp):
        tmp.write_bytes(b"part")
        raise KeyboardInterrupt

    with pytest.raises(RuntimeError, match="writer broke"):
        atomic_write(target, half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_failing_fsync_or_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "x.engine"
    atomic_write_bytes(target, b"old")

    def fail(*args):
        raise OSError(5, "I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(files.os, "fsync", fail)
        with pytest.raises(OSError, match="I/O error"):
            atomic_write_bytes(target, b"new")
    with monkeypatch.context() as patch:
        patch.setattr(files.os, "replace", fail)
        with pytest.raises(OSError, match="I/O error"):
            atomic_write_text(target, "new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.engine"]


def test_durable_writes_fsync_and_cache_writes_do_not(tmp_path, monkeypatch):
    synced = []
    real_fsync = files.os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    atomic_write_bytes(tmp_path / "durable", b"a")
    assert len(synced) == 1
    atomic_write_bytes(tmp_path / "cache", b"b", durable=False)
    assert len(synced) == 1


def test_file_sha256_reads_in_chunks(tmp_path):
    data = bytes(range(256)) * 9000  # more than one read chunk
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == file_sha256(path)
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "absent")


def test_trusted_reads_refuse_links_and_non_files(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"cached")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    assert files.read_trusted(real) == b"cached"
    with pytest.raises(files.UntrustedFileError, match="symbolic link"):
        files.read_trusted(link)
    with pytest.raises(files.UntrustedFileError, match="not a regular file"):
        files.read_trusted(tmp_path)
    digest = hashlib.sha256(b"cached").hexdigest()
    assert files.file_problem(real, digest) is None
    assert files.file_problem(link, digest) == "is a symbolic link (not followed)"
    assert files.file_problem(tmp_path / "absent", digest) == "is missing"
    assert "(corrupt, truncated or replaced)" in files.file_problem(real, "0" * 64)


def test_a_fallback_folder_others_can_write_to_is_not_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(files.tempfile, "tempdir", str(tmp_path))
    shared = files.fallback_dir("onnx")
    assert shared == tmp_path / f"synboost_ros-{os.getuid()}" / "onnx"
    assert files.fallback_dir("onnx") == shared  # reused
    shared.parent.chmod(0o777)  # anyone could plant links in it now
    private = files.fallback_dir("onnx")
    assert private.parent == tmp_path and private.name.startswith("synboost_ros-onnx-")
