"""TensorRT engines for the stage graphs: cache keys, building from ONNX, a checked disk cache.

An engine only runs on the TensorRT version and GPU it was built for, so the cache file is
keyed by ONNX sha256 + TensorRT version + GPU name + compute capability + precision + input
shapes, and a JSON sidecar next to it records the key and the engine's I/O tensors. A file
whose sidecar does not match what is expected now (Autoware-style shape check) or that
TensorRT cannot deserialize is rebuilt. Files are written atomically (temporary file +
``os.replace``); an unwritable cache folder falls back to a per-user temporary folder.

Everything that touches TensorRT goes through ``TensorRTApi`` (real: ``TensorRTModule``),
so the cache logic runs without TensorRT too. Uses the TensorRT 10 Python API only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_WORKSPACE_BYTES = 4 << 30
# BuilderFlag.FP16 belongs to "weak typing", deprecated from TensorRT 10.12, removed in 11.
FP16_FLAG_DEPRECATED_FROM = (10, 12)
MIN_TENSORRT_MAJOR = 10
PRECISIONS = ("fp32", "fp16")
SIDECAR_FORMAT = 1
NOT_INSTALLED = (
    "TensorRT is not installed: pip install tensorrt (needs an NVIDIA GPU) "
    "or use backend onnxruntime/torch"
)


class EngineBuildError(RuntimeError):
    """TensorRT could not parse the graph or build an engine from it."""


class EngineLoadError(RuntimeError):
    """A serialized engine could not be deserialized (corrupt, or built elsewhere)."""


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
class TensorInfo:
    """One engine I/O tensor: name, fixed shape, numpy dtype name, direction."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    is_input: bool


@dataclass(frozen=True)
class EngineKey:
    """Everything a built engine depends on."""

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]

    def digest(self) -> str:
        """sha256 hex of the key's canonical JSON."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def file_name(self, stage: str) -> str:
        """``<stage>-<precision>-sm<cc>-trt<version>-<hash16>.engine``."""
        sm = sm_digits(self.compute_capability)
        version = _file_safe(self.trt_version)
        return f"{stage}-{self.precision}-sm{sm}-trt{version}-{self.digest()[:16]}.engine"

    @classmethod
    def create(
        cls,
        onnx_sha256: str,
        trt_version: str,
        gpu_name: str,
        compute_capability: tuple[int, int],
        precision: str,
        input_shapes: dict[str, Sequence[int]],
    ) -> EngineKey:
        """Key in canonical form: plain ints, inputs sorted by name."""
        shapes = tuple(sorted((n, tuple(int(d) for d in s)) for n, s in input_shapes.items()))
        cc = (int(compute_capability[0]), int(compute_capability[1]))
        return cls(onnx_sha256, trt_version, gpu_name, cc, precision, shapes)


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
    input_shapes: dict[str, Sequence[int]],
) -> str:
    """Stable hex key; changing any component changes it (input order does not matter)."""
    return EngineKey.create(
        onnx_sha256, trt_version, gpu_name, compute_capability, precision, input_shapes
    ).digest()


def timing_cache_name(trt_version: str, device: DeviceInfo, precision: str) -> str:
    """Timing cache file shared by all stages built with one TensorRT, GPU and precision."""
    gpu = hashlib.sha256(device.name.encode()).hexdigest()[:8]
    return f"timing-{precision}-sm{device.sm}-trt{_file_safe(trt_version)}-{gpu}.cache"


def _file_safe(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z.]", "_", text)


class TensorRTApi(Protocol):
    """The TensorRT operations the engine cache needs."""

    version: str

    def build(
        self, onnx_path: Path, precision: str, workspace_bytes: int, timing_cache_path: Path | None
    ) -> tuple[bytes, str]:
        """Serialized engine and the precision it runs."""

    def deserialize(self, data: bytes) -> Any:
        """An engine object; raises ``EngineLoadError`` for unusable bytes."""

    def io_tensors(self, engine: Any) -> tuple[TensorInfo, ...]:
        """The engine's I/O tensors."""


