"""INT8 entropy calibration: a folder of images -> each stage's inputs -> calibration batches.

``CalibrationSet`` names the image set by a digest (part of the engine and calibration cache
keys) and gives each stage's inputs per image, made with the pipeline's own preprocessing
(``synboost_ros.calibration`` runs the fp32 graphs for that). ``calibration_batches`` checks
them against the engine's fixed input shapes and dtypes; ``entropy_calibrator`` feeds them to
TensorRT through device buffers (``Upload``) and keeps TensorRT's calibration cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synboost_ros.files import atomic_write_bytes, read_trusted

if TYPE_CHECKING:
    from synboost_ros.backends.tensorrt.api import TensorInfo

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# name, host array -> device address of a copy that stays valid until the next call for name
Upload = Callable[[str, np.ndarray], int]


@dataclass(frozen=True)
class CalibrationSet:
    """Calibration images of every stage: ``digest`` names the set, ``stage_inputs(stage)``
    gives the stage's input arrays per image (computed when first asked for)."""

    digest: str
    stage_inputs: Callable[[str], Sequence[Mapping[str, np.ndarray]]]


def calibration_images(folder: str | os.PathLike, limit: int) -> list[Path]:
    """The first ``limit`` image files of ``folder`` by name; ValueError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"calibration folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"calibration folder {folder} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    return files[:limit]


def calibration_digest(files: Iterable[Path]) -> str:
    """sha256 over the files' names and contents: another image set, another digest."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def calibration_batches(
    frames: Iterable[Mapping[str, np.ndarray]], inputs: Sequence[TensorInfo]
) -> Iterator[dict[str, np.ndarray]]:
    """Each frame's arrays for the engine ``inputs``: contiguous, in the input's dtype and of its
    fixed shape (ValueError naming the frame and tensor otherwise). Engines have a fixed batch,
    so one frame is one calibration batch."""
    for index, frame in enumerate(frames):
        batch = {}
        for tensor in inputs:
            if tensor.name not in frame:
                raise ValueError(f"calibration frame {index} has no input {tensor.name!r}")
            array = np.ascontiguousarray(frame[tensor.name], dtype=tensor.dtype)
            if array.shape != tensor.shape:
                raise ValueError(
                    f"calibration frame {index}: input {tensor.name!r} has shape {array.shape}, "
                    f"the engine takes {tensor.shape}"
                )
            batch[tensor.name] = array
        yield batch


def entropy_calibrator(
    trt: Any,
    batches: Iterable[Mapping[str, np.ndarray]],
    upload: Upload,
    cache_path: Path,
    batch_size: int = 1,
) -> Any:
    """A ``trt.IInt8EntropyCalibrator2`` over ``batches``; its cache is read from and written
    to ``cache_path`` (atomically), so a rebuild with the same key skips calibration."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self.count = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str], *_: Any) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                logger.info("INT8 calibration: %d batches", self.count)
                return None
            self.count += 1
            return [upload(name, np.asarray(batch[name])) for name in names]

        def read_calibration_cache(self, *_: Any) -> bytes | None:
            try:
                return read_trusted(cache_path)
            except FileNotFoundError:
                return None

        def write_calibration_cache(self, cache: Any, *_: Any) -> None:
            try:
                atomic_write_bytes(cache_path, bytes(cache))
            except OSError as error:
                logger.warning("cannot save INT8 calibration cache %s: %s", cache_path, error)

    return EntropyCalibrator()
