"""The engine disk cache: a checked file per stage, keyed by everything the engine depends on.

An engine only runs on the TensorRT version and GPU it was built for, so the cache file is
keyed by the stage graph's fingerprint (its sha256, as its graph folder records it: the same
graph, shipped or exported, gives the same engine) + stage + TensorRT version + GPU name +
compute capability + precision + input shapes (+ DLA core and calibration image set, where
used), and a JSON sidecar next to it records the key and the engine's I/O tensors and the
engine file's sha256.
A file whose sidecar does not match what is expected now (Autoware-style shape check), whose
bytes do not match the recorded sha256 (corrupt, truncated, replaced), that is a symbolic link
(never followed) or that TensorRT cannot deserialize is rebuilt, with one log line. An int8
engine's calibration cache sits next to it under the same key (``.calibration``), so a rebuild
skips calibration. Files are written atomically (``files.atomic_write``); an unwritable cache
folder falls back to ``files.fallback_dir``.

TensorRT itself is reached only through a ``TensorRTApi`` (real: ``api.TensorRTModule``), so
this logic runs without TensorRT too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synboost_ros.backends.tensorrt.api import (
    EngineLoadError,
    TensorInfo,
    TensorRTApi,
    TensorRTModule,
)
from synboost_ros.backends.tensorrt.build import BuildSettings, EngineBuildError
from synboost_ros.backends.tensorrt.calibration import (
    CalibrationSet,
    Upload,
    calibration_batches,
)
from synboost_ros.files import (
    UntrustedFileError,
    atomic_write_bytes,
    atomic_write_text,
    fallback_dir,
    read_trusted,
    writable_error,
)

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = 3  # 3: the engine's sha256


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU an engine is built for."""

    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        """Compute capability digits, as in ``sm90``."""
        return sm_digits(self.compute_capability)


def sm_digits(compute_capability: tuple[int, int]) -> str:
    """``(9, 0)`` -> ``"90"``."""
    return "".join(str(part) for part in compute_capability)


