"""Backend selection: tensorrt, then onnxruntime, then torch, as each is available.

On the CPU, ``auto`` takes onnxruntime when fp32 runs (its fp32 graphs ran 1.4-1.55x faster
than torch eager, channels-last or not, on an AVX-512 CPU without bf16); when bf16 runs
(precision auto on a CPU with bf16 instructions) it times onnxruntime fp32 against torch bf16
at start (``selection.fastest``) and keeps the faster. An explicit bf16 runs on torch only.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from synboost_ros.backends.base import Backend, BackendUnavailableError
from synboost_ros.backends.tensorrt.api import tensorrt_installed
from synboost_ros.backends.tensorrt.calibration import CalibrationSet
from synboost_ros.model_source import ModelSource
from synboost_ros.options import (
    BACKEND_CHOICES,
    ModelOptions,
    cuda_index,
    device_kind,
    option_spec,
    resolve_graphs,
    resolve_precision,
)
from synboost_ros.torch_missing import torch_missing

if TYPE_CHECKING:
    from synboost_ros.model import SynBoostModel

logger = logging.getLogger(__name__)


def _cuda_device_count() -> int | None:
    """How many CUDA devices torch sees; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(device: str) -> str:
    """Map ``auto`` to cuda when torch sees a GPU, else cpu. ValueError for a malformed name;
    ``BackendUnavailableError`` for ``cuda`` / ``cuda:N`` when torch sees no such GPU.

    Without torch, ``auto`` is cpu (said in the log) and ``cuda`` / ``cuda:N`` are left to the
    backend to check."""
    spec = option_spec(ModelOptions, "device")
    if not spec.accepts(device):
        raise ValueError(f"device must be one of {spec.allowed()}, got {device!r}")
    count = _cuda_device_count() if device == "auto" or device_kind(device) == "cuda" else 0
    if count is None:
        if device == "auto":
            logger.info("device auto is cpu: without PyTorch no GPU is looked for (device cuda)")
            return "cpu"
        return device
    if device == "auto":
        return "cuda" if count else "cpu"
    if device_kind(device) == "cuda":
        if count == 0:
            raise BackendUnavailableError(
                f"device {device!r} requested but torch sees no CUDA device; use device cpu"
            )
        index = cuda_index(device)
        if index is not None and index >= count:
            raise BackendUnavailableError(
                f"device {device!r} requested but torch sees {count} CUDA device(s): "
                f"cuda:0 to cuda:{count - 1}"
            )
    return device


def available_backends(device: str) -> list[str]:
    """Backends usable here for ``device``, fastest first."""
    found = []
    if device_kind(device) == "cuda" and tensorrt_installed():
        found.append("tensorrt")
    if importlib.util.find_spec("onnxruntime") is not None:
        found.append("onnxruntime")
    found.append("torch")
    return found


def create_backend(
    model: ModelSource | SynBoostModel,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    dla_core: int = -1,
    calibration: CalibrationSet | None = None,
    graphs: str = "off",
) -> Backend:
    """Build the requested backend for a model (or its source); ``auto`` takes the first
    available and says which ran.

    ``precision`` follows ``synboost_ros.options.resolve_precision`` on the resolved device,
    ``graphs`` (off | on) ``resolve_graphs`` for the backend that is built.
    ``dla_core`` and ``calibration`` (int8) are TensorRT's. A backend or device that this
    machine lacks raises ``BackendUnavailableError``.
    """
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, got {backend!r}")
    source = model if isinstance(model, ModelSource) else ModelSource.of_model(model)
    device = resolve_device(device)
    running = resolve_precision(precision, device)
    candidates = available_backends(device) if backend == "auto" else [backend]
    if backend == "auto" and running == "bf16":
        if precision == "auto" and device_kind(device) == "cpu":
            return _fastest_on_cpu(source, device, [c for c in candidates if c != "tensorrt"])
        candidates = ["torch"]  # the one backend that runs bf16
    errors = []
    for name in candidates:
        try:
            return _build(
                name, source, device, running, precision != "auto", dla_core, calibration, graphs
            )
        except (ImportError, RuntimeError, ValueError) as error:
            if backend != "auto" and isinstance(error, ImportError):
                missing = torch_missing(error, f"backend {name}")
                raise BackendUnavailableError(str(missing or f"backend {name}: {error}")) from error
            if backend != "auto":
                raise
            errors.append(f"{name}: {error}")
            logger.warning("backend %s unavailable (%s); trying the next one", name, error)
    raise BackendUnavailableError("no backend could be created: " + "; ".join(errors))


def _fastest_on_cpu(source: ModelSource, device: str, candidates: list[str]) -> Backend:
    """Build each candidate (onnxruntime runs fp32, torch bf16), time them, keep the fastest."""
    from synboost_ros.backends.selection import fastest, probe_inputs

    built = []
    for name in candidates:
        try:
            built.append(_build(name, source, device, "bf16", False, -1, None, "off"))
        except (ImportError, RuntimeError, ValueError) as error:
            logger.warning("backend %s unavailable (%s); trying the next one", name, error)
    if not built:
        raise BackendUnavailableError(f"no backend could be created of {candidates}")
    if len(built) == 1:
        return built[0]
    chosen, seconds = fastest(built, probe_inputs(source.config))
    times = ", ".join(f"{name} {s * 1000:.1f} ms" for name, s in seconds.items())
    logger.info("backend auto: %s per frame on this CPU; running %s", times, chosen.name)
    return chosen


def _build(
    name: str,
    source: ModelSource,
    device: str,
    precision: str,
    explicit: bool,
    dla_core: int,
    calibration: CalibrationSet | None,
    graphs: str,
) -> Backend:
    with_graphs = resolve_graphs(graphs, device, name)
    if precision == "int8" and name != "tensorrt":
        logger.warning("int8 needs the TensorRT backend; %s runs fp16", name)
        precision = "fp16"
    if name == "torch":
        from synboost_ros.backends.torch_backend import TorchBackend

        return TorchBackend(source.model(), device, precision, with_graphs)
    if name == "onnxruntime":
        from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend

        if precision in ("fp16", "bf16"):
            note = logger.warning if explicit else logger.info
            note("onnxruntime runs the fp32 graphs; precision is fp32")
        return OnnxRuntimeBackend(source.onnx_graphs(name), device)
    from synboost_ros.backends.tensorrt.api import TensorRTModule
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend

    api = TensorRTModule.load()  # a missing TensorRT is said before graphs are exported
    return TensorRTBackend(
        source.onnx_graphs(name),
        source.config,
        device,
        precision,
        dla_core=dla_core,
        calibration=calibration,
        api=api,
    )
