"""File helpers shared by every writer of weights, checkpoints, caches and engines.

``atomic_write`` fills a temporary file next to the target and renames it over the target, so
a reader sees the old file or the new one, never a torn one; the temporary file is removed on
any failure. With ``durable`` (the default) the data is fsynced before the rename, so a crash
cannot leave an empty file in the target's place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

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


def _fsync(path: Path) -> None:
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())