class TensorRTModule:
    """``TensorRTApi`` on the installed ``tensorrt`` package (one runtime, kept alive)."""

    def __init__(self, trt: Any) -> None:
        self.trt = trt
        self.version = str(trt.__version__)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime: Any = None  # created on first use: it initialises CUDA

    @classmethod
    def load(cls) -> TensorRTModule:
        """Import ``tensorrt``; ImportError with the install hint when it is missing or old."""
        try:
            import tensorrt as trt
        except ImportError as error:
            raise ImportError(NOT_INSTALLED) from error
        if version_tuple(trt.__version__)[0] < MIN_TENSORRT_MAJOR:
            raise ImportError(f"TensorRT >= {MIN_TENSORRT_MAJOR} needed, found {trt.__version__}")
        return cls(trt)

    def build(
        self, onnx_path: Path, precision: str, workspace_bytes: int, timing_cache_path: Path | None
    ) -> tuple[bytes, str]:
        """See ``build_engine``."""
        return build_engine(onnx_path, precision, workspace_bytes, timing_cache_path, self.trt)

    def deserialize(self, data: bytes) -> Any:
        """``Runtime.deserialize_cuda_engine``; None or an exception become ``EngineLoadError``."""
        if self._runtime is None:
            self._runtime = self.trt.Runtime(self._logger)
        try:
            engine = self._runtime.deserialize_cuda_engine(data)
        except Exception as error:  # TensorRT raises its own types for some bad inputs
            raise EngineLoadError(f"TensorRT could not deserialize the engine: {error}") from error
        if engine is None:
            raise EngineLoadError("TensorRT could not deserialize the engine (see its log)")
        return engine

    def io_tensors(self, engine: Any) -> tuple[TensorInfo, ...]:
        """Name, shape, dtype and mode of each I/O tensor (TensorRT 10 named-tensor API)."""
        trt = self.trt
        tensors = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            tensors.append(
                TensorInfo(
                    name=name,
                    shape=tuple(int(d) for d in engine.get_tensor_shape(name)),
                    dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name,
                    is_input=engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                )
            )
        return tuple(tensors)


def version_tuple(version: str) -> tuple[int, int]:
    """``"10.12.0.36"`` -> ``(10, 12)``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"cannot read a TensorRT version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def fp16_builder_flag_usable(trt_version: str, has_fp16_flag: bool) -> bool:
    """Whether FP16 should come from ``BuilderFlag.FP16``: present and not yet deprecated.

    From TensorRT 10.12 the flag is deprecated (removed in 11): FP16 there needs an FP16
    ONNX graph built as a strongly typed network.
    """
    return has_fp16_flag and version_tuple(trt_version) < FP16_FLAG_DEPRECATED_FROM


def build_engine(
    onnx_path: str | os.PathLike,
    precision: str,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    timing_cache_path: str | os.PathLike | None = None,
    trt: Any = None,
) -> tuple[bytes, str]:
    """Build a serialized engine from an ONNX file; return it with the precision it runs.

    ``fp16`` uses the FP16 builder flag where ``fp16_builder_flag_usable``; otherwise the
    network is strongly typed and runs the graph's own types (fp32 for an fp32 graph, said
    in a warning). TF32 is switched off so ``fp32`` means fp32.
    """
    _check_precision(precision)
    if trt is None:
        trt = TensorRTModule.load().trt
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX graph not found: {onnx_path}")
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    use_fp16_flag = precision == "fp16" and fp16_builder_flag_usable(
        trt.__version__, hasattr(trt.BuilderFlag, "FP16")
    )
    network = builder.create_network(_network_flags(trt, strongly_typed=not use_fp16_flag))
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise EngineBuildError(
            f"TensorRT could not parse {onnx_path}: " + "; ".join(parser_errors(parser))
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if use_fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    _attach_timing_cache(config, timing_cache_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} (see its log)")
    if timing_cache_path is not None:
        _save_timing_cache(config, Path(timing_cache_path))
    used = "fp16" if use_fp16_flag or _network_has_half(trt, network) else "fp32"
    if precision == "fp16" and used != "fp16":
        logger.warning(
            "TensorRT %s: fp16 asked, engine runs fp32. BuilderFlag.FP16 is deprecated from "
            "TensorRT 10.12; fp16 there needs an fp16 ONNX graph (strongly typed network)",
            trt.__version__,
        )
    return bytes(serialized), used


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def _network_flags(trt: Any, strongly_typed: bool) -> int:
    # TensorRT 10 networks are always explicit batch: no flag needed for that.
    if strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def parser_errors(parser: Any) -> list[str]:
    """The ONNX parser's error messages, with node name and operator where it gives them."""
    messages = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        text = str(error.desc())
        node_name = getattr(error, "node_name", None)
        node_operator = getattr(error, "node_operator", None)
        if callable(node_name) and node_name():
            operator = f" ({node_operator()})" if callable(node_operator) else ""
            text = f"node {node_name()}{operator}: {text}"
        messages.append(text)
    return messages or ["no error details from the parser"]