@dataclass(frozen=True)
class EngineKey:
    """Everything a built engine depends on."""

    graph_fingerprint: str
    stage: str
    trt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    options: tuple[tuple[str, str], ...] = ()  # dla_core, calibration: only when used

    def canonical(self) -> dict[str, Any]:
        """The key as JSON data; without ``options`` when there are none (older keys stay)."""
        data = _json(asdict(self))
        if not self.options:
            del data["options"]
        return data

    def digest(self) -> str:
        """sha256 hex of the key's canonical JSON."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def file_name(self) -> str:
        """``<stage>-<precision>-sm<cc>-trt<version>-<hash16>.engine``."""
        sm = sm_digits(self.compute_capability)
        version = _file_safe(self.trt_version)
        return f"{self.stage}-{self.precision}-sm{sm}-trt{version}-{self.digest()[:16]}.engine"

    @classmethod
    def create(
        cls,
        graph_fingerprint: str,
        stage: str,
        trt_version: str,
        gpu_name: str,
        compute_capability: tuple[int, int],
        precision: str,
        input_shapes: dict[str, Sequence[int]],
        options: dict[str, str] | None = None,
    ) -> EngineKey:
        """Key in canonical form: plain ints, inputs and options sorted by name."""
        shapes = tuple(sorted((n, tuple(int(d) for d in s)) for n, s in input_shapes.items()))
        cc = (int(compute_capability[0]), int(compute_capability[1]))
        extra = tuple(sorted((options or {}).items()))
        return cls(graph_fingerprint, stage, trt_version, gpu_name, cc, precision, shapes, extra)


def engine_cache_key(
    graph_fingerprint: str,
    stage: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
    input_shapes: dict[str, Sequence[int]],
    options: dict[str, str] | None = None,
) -> str:
    """Stable hex key; changing any component changes it (input order does not matter)."""
    return EngineKey.create(
        graph_fingerprint,
        stage,
        trt_version,
        gpu_name,
        compute_capability,
        precision,
        input_shapes,
        options,
    ).digest()


def timing_cache_name(trt_version: str, device: DeviceInfo, precision: str) -> str:
    """Timing cache file shared by all stages built with one TensorRT, GPU and precision."""
    gpu = hashlib.sha256(device.name.encode()).hexdigest()[:8]
    return f"timing-{precision}-sm{device.sm}-trt{_file_safe(trt_version)}-{gpu}.cache"


def _file_safe(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]", "_", text)


@dataclass(frozen=True)
class CachedEngine:
    """A deserialized engine, where its file is (None if it could not be saved) and its I/O."""

    engine: Any
    path: Path | None
    precision: str
    io: tuple[TensorInfo, ...]


def load_or_build_engine(
    stage: str,
    onnx_path: str | os.PathLike,
    graph_fingerprint: str,
    cache_dir: str | os.PathLike,
    settings: BuildSettings,
    device_info: DeviceInfo,
    expected_io: Sequence[TensorInfo],
    api: TensorRTApi | None = None,
    calibration: CalibrationSet | None = None,
    upload: Upload | None = None,
) -> CachedEngine:
    """Load the cached engine for ``stage`` if its sidecar and I/O match; else build it.

    ``graph_fingerprint`` identifies the graph in ``onnx_path`` (its sha256 recorded in the
    graph folder, checked before), so the file is not hashed again. A cached file that does
    not deserialize is deleted and rebuilt once. The first build of a stage takes minutes;
    later starts load the cached file in seconds. ``int8`` needs ``calibration`` and
    ``upload`` (device buffers for the calibration batches).
    """
    if (settings.precision == "int8") != (calibration is not None):
        raise ValueError("precision int8 needs calibration images, and only int8 uses them")
    api = api or TensorRTModule.load()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX graph for stage {stage!r} not found: {onnx_path}")
    expected_io = tuple(expected_io)
    key = EngineKey.create(
        graph_fingerprint,
        stage,
        api.version,
        device_info.name,
        device_info.compute_capability,
        settings.precision,
        {t.name: t.shape for t in expected_io if t.is_input},
        build_options(settings, calibration),
    )
    folder = usable_cache_dir(cache_dir)
    engine_path = folder / key.file_name()
    cached = _load_cached(engine_path, key, expected_io, api, settings.dla_core)
    if cached is not None:
        return cached
    logger.warning(
        "building TensorRT engines, this takes minutes: stage %s, %s%s (cached afterwards in %s)",
        stage,
        settings.precision,
        f", DLA core {settings.dla_core}" if settings.dla_core >= 0 else "",
        folder,
    )
    calibrator = None
    if calibration is not None:
        if upload is None:
            raise ValueError("int8 calibration needs an upload function for device buffers")
        inputs = [t for t in expected_io if t.is_input]
        frames = _lazy(lambda: calibration.stage_inputs(stage))
        calibrator = api.calibrator(
            calibration_batches(frames, inputs), upload, calibration_cache_path(engine_path)
        )
    timing_cache = folder / timing_cache_name(api.version, device_info, settings.precision)
    data, used = api.build(onnx_path, settings, timing_cache, calibrator)
    engine = api.deserialize(data, settings.dla_core)
    actual = api.io_tensors(engine)
    if _io_json(actual) != _io_json(expected_io):
        raise EngineBuildError(
            f"engine built from {onnx_path} has I/O {actual}, stage {stage!r} expects {expected_io}"
        )
    sidecar = _sidecar(key, expected_io, used, hashlib.sha256(data).hexdigest())
    saved = _save_engine(engine_path, data, sidecar)
    return CachedEngine(engine, engine_path if saved else None, used, actual)


def build_options(settings: BuildSettings, calibration: CalibrationSet | None) -> dict[str, str]:
    """The key's options: the DLA core and the calibration image set, where used."""
    options = {}
    if settings.dla_core >= 0:
        options["dla_core"] = str(settings.dla_core)
    if calibration is not None:
        options["calibration"] = calibration.digest
    return options


def calibration_cache_path(engine_path: Path) -> Path:
    """TensorRT's INT8 calibration cache of an engine: same key, ``.calibration``."""
    return engine_path.with_suffix(".calibration")


def _lazy(frames: Callable[[], Sequence[Any]]) -> Iterator[Any]:
    """Iterate ``frames()``, called on the first item only (never, when TensorRT reads the
    calibration cache instead)."""
    yield from frames()


