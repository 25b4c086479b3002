"""Achieved rate of each stage against the measured peak: FLOPs of one frame (``flops.py``)
over the stage's median time, and that rate's share of the matrix-product peak of the
precision that ran (``peak.py``)."""

from __future__ import annotations

from synboost_ros.benchmark import BenchmarkReport
from synboost_ros.config import STAGE_NAMES
from synboost_ros.flops import TOTAL


def reference_peak(precision: str, peaks: dict[str, float]) -> float | None:
    """The peak a stage run in ``precision`` is measured against (None when not measured)."""
    return peaks.get(precision)


def stage_efficiency(
    flops: dict[str, int], p50_ms: dict[str, float], peak: float | None
) -> dict[str, dict[str, float | None]]:
    """Per stage of ``STAGE_NAMES`` and ``"total"`` (the whole frame, every other stage's time
    included): GFLOP, GFLOP/s at the median time, and share of ``peak`` (None without one).
    A stage without a positive median time is left out."""
    rows: dict[str, dict[str, float | None]] = {}
    for name in (*STAGE_NAMES, TOTAL):
        if p50_ms.get(name, 0.0) <= 0.0:
            continue
        gflop = flops[name] / 1e9
        rate = gflop / (p50_ms[name] / 1000.0)
        rows[name] = {
            "gflop": round(gflop, 3),
            "gflops_per_s": round(rate, 2),
            "peak_share": round(rate / peak, 4) if peak else None,
        }
    return rows


def report_efficiency(
    report: BenchmarkReport, peak: float | None
) -> dict[str, dict[str, float | None]]:
    """``stage_efficiency`` of a bench report: each stage and the whole frame at its median."""
    p50 = {name: values["p50"] for name, values in report.stages.items()}
    p50[TOTAL] = report.total_ms["p50"]
    return stage_efficiency(report.flops, p50, peak)


def efficiency_table(rows: dict[str, dict[str, float | None]], precision: str) -> str:
    """The rows as text, one line per stage."""
    lines = [f"{'stage':14s} {'GFLOP':>7s} {'GFLOP/s':>9s} {f'% {precision} peak':>14s}"]
    for name, row in rows.items():
        share = row["peak_share"]
        shown = f"{100 * share:.1f} %" if share is not None else "-"
        lines.append(f"{name:14s} {row['gflop']:7.2f} {row['gflops_per_s']:9.1f} {shown:>14s}")
    return "\n".join(lines)
