"""What ``synboost bench`` adds for GPUs: the mode that ran, FLOP rates, memory, the machine.

Kept apart from ``benchmark`` (percentiles and FLOP counts, any device): these figures are
computed from a finished ``BenchmarkReport`` and the pipeline that made it. torch is
imported only for a CUDA device.
"""

from __future__ import annotations

import platform
from typing import Any

from synboost_ros.bench_efficiency import report_efficiency
from synboost_ros.benchmark import BenchmarkReport
from synboost_ros.flops import TOTAL
from synboost_ros.options import device_kind


def run_mode(pipeline: Any, weights: str) -> dict[str, Any]:
    """How the frames ran: CUDA graphs, device-resident frames, the stage timer, the
    weights (``random``: timing only, the maps are meaningless)."""
    return {
        "graphs": pipeline.graphs,
        "device_resident": pipeline.device_resident,
        "stage_timer": pipeline.stage_timer,
        "weights": weights,
    }


def flop_rates(report: BenchmarkReport) -> dict[str, Any]:
    """Achieved TFLOP/s at the median times (``bench_efficiency``'s rates): the frame (FLOPs
    of the three stages over the whole frame's time) and each stage over its own time."""
    rows = report_efficiency(report, None)
    tflops = {name: round(row["gflops_per_s"] / 1000.0, 4) for name, row in rows.items()}
    return {
        "frame_tflops": tflops.pop(TOTAL),
        "stage_tflops": tflops,
    }


def gpu_memory(device: str) -> dict[str, float] | None:
    """Peak GPU memory of this process (allocated and reserved by torch), MiB; None off CUDA."""
    if device_kind(device) != "cuda":
        return None
    import torch

    return {
        "peak_allocated_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
        "peak_reserved_mib": round(torch.cuda.max_memory_reserved(device) / 2**20, 1),
    }


def machine(device: str) -> dict[str, Any]:
    """The GPU (name, compute capability), torch, CUDA and cuDNN versions; the CPU's name."""
    figures: dict[str, Any] = {"cpu": platform.processor() or platform.machine()}
    try:
        import torch
    except ImportError:
        return figures
    figures["torch"] = torch.__version__
    if device_kind(device) == "cuda":
        properties = torch.cuda.get_device_properties(device)
        figures.update(
            gpu=properties.name,
            compute_capability=f"{properties.major}.{properties.minor}",
            gpu_memory_mib=round(properties.total_memory / 2**20),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return figures


def device_figures(pipeline: Any, report: BenchmarkReport, weights: str) -> dict[str, Any]:
    """Every figure of this module for one pipeline's report, as JSON keys."""
    return {
        "mode": run_mode(pipeline, weights),
        "throughput": flop_rates(report),
        "gpu_memory": gpu_memory(pipeline.device),
        "machine": machine(pipeline.device),
    }
