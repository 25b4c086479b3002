"""ONNX Runtime backend: one session per stage graph (CPU, or a CUDA device when the provider
exists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synboost_ros.backends.base import Backend
from synboost_ros.options import cuda_index, device_kind


class OnnxRuntimeBackend(Backend):
    """Runs the per-stage ONNX graphs written by ``synboost_ros.export``."""

    name = "onnxruntime"

    def __init__(
        self, graphs: dict[str, Path], device: str = "cpu", intra_op_threads: int = 0
    ) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        providers: list[Any] = ["CPUExecutionProvider"]
        if device_kind(device) == "cuda":
            if "CUDAExecutionProvider" not in available:
                raise ValueError(
                    f"device {device!r} requested but this onnxruntime build has no CUDA "
                    f"provider (providers: {available}); install onnxruntime-gpu or use device cpu"
                )
            gpu = {"device_id": cuda_index(device) or 0}
            providers.insert(0, ("CUDAExecutionProvider", gpu))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads
        # Idle threads sleep instead of spinning: the node shares the CPU with the camera
        # driver and its own decode / publish work between frames.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.device = device
        self.precision = "fp32"
        self._sessions = {
            stage: ort.InferenceSession(str(path), sess_options=options, providers=providers)
            for stage, path in graphs.items()
        }
        self._output_names = {
            stage: [o.name for o in session.get_outputs()]
            for stage, session in self._sessions.items()
        }

    def run(self, stage: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one stage graph."""
        session = self._sessions[stage]
        feeds = {i.name: np.ascontiguousarray(inputs[i.name]) for i in session.get_inputs()}
        results = session.run(self._output_names[stage], feeds)
        return dict(zip(self._output_names[stage], results, strict=True))