def _load_cached(
    engine_path: Path,
    key: EngineKey,
    expected_io: tuple[TensorInfo, ...],
    api: TensorRTApi,
    dla_core: int,
) -> CachedEngine | None:
    sidecar_path = _sidecar_path(engine_path)
    if not any(os.path.lexists(p) for p in (engine_path, sidecar_path)):
        return None
    problem, data, sidecar = _verified_bytes(engine_path, key, expected_io)
    if problem is not None:
        logger.warning("cached engine %s %s; rebuilding", engine_path, problem)
        _remove(engine_path, sidecar_path)
        return None
    try:
        engine = api.deserialize(data, dla_core)
    except EngineLoadError as error:
        logger.warning(
            "cached engine %s is unusable (%s); deleting and rebuilding", engine_path, error
        )
        _remove(engine_path, sidecar_path)
        return None
    actual = api.io_tensors(engine)
    if _io_json(actual) != _io_json(expected_io):
        logger.warning(
            "cached engine %s has I/O %s, expected %s; rebuilding", engine_path, actual, expected_io
        )
        return None
    return CachedEngine(engine, engine_path, str(sidecar.get("precision", "")), actual)


def _verified_bytes(
    engine_path: Path, key: EngineKey, expected_io: tuple[TensorInfo, ...]
) -> tuple[str | None, bytes, dict]:
    """(why the cached engine cannot be used or None, its bytes, its sidecar)."""
    try:
        sidecar = json.loads(read_trusted(_sidecar_path(engine_path)))
    except UntrustedFileError as error:
        return f"has a sidecar that {error}", b"", {}
    except (OSError, ValueError):
        sidecar = None
    wanted = _sidecar(key, expected_io, precision="", sha256="")
    if not isinstance(sidecar, dict) or any(
        sidecar.get(k) != wanted[k] for k in ("format", "key", "io")
    ):
        return "does not match this graph/GPU/shapes", b"", {}
    try:
        data = read_trusted(engine_path)
    except UntrustedFileError as error:
        return str(error), b"", {}
    except OSError as error:
        return f"cannot be read ({error})", b"", {}
    actual = hashlib.sha256(data).hexdigest()
    if actual != sidecar.get("sha256"):
        recorded = str(sidecar.get("sha256"))[:12]
        return (
            f"has sha256 {actual[:12]}..., not the recorded {recorded}... "
            "(corrupt, truncated or replaced)",
            b"",
            {},
        )
    return None, data, sidecar


def usable_cache_dir(preferred: str | os.PathLike) -> Path:
    """``preferred`` if a file can be written there; else ``files.fallback_dir`` (warned)."""
    preferred = Path(preferred)
    error = writable_error(preferred)
    if error is None:
        return preferred
    fallback = fallback_dir("tensorrt")
    logger.warning(
        "TensorRT engine cache %s is not writable (%s); using %s (engines there may not "
        "survive a reboot: set cache_dir / SYNBOOST_CACHE_DIR to a writable folder)",
        preferred,
        error,
        fallback,
    )
    return fallback


def _save_engine(engine_path: Path, data: bytes, sidecar: dict) -> bool:
    # The sidecar is written last: an engine without a matching sidecar is never trusted.
    try:
        atomic_write_bytes(engine_path, data)
        atomic_write_text(_sidecar_path(engine_path), json.dumps(sidecar, indent=2))
    except OSError as error:
        _remove(engine_path, _sidecar_path(engine_path))
        logger.warning(
            "cannot save TensorRT engine %s (%s); it is rebuilt next start", engine_path, error
        )
        return False
    return True


def _sidecar(key: EngineKey, io: Sequence[TensorInfo], precision: str, sha256: str) -> dict:
    return {
        "format": SIDECAR_FORMAT,
        "key": key.canonical(),
        "io": _io_json(io),
        "precision": precision,
        "sha256": sha256,
    }


def _io_json(io: Sequence[TensorInfo]) -> list:
    return sorted(_json([asdict(t) for t in io]), key=lambda t: t["name"])


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _sidecar_path(engine_path: Path) -> Path:
    return engine_path.with_suffix(".json")


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("cannot remove %s: %s", path, error)
