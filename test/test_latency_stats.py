"""Counters, sliding windows, rates and the health verdict, driven by a fake clock."""

from __future__ import annotations

import math
import threading

import pytest

from synboost_ros.ros.latency_stats import (
    MAX_IN_PROGRESS,
    STAGES,
    FrameCounters,
    HealthLimits,
    Level,
    PipelineStats,
    RateMeter,
    SlidingWindow,
    evaluate_health,
    node_health,
    starved,
    total_key_values,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_percentiles_and_max_cover_only_the_last_samples():
    window = SlidingWindow(size=100)
    for value in range(1000, 1100):  # pushed out below
        window.add(value)
    for value in range(1, 101):
        window.add(value)
    assert window.percentile(50) == pytest.approx(50.5)
    assert window.percentile(95) == pytest.approx(95.05)
    assert window.maximum() == 100


def test_empty_window_reports_nan():
    window = SlidingWindow()
    assert math.isnan(window.percentile(50)) and math.isnan(window.maximum())
    with pytest.raises(ValueError):
        SlidingWindow(size=0)


def test_rate_meter_measures_a_steady_rate_and_decays_when_events_stop():
    clock = FakeClock()
    meter = RateMeter(window_s=5.0, clock=clock)
    assert meter.rate_hz() == 0.0
    for _ in range(300):  # 10 s at 30 Hz
        meter.tick()
        clock.now += 1 / 30
    assert meter.rate_hz() == pytest.approx(30.0, rel=0.02)
    clock.now += 2.0
    assert 0 < meter.rate_hz() < 25.0
    clock.now += 10.0
    assert meter.rate_hz() == 0.0


def test_counters_and_snapshot_keys():
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    for index in range(10):
        stats.frame_received()
        if index % 2:
            stats.frame_dropped()
        clock.now += 0.1
    stats.frame_failed("unknown encoding 'xyz'")
    for _ in range(3):
        stats.frame_published({stage: 10.0 for stage in STAGES} | {"preprocess": 1.0}, 40.0)
        clock.now += 0.1
    stats.frame_idle()
    snapshot = stats.snapshot()
    counters = snapshot.counters
    assert (counters.frames_in, counters.frames_dropped, counters.frames_bad) == (10, 5, 1)
    assert (counters.frames_out, counters.frames_idle) == (3, 1)
    assert snapshot.consecutive_failures == 0
    values = dict(snapshot.key_values())
    for key in ("frames_in", "frames_out", "frames_dropped", "frames_bad", "rate_in_hz"):
        assert key in values
    for stage in ("decode", "segmentation", "synthesis", "dissimilarity", "publish", "total"):
        assert float(values[f"{stage}_ms_p50"]) == 10.0
        assert float(values[f"{stage}_ms_p95"]) == 10.0
    assert float(values["e2e_ms_max"]) == 40.0 and float(values["e2e_ms_p95"]) == 40.0
    assert values["last_error"] == "unknown encoding 'xyz'"
    assert "preprocess_ms_p50" not in values


def test_counting_is_thread_safe():
    stats = PipelineStats()

    def receive() -> None:
        for _ in range(2000):
            stats.frame_received()

    threads = [threading.Thread(target=receive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.snapshot().counters.frames_in == 8000


def running_stats(rate_hz: float, e2e_ms: float) -> PipelineStats:
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    for _ in range(50):
        stats.frame_received()
        stats.frame_published({"total": e2e_ms / 2}, e2e_ms)
        clock.now += 1 / rate_hz
    clock.now -= 1 / rate_hz
    return stats


def test_health_ok_when_fast_and_on_time():
    health = evaluate_health(running_stats(20, 50).snapshot(), HealthLimits(5.0, 100.0))
    assert health.level == Level.OK
    assert "20.0 Hz" in health.message


def test_health_warns_on_low_rate_and_on_latency_with_both_reasons():
    health = evaluate_health(running_stats(2, 500).snapshot(), HealthLimits(5.0, 100.0))
    assert health.level == Level.WARN
    assert "output rate 2.0 Hz < min_rate_hz 5" in health.message
    assert "e2e latency p95 500.0 ms > latency_budget_ms 100" in health.message


def test_health_rate_check_is_off_at_zero():
    health = evaluate_health(running_stats(2, 50).snapshot(), HealthLimits(0.0, 100.0))
    assert health.level == Level.OK


def test_health_is_ok_while_idle_without_subscribers():
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    for _ in range(10):
        stats.frame_received()
        stats.frame_idle()
        clock.now += 0.1
    health = evaluate_health(stats.snapshot(), HealthLimits(5.0, 100.0))
    assert health.level == Level.OK and "idle" in health.message


def test_health_warns_with_the_hint_when_publishers_send_no_frame():
    clock = FakeClock()
    stats = PipelineStats(clock=clock)
    limits = HealthLimits(0.0, 100.0, silence_s=3.0)
    clock.now += 2.9
    assert not starved(stats.snapshot(), limits, publishers=1)
    clock.now += 0.2  # 3.1 s since start without a frame
    assert not starved(stats.snapshot(), limits, publishers=0)  # nobody publishes: fine
    health = evaluate_health(stats.snapshot(), limits, publishers=2, hint="set X")
    assert health.level == Level.WARN
    assert health.message == "no frame for 3 s from 2 publisher(s) on the input: set X"
    stats.frame_received()
    assert evaluate_health(stats.snapshot(), limits, publishers=2, hint="set X").level == Level.OK
    clock.now += 5.0  # frames stopped again
    assert starved(stats.snapshot(), limits, publishers=1)


def test_health_error_after_the_failure_limit_and_recovery():
    stats = running_stats(20, 50)
    limits = HealthLimits(5.0, 100.0, failure_limit=3)
    stats.frame_failed("a")
    stats.frame_failed("b")
    assert evaluate_health(stats.snapshot(), limits).level != Level.ERROR
    stats.frame_failed("step 10 < width")
    health = evaluate_health(stats.snapshot(), limits)
    assert health.level == Level.ERROR
    assert health.message == "last 3 frames all failed: step 10 < width"
    stats.frame_published({"total": 1.0}, 50.0)
    assert evaluate_health(stats.snapshot(), limits).level != Level.ERROR


def test_health_error_when_the_pipeline_did_not_load():
    health = node_health({}, load_error="weights manifest /x/manifest.json not found")
    assert health.level == Level.ERROR
    assert health.message == "pipeline failed to load: weights manifest /x/manifest.json not found"


def test_node_health_is_the_worst_camera_s_and_names_each_camera():
    ok = evaluate_health(running_stats(20, 50).snapshot(), HealthLimits(5.0, 100.0))
    slow = evaluate_health(running_stats(2, 50).snapshot(), HealthLimits(5.0, 100.0))
    assert node_health({"": slow}) == slow  # one camera: its verdict as it is
    both = node_health({"front": ok, "rear": slow})
    assert both.level == Level.WARN
    assert both.message == f"front: {ok.message}; rear: {slow.message}"
    assert node_health({"front": ok, "rear": ok}).level == Level.OK


def test_totals_sum_the_counters_and_rates_of_every_camera():
    front, rear = running_stats(20, 50), running_stats(10, 50)
    rear.frame_received()
    rear.frame_dropped()
    rear.frame_failed("bad")
    totals = dict(total_key_values([front.snapshot(), rear.snapshot()]))
    assert totals["frames_in"] == "101" and totals["frames_out"] == "100"
    assert (totals["frames_dropped"], totals["frames_bad"]) == ("1", "1")
    assert float(totals["rate_out_hz"]) == pytest.approx(30.0, rel=0.01)


def test_accounting_identity_with_frames_in_progress_and_lost():
    stats = PipelineStats(clock=FakeClock())
    for _ in range(6):
        stats.frame_received()
    stats.frame_dropped()
    stats.frame_failed("bad")
    stats.frame_idle()
    stats.frame_published({"total": 1.0}, 2.0)
    stats.frames_lost(4)
    values = dict(stats.snapshot().key_values())
    assert values["frames_lost"] == "4"
    assert values["frames_in_progress"] == "2"
    assert values["accounting"] == (
        "frames_in 6 = out 1 + dropped 1 + bad 1 + idle 1 + in_progress 2: holds"
    )


def test_accounting_breaks_when_frames_go_missing_and_counts_cameras():
    counters = FrameCounters(frames_in=MAX_IN_PROGRESS + 1)
    assert not counters.accounting_holds()
    assert counters.accounting().endswith("BROKEN")
    assert counters.accounting_holds(cameras=2)
    assert not FrameCounters(frames_in=1, frames_out=2).accounting_holds()  # out before in
    totals = dict(total_key_values([running_stats(10, 5).snapshot()] * 2))
    assert totals["frames_in"] == "100" and totals["accounting"].endswith("holds")


def test_e2e_max_since_start_outlives_the_window():
    stats = PipelineStats(window_frames=3)
    stats.frame_published({}, 900.0)
    for _ in range(3):
        stats.frame_published({}, 10.0)
    snapshot = stats.snapshot()
    assert snapshot.e2e_ms[2] == 10.0
    values = dict(snapshot.key_values())
    assert values["e2e_ms_max_since_start"] == "900.000"
