"""The interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class BackendUnavailableError(RuntimeError):
    """A backend or device that this machine lacks (TensorRT not installed, no such GPU)."""


class Backend(ABC):
    """Runs the three pipeline stages (see ``synboost_ros.stages``) on numpy arrays."""

    name: str = ""
    device: str = "cpu"
    precision: str = "fp32"
    layout: str = "nchw"  # memory format of the activations: nchw or channels_last
    graphs: bool = False  # stages replayed from recorded CUDA graphs
    # Stages also run on torch tensors on the device (``run_tensors``): the pipeline then
    # keeps the frame there (``device_pipeline``).
    device_resident: bool = False

    @abstractmethod
    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage; inputs and outputs are keyed by the names in ``stage_specs``."""

    def describe(self) -> str:
        """One line naming backend, device, the precision that actually runs, the layout and
        the mode (eager or CUDA graphs)."""
        mode = "CUDA graphs" if self.graphs else "eager"
        return f"{self.name} on {self.device} ({self.precision}, {self.layout}, {mode})"
