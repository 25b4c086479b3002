"""This machine's arithmetic peak, measured: a square matrix product per precision, the
reference for the bench's achieved rates (FLOP = 2 x MAC, as ``flops.py`` counts).

The best rate of repeated products over a short time budget, with torch's own thread count
(``torch.get_num_threads``) and its BLAS / oneDNN kernels: what the stages' convolutions could
at most reach with the same library on the same cores.
"""

from __future__ import annotations

import time

import torch

from synboost_ros.options import device_kind

PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_PEAK_PRECISIONS = ("fp32", "bf16")
DEFAULT_SIZE = 1024
DEFAULT_SECONDS = 0.5


def matmul_gflops(
    precision: str,
    device: str = "cpu",
    size: int = DEFAULT_SIZE,
    seconds: float = DEFAULT_SECONDS,
) -> float:
    """Best GFLOP/s of ``size``-square matrix products in ``precision`` on ``device``, over
    at least 3 products and about ``seconds`` of products after one warm-up."""
    if precision not in PEAK_DTYPES:
        raise ValueError(f"precision must be one of {tuple(PEAK_DTYPES)}, got {precision!r}")
    if size < 1 or seconds <= 0:
        raise ValueError(f"size and seconds must be positive, got {size} and {seconds}")
    generator = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(size, size, generator=generator).to(device, PEAK_DTYPES[precision])
        for _ in range(2)
    )
    sync = torch.cuda.synchronize if device_kind(device) == "cuda" else (lambda: None)
    flop = 2.0 * size**3
    best = float("inf")
    with torch.inference_mode():
        torch.mm(a, b)
        sync()
        deadline, count = time.perf_counter() + seconds, 0
        while count < 3 or time.perf_counter() < deadline:
            start = time.perf_counter()
            torch.mm(a, b)
            sync()
            best = min(best, time.perf_counter() - start)
            count += 1
    return flop / best / 1e9


def measure_peaks(
    precisions: tuple[str, ...] = CPU_PEAK_PRECISIONS,
    device: str = "cpu",
    seconds: float = DEFAULT_SECONDS,
) -> dict[str, float]:
    """GFLOP/s per precision, rounded to 0.1."""
    return {p: round(matmul_gflops(p, device, seconds=seconds), 1) for p in precisions}
