"""File helpers shared by every writer of weights, checkpoints, caches and engines.

``atomic_write`` fills a temporary file next to the target and renames it over the target, so
a reader sees the old file or the new one, never a torn one; the temporary file is removed on
any failure. With ``durable`` (the default) the data is fsynced before the rename, so a crash
cannot leave an empty file in the target's place.

Caches verify what they read: ``read_trusted`` and ``file_problem`` refuse symbolic links (never
followed) and anything but a regular file, and compare a sha256 recorded at write time.
``fallback_dir`` gives a cache whose folder is not writable (or the node's ROS logs, without
HOME) a per-user folder that later starts reuse, or a private one removed at exit.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], object], durable: bool = True
) -> None:
    """Let ``write`` fill a temporary file (given its path) in ``path``'s folder, then rename
    it over ``path``. For libraries that write to a path: ``safetensors.torch.save_file``,
    ``torch.save``."""
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` atomically by ``data``."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data), durable)


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = True) -> None:
    """Replace ``path`` atomically by ``text`` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UntrustedFileError(OSError):
    """A cached file is a symbolic link or not a regular file; the message says which (after
    the file's name, e.g. "is a symbolic link (not followed)")."""


def read_trusted(path: str | os.PathLike) -> bytes:
    """The bytes of regular file ``path``; ``UntrustedFileError`` for a symbolic link (not
    followed) or anything else that is not a regular file."""
    with _open_regular(Path(path)) as stream:
        return stream.read()


def file_problem(path: str | os.PathLike, sha256: object) -> str | None:
    """Why ``path`` is not the file recorded with ``sha256``, or None when it is: missing, a
    symbolic link, not a regular file, or other bytes (corrupt, truncated or replaced)."""
    digest = hashlib.sha256()
    try:
        with _open_regular(Path(path)) as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return "is missing"
    except OSError as error:
        return str(error) if isinstance(error, UntrustedFileError) else f"cannot be read ({error})"
    actual = digest.hexdigest()
    if actual != sha256:
        return (
            f"has sha256 {actual[:12]}..., not the recorded {str(sha256)[:12]}... "
            "(corrupt, truncated or replaced)"
        )
    return None


def _open_regular(path: Path) -> BinaryIO:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    if path.is_symlink():
        raise UntrustedFileError("is a symbolic link (not followed)")
    try:
        fd = os.open(path, flags)
    except OSError:
        if os.path.islink(path):  # replaced by a link in between; O_NOFOLLOW refused it
            raise UntrustedFileError("is a symbolic link (not followed)") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UntrustedFileError("is not a regular file")
    return os.fdopen(fd, "rb")


def writable_error(folder: Path) -> OSError | None:
    """Why no file can be created in ``folder`` (created if missing, mode 0700), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return error
    return None


def fallback_dir(kind: str) -> Path:
    """Where ``kind`` files go when their folder is not writable: ``synboost_ros-<uid>/<kind>``
    in the temporary folder, reused by later starts, when it is this user's own real folder that
    no one else can write to;
    else a private folder that is removed when the process exits (nothing is left behind)."""
    shared = Path(tempfile.gettempdir()) / f"synboost_ros-{_user_id()}"
    try:
        shared.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(shared)
    except OSError:
        info = None
    mine = (
        info is not None
        and stat.S_ISDIR(info.st_mode)
        and not info.st_mode & 0o022  # nobody else can plant links in it
        and _owned_by_me(info)
    )
    if mine and writable_error(shared / kind) is None:
        return shared / kind
    private = Path(tempfile.mkdtemp(prefix=f"synboost_ros-{kind}-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    return private


def _user_id() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def _owned_by_me(info: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())
