"""Bad-frame log throttling per reason (``ros/log_throttle.py``)."""

from __future__ import annotations

from synboost_ros.ros.log_throttle import ReasonThrottle


def test_a_new_reason_is_always_logged_and_repeats_are_throttled_per_reason():
    throttle = ReasonThrottle(period_s=2.0)
    reasons = ["data length 10 != step 3 x height 4"] * 8 + ["unknown encoding 'yuv422_yuy2'"]
    logged = [throttle.admit("", reason, now=0.1 * i) for i, reason in enumerate(reasons)]
    # nine bad frames in 0.9 s: the first of each reason is logged (was: one line for all)
    assert logged == [0, None, None, None, None, None, None, None, 0]


def test_numbers_do_not_make_a_new_reason_and_left_out_lines_are_counted():
    throttle = ReasonThrottle(period_s=2.0)
    assert throttle.admit("", "image is 4000x1", now=0.0) == 0
    assert throttle.admit("", "image is 3000x1", now=1.0) is None
    assert throttle.admit("", "image is 2000x1", now=1.5) is None
    assert throttle.admit("", "image is 1000x1", now=2.0) == 2  # the period is over


def test_cameras_are_throttled_apart_and_memory_is_bounded():
    throttle = ReasonThrottle(period_s=2.0, max_reasons=2)
    assert throttle.admit("front", "empty image", now=0.0) == 0
    assert throttle.admit("rear", "empty image", now=0.0) == 0
    assert throttle.admit("rear", "truncated", now=0.1) == 0  # forgets front's empty image
    assert throttle.admit("front", "empty image", now=0.2) == 0