def _network_has_half(trt: Any, network: Any) -> bool:
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for output in range(layer.num_outputs):
            if layer.get_output(output).dtype == trt.DataType.HALF:
                return True
    return False


def _attach_timing_cache(config: Any, path: str | os.PathLike | None) -> None:
    if path is None:
        return
    data = b""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        pass
    except OSError as error:
        logger.warning("cannot read TensorRT timing cache %s (%s); starting a new one", path, error)
    cache = None
    try:
        cache = config.create_timing_cache(data)
    except Exception as error:  # TensorRT rejects caches from other versions or devices
        logger.warning("TensorRT timing cache %s unusable (%s); starting a new one", path, error)
    if cache is None:
        cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)


def _save_timing_cache(config: Any, path: Path) -> None:
    try:
        write_atomically(path, bytes(config.get_timing_cache().serialize()))
    except OSError as error:
        logger.warning("cannot save TensorRT timing cache %s: %s", path, error)


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
    cache_dir: str | os.PathLike,
    precision: str,
    device_info: DeviceInfo,
    expected_io: Sequence[TensorInfo],
    api: TensorRTApi | None = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> CachedEngine:
    """Load the cached engine for ``stage`` if its sidecar and I/O match; else build it.

    A cached file that does not deserialize is deleted and rebuilt once. The first build of
    a stage takes minutes; later starts load the cached file in seconds.
    """
    _check_precision(precision)
    api = api or TensorRTModule.load()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX graph for stage {stage!r} not found: {onnx_path}")
    expected_io = tuple(expected_io)
    key = EngineKey.create(
        file_sha256(onnx_path),
        api.version,
        device_info.name,
        device_info.compute_capability,
        precision,
        {t.name: t.shape for t in expected_io if t.is_input},
    )
    folder = usable_cache_dir(cache_dir)
    engine_path = folder / key.file_name(stage)
    cached = _load_cached(engine_path, key, expected_io, api)
    if cached is not None:
        return cached
    logger.warning(
        "building the TensorRT %s engine for stage %s: the first build takes minutes "
        "(cached afterwards in %s)",
        precision,
        stage,
        folder,
    )
    timing_cache = folder / timing_cache_name(api.version, device_info, precision)
    data, used = api.build(onnx_path, precision, workspace_bytes, timing_cache)
    engine = api.deserialize(data)
    actual = api.io_tensors(engine)
    if _io_json(actual) != _io_json(expected_io):
        raise EngineBuildError(
            f"engine built from {onnx_path} has I/O {actual}, stage {stage!r} expects {expected_io}"
        )
    saved = _save_engine(engine_path, data, _sidecar(key, expected_io, used))
    return CachedEngine(engine, engine_path if saved else None, used, actual)


