"""Backend selection: tensorrt, then onnxruntime, then torch, as each is available."""

from __future__ import annotations

import importlib.util
import logging

import torch

from synboost_ros.backends.base import Backend
from synboost_ros.model import SynBoostModel

BACKEND_CHOICES = ("auto", "tensorrt", "onnxruntime", "torch")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
PRECISION_CHOICES = ("fp32", "fp16")

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """Map ``auto`` to cuda when torch sees a GPU, else cpu; validate the name."""
    if device not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def available_backends(device: str) -> list[str]:
    """Backends usable here for ``device``, fastest first."""
    found = []
    if device == "cuda" and importlib.util.find_spec("tensorrt") is not None:
        found.append("tensorrt")
    if importlib.util.find_spec("onnxruntime") is not None:
        found.append("onnxruntime")
    found.append("torch")
    return found


def create_backend(
    model: SynBoostModel, backend: str = "auto", device: str = "auto", precision: str = "fp32"
) -> Backend:
    """Build the requested backend; ``auto`` takes the first available and says which ran."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"backend must be one of {BACKEND_CHOICES}, got {backend!r}")
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {PRECISION_CHOICES}, got {precision!r}")
    device = resolve_device(device)
    if precision == "fp16" and device == "cpu":
        logger.info("fp16 needs a CUDA device; running fp32 on the CPU")
        precision = "fp32"
    candidates = available_backends(device) if backend == "auto" else [backend]
    errors = []
    for name in candidates:
        try:
            return _build(name, model, device, precision)
        except (ImportError, RuntimeError, ValueError) as error:
            if backend != "auto":
                raise
            errors.append(f"{name}: {error}")
            logger.warning("backend %s unavailable (%s); trying the next one", name, error)
    raise RuntimeError("no backend could be created: " + "; ".join(errors))


def _build(name: str, model: SynBoostModel, device: str, precision: str) -> Backend:
    if name == "torch":
        from synboost_ros.backends.torch_backend import TorchBackend

        return TorchBackend(model, device, precision)
    if name == "onnxruntime":
        from synboost_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
        from synboost_ros.export import cached_onnx

        if precision == "fp16":
            logger.warning("onnxruntime runs the fp32 graphs; precision is fp32")
        return OnnxRuntimeBackend(cached_onnx(model), device)
    from synboost_ros.backends.tensorrt.backend import TensorRTBackend

    return TensorRTBackend(model, device, precision)
