"""The per-camera latest-frame slots, their fairness, and the worker thread, without ROS."""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict

import pytest

from synboost_ros.ros.frame_worker import FrameWorker, LatestSlots, SlotClosed

WAIT_S = 20.0  # generous: the CI machine is small and shared


def test_slot_keeps_only_the_newest_item_and_reports_drops():
    slots: LatestSlots[str, int] = LatestSlots()
    assert slots.put("cam", 1) is False
    assert slots.put("cam", 2) is True
    assert slots.put("cam", 3) is True
    assert slots.take() == ("cam", 3)
    assert slots.put("cam", 4) is False
    assert slots.take() == ("cam", 4)


def test_closed_slot_wakes_the_taker_and_discards_the_waiting_item():
    slots: LatestSlots[str, int] = LatestSlots()
    slots.put("cam", 1)
    slots.close()
    with pytest.raises(SlotClosed):
        slots.take()


def test_the_longest_waiting_camera_is_served_first_and_a_newer_frame_keeps_its_place():
    slots: LatestSlots[str, int] = LatestSlots()
    slots.put("front", 1)
    slots.put("rear", 1)
    assert slots.put("front", 2) is True  # replaces front's frame, front still waited longest
    slots.put("side", 1)
    assert [slots.take() for _ in range(3)] == [("front", 2), ("rear", 1), ("side", 1)]
    # Every camera waiting all the time: served in turn.
    order = []
    for frame in range(2, 6):
        for camera in ("side", "front", "rear"):
            slots.put(camera, frame)
        order += [slots.take()[0] for _ in range(3)]
    assert order == ["side", "front", "rear"] * 4


def simulate(
    slots: LatestSlots, rates_hz: dict[str, float], service_s: float, duration_s: float, key=None
) -> tuple[dict[str, list[tuple[float, float]]], Counter]:
    """Cameras publishing at ``rates_hz`` into ``slots`` for ``duration_s`` on a fake clock,
    a worker that needs ``service_s`` per frame. ``key(camera)`` is the slot a camera's frames
    go to (default: its own). Returns (camera -> [(sent, started)] of the frames served, the
    number of frames each camera lost to a newer one)."""
    key = key or (lambda camera: camera)
    frames = sorted(
        (k / rate, camera)
        for camera, rate in rates_hz.items()
        for k in range(int(duration_s * rate))
    )
    served: dict[str, list[tuple[float, float]]] = defaultdict(list)
    dropped: Counter = Counter()
    waiting: set = set()  # slots holding a frame (mirrors what was put and not taken)
    free_at = 0.0  # when the worker finishes its current frame
    for sent, camera in [*frames, (math.inf, None)]:
        while waiting and free_at <= sent:  # the worker takes frames until the next one comes
            slot, (owner, frame_sent) = slots.take()
            waiting.discard(slot)
            served[owner].append((frame_sent, free_at))
            free_at += service_s
        if camera is None:
            break
        if slots.put(key(camera), (camera, sent)):
            dropped[camera] += 1
        waiting.add(key(camera))
        free_at = max(free_at, sent)  # an idle worker starts at once
    return served, dropped


def test_a_30_hz_camera_cannot_starve_a_10_hz_one():
    rates = {"fast": 30.0, "slow": 10.0}
    service_s = 1 / 8  # the worker manages 8 frames per second in all
    served, dropped = simulate(LatestSlots(), rates, service_s, duration_s=20.0)
    fast, slow = len(served["fast"]), len(served["slow"])
    assert fast + slow == pytest.approx(20.0 / service_s, abs=2)  # the worker never idles
    assert abs(fast - slow) <= 1  # an even share of the worker
    assert slow + dropped["slow"] == 200 and fast + dropped["fast"] == 600  # all accounted
    # A served slow frame waited at most for the frame in progress and one fast frame.
    assert max(started - sent for sent, started in served["slow"]) <= 2 * service_s + 1e-9
    # One slot shared by all cameras (the single-camera node's): the slow camera starves.
    shared, _ = simulate(LatestSlots(), rates, service_s, 20.0, key=lambda camera: "one")
    assert len(shared["slow"]) < len(shared["fast"]) / 2


def test_a_slow_camera_loses_no_frame_beside_a_fast_one_when_the_worker_has_time():
    served, dropped = simulate(LatestSlots(), {"fast": 30.0, "slow": 2.0}, 0.1, duration_s=10.0)
    assert len(served["slow"]) == 20 and dropped["slow"] == 0
    assert max(started - sent for sent, started in served["slow"]) <= 0.2 + 1e-9
    assert len(served["fast"]) >= 70  # the fast camera gets the rest of the worker


def test_worker_processes_the_newest_frame_and_drops_the_ones_in_between():
    release = threading.Event()
    started = threading.Event()
    done = threading.Event()
    seen: list[int] = []

    def process(camera: str, frame: int) -> None:
        seen.append(frame)
        started.set()
        release.wait(WAIT_S)
        if frame == 9:
            done.set()

    worker = FrameWorker(process, on_error=lambda camera, frame, error: None)
    worker.start()
    assert worker.submit("cam", 0) is False
    assert started.wait(WAIT_S)  # frame 0 is being processed; the slot is empty
    drops = [worker.submit("cam", frame) for frame in range(1, 10)]
    release.set()
    assert done.wait(WAIT_S)
    assert seen == [0, 9]
    assert drops == [False] + [True] * 8
    assert worker.stop()


def test_errors_are_reported_and_the_thread_keeps_going():
    errors: list[tuple[str, int, str]] = []
    processed: list[tuple[str, int]] = []
    handled = threading.Semaphore(0)

    def process(camera: str, frame: int) -> None:
        if frame % 2:
            raise ValueError(f"bad frame {frame}")
        processed.append((camera, frame))
        handled.release()

    def on_error(camera: str, frame: int, error: Exception) -> None:
        errors.append((camera, frame, str(error)))
        handled.release()
        raise RuntimeError("the error handler itself fails")

    worker = FrameWorker(process, on_error)
    worker.start()
    for frame in range(5):
        worker.submit(f"cam{frame % 2}", frame)
        assert handled.acquire(timeout=WAIT_S)  # one at a time: nothing is dropped
    assert processed == [("cam0", 0), ("cam0", 2), ("cam0", 4)]
    assert errors == [("cam1", 1, "bad frame 1"), ("cam1", 3, "bad frame 3")]
    assert worker.alive
    assert worker.stop()
    assert not worker.alive


def test_stop_waits_for_the_frame_in_progress():
    started = threading.Event()
    finished = threading.Event()

    def process(camera: str, frame: int) -> None:
        started.set()
        threading.Event().wait(0.2)
        finished.set()

    worker = FrameWorker(process, on_error=lambda camera, frame, error: None)
    worker.start()
    worker.submit("cam", 1)
    assert started.wait(WAIT_S)
    assert worker.stop(timeout=WAIT_S)
    assert finished.is_set()
