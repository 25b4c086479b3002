"""Backend selection: tensorrt, then onnxruntime, then torch, as each is available."""

from __future__ import annotations

import importlib.util
import logging

import torch

from synboost_ros.backends.base import Backend, BackendUnavailableError
from synboost_ros.backends.tensorrt.api import tensorrt_installed
from synboost_ros.backends.tensorrt.calibration import CalibrationSet
from synboost_ros.model import SynBoostModel
from synboost_ros.options import (
    BACKEND_CHOICES,
    ModelOptions,
    cuda_index,
    device_kind,
    option_spec,
    resolve_precision,
)

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """Map ``auto`` to cuda when torch sees a GPU, else cpu. ValueError for a malformed name;
    ``BackendUnavailableError`` for ``cuda`` / ``cuda:N`` when torch sees no such GPU."""
    spec = option_spec(ModelOptions, "device")
    if not spec.accepts(device):
        raise ValueError(f"device must be one of {spec.allowed()}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device_kind(device) == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
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
    model: SynBoostModel,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    dla_core: int = -1,
    calibration: CalibrationSet | None = None,
) -> Backend:
    """Build the requested backend; ``auto`` takes the first available and says which ran.

    ``precision`` follows ``synboost_ros.options.resolve_precision`` on the resolved device.
    ``dla_core`` and ``calibration`` (int8) are TensorRT's. A backend or device that this
    machine lacks raises ``BackendUnavailableError``.
    """
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, got {backend!r}")
    device = resolve_device(device)
    running = resolve_precision(precision, device)
    candidates = available_backends(device) if backend == "auto" else [backend]
    errors = []
    for name in candidates:
        try:
            if name == "tensorrt":
                from synboost_ros.backends.tensorrt.backend import TensorRTBackend

                return TensorRTBackend(
                    model, device, running, dla_core=dla_core, calibration=calibration
                )
            return _build(name, model, device, running, explicit=precision != "auto")
        except (ImportError, RuntimeError, ValueError) as error:
            if backend != "auto" and isinstance(error, ImportError):
                raise BackendUnavailableError(f"backend {name}: {error}") from error
            if backend != "auto":
                raise
            errors.append(f"{name}: {error}")
            logger.warning("backend %s unavailable (%s); trying the next one", name, error)
    raise BackendUnavailableError("no backend could be created: " + "; ".join(errors))


def _build(name: str, model: SynBoostModel, device: str, precision: str, explicit: bool) -> Backend:
    if precision == "int8":
        logger.warning("int8 needs the TensorRT backend; %s runs fp16", name)
        precision = "fp16"
    if name == "torch":
        from synboost_ros.backends.torch_backend import TorchBackend

        return TorchBackend(model, device, precision)
    if name == "onnxruntime":
        from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
        from synboost_ros.export import cached_onnx

        if precision == "fp16":
            note = logger.warning if explicit else logger.info
            note("onnxruntime runs the fp32 graphs; precision is fp32")
        return OnnxRuntimeBackend(cached_onnx(model), device)
    raise ValueError(f"unknown backend {name!r}")
