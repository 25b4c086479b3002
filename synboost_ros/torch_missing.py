"""Telling a missing PyTorch apart from other import errors, in one line that says what to do."""

from __future__ import annotations

TORCH_INSTALL = "pip install 'synboost_ros[torch]'"


class TorchMissingError(ModuleNotFoundError):
    """PyTorch is needed and not installed; the message says what needed it and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message, name="torch")


def torch_missing(error: BaseException, what: str) -> TorchMissingError | None:
    """``error`` as a ``TorchMissingError`` saying that ``what`` needs PyTorch; None when
    ``error`` is not about a missing PyTorch."""
    if isinstance(error, TorchMissingError):
        return error
    if isinstance(error, ImportError) and (error.name or "").partition(".")[0] == "torch":
        return TorchMissingError(
            f"{what} needs PyTorch, which is not installed: {TORCH_INSTALL} (backends "
            "onnxruntime and tensorrt run the shipped model without it)"
        )
    return None
