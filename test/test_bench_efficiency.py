"""Achieved rates against the measured peak (bench_efficiency, peak)."""

from __future__ import annotations

import pytest

from synboost_ros.bench_efficiency import efficiency_table, reference_peak, stage_efficiency
from synboost_ros.peak import matmul_gflops, measure_peaks

FLOPS = {"segmentation": 2_000_000_000, "synthesis": 1_000_000_000, "dissimilarity": 4_000_000_000}
FLOPS["total"] = sum(FLOPS.values())
P50_MS = {"segmentation": 20.0, "synthesis": 50.0, "dissimilarity": 40.0, "total": 140.0}


def test_rates_and_shares_of_the_peak():
    rows = stage_efficiency(FLOPS, P50_MS, peak=200.0)
    assert rows["segmentation"] == {"gflop": 2.0, "gflops_per_s": 100.0, "peak_share": 0.5}
    assert rows["synthesis"]["gflops_per_s"] == 20.0 and rows["synthesis"]["peak_share"] == 0.1
    assert rows["total"]["gflops_per_s"] == 50.0  # 7 GFLOP in the frame's 140 ms
    assert list(rows) == ["segmentation", "synthesis", "dissimilarity", "total"]
    assert stage_efficiency(FLOPS, P50_MS, peak=None)["total"]["peak_share"] is None


def test_the_peak_of_the_precision_that_ran():
    peaks = {"fp32": 190.0, "bf16": 830.0}
    assert reference_peak("bf16", peaks) == 830.0 and reference_peak("fp32", peaks) == 190.0
    assert reference_peak("int8", peaks) is None


def test_table_shows_every_stage_and_the_share():
    text = efficiency_table(stage_efficiency(FLOPS, P50_MS, peak=200.0), "fp32")
    assert "% fp32 peak" in text.splitlines()[0]
    assert "segmentation      2.00     100.0         50.0 %" in text
    no_peak = efficiency_table(stage_efficiency(FLOPS, P50_MS, peak=None), "int8")
    assert no_peak.splitlines()[-1].endswith("-")


def test_the_measured_peak_is_a_plausible_rate():
    peaks = measure_peaks(("fp32", "bf16"), seconds=0.02)
    assert set(peaks) == {"fp32", "bf16"}
    assert all(0.1 < rate < 1e6 for rate in peaks.values()), peaks  # GFLOP/s of one CPU


def test_peak_refuses_bad_arguments():
    with pytest.raises(ValueError, match="precision must be one of"):
        matmul_gflops("int8")
    with pytest.raises(ValueError, match="must be positive"):
        matmul_gflops("fp32", size=0)