def _load_cached(
    engine_path: Path, key: EngineKey, expected_io: tuple[TensorInfo, ...], api: TensorRTApi
) -> CachedEngine | None:
    if not engine_path.is_file():
        return None
    sidecar = _read_sidecar(engine_path)
    wanted = _sidecar(key, expected_io, precision="")
    if sidecar is None or any(sidecar.get(k) != wanted[k] for k in ("format", "key", "io")):
        logger.warning(
            "cached engine %s does not match this graph/GPU/shapes; rebuilding", engine_path
        )
        return None
    try:
        engine = api.deserialize(engine_path.read_bytes())
    except (EngineLoadError, OSError) as error:
        logger.warning(
            "cached engine %s is unusable (%s); deleting and rebuilding", engine_path, error
        )
        _remove(engine_path, _sidecar_path(engine_path))
        return None
    actual = api.io_tensors(engine)
    if _io_json(actual) != wanted["io"]:
        logger.warning(
            "cached engine %s has I/O %s, expected %s; rebuilding", engine_path, actual, expected_io
        )
        return None
    return CachedEngine(engine, engine_path, str(sidecar.get("precision", "")), actual)


def usable_cache_dir(preferred: str | os.PathLike) -> Path:
    """``preferred`` if a file can be written there; else a private temporary folder (warned)."""
    preferred = Path(preferred)
    error = _writable_error(preferred)
    if error is None:
        return preferred
    fallback = Path(tempfile.gettempdir()) / f"synboost_ros-{_user_id()}" / "tensorrt"
    if _writable_error(fallback) is not None or not _owned_by_me(fallback.parent):
        fallback = Path(tempfile.mkdtemp(prefix="synboost_ros-tensorrt-"))
    logger.warning(
        "TensorRT engine cache %s is not writable (%s); using %s (engines there may not "
        "survive a reboot: set cache_dir / SYNBOOST_CACHE_DIR to a writable folder)",
        preferred,
        error,
        fallback,
    )
    return fallback


def _writable_error(folder: Path) -> OSError | None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return error
    return None


def _user_id() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def _owned_by_me(folder: Path) -> bool:
    return not hasattr(os, "getuid") or folder.stat().st_uid == os.getuid()


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(Path(tmp))
        raise


def _save_engine(engine_path: Path, data: bytes, sidecar: dict) -> bool:
    # The sidecar is written last: an engine without a matching sidecar is never trusted.
    try:
        write_atomically(engine_path, data)
        write_atomically(_sidecar_path(engine_path), json.dumps(sidecar, indent=2).encode())
    except OSError as error:
        _remove(engine_path, _sidecar_path(engine_path))
        logger.warning(
            "cannot save TensorRT engine %s (%s); it is rebuilt next start", engine_path, error
        )
        return False
    return True


def _sidecar(key: EngineKey, io: Sequence[TensorInfo], precision: str) -> dict:
    return {
        "format": SIDECAR_FORMAT,
        "key": _json(asdict(key)),
        "io": _io_json(io),
        "precision": precision,
    }


def _io_json(io: Sequence[TensorInfo]) -> list:
    return sorted(_json([asdict(t) for t in io]), key=lambda t: t["name"])


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _sidecar_path(engine_path: Path) -> Path:
    return engine_path.with_suffix(".json")


def _read_sidecar(engine_path: Path) -> dict | None:
    try:
        data = json.loads(_sidecar_path(engine_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _remove(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("cannot remove %s: %s", path, error)


def gpu_device_info(index: int | None = None) -> DeviceInfo:
    """Name and compute capability of a CUDA device (default: torch's current one)."""
    import torch

    if not torch.cuda.is_available():
        raise ValueError("no CUDA device: TensorRT engines need an NVIDIA GPU")
    props = torch.cuda.get_device_properties(
        torch.cuda.current_device() if index is None else index
    )
    return DeviceInfo(props.name, (props.major, props.minor))
