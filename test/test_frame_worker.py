"""The one-frame slot and the worker thread, without ROS."""

from __future__ import annotations

import threading

import pytest

from synboost_ros.ros.frame_worker import FrameWorker, LatestSlot, SlotClosed

WAIT_S = 20.0  # generous: the CI machine is small and shared


def test_slot_keeps_only_the_newest_item_and_reports_drops():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take() == 3
    assert slot.put(4) is False
    assert slot.take() == 4


def test_closed_slot_wakes_the_taker_and_discards_the_waiting_item():
    slot: LatestSlot[int] = LatestSlot()
    slot.put(1)
    slot.close()
    with pytest.raises(SlotClosed):
        slot.take()


def test_worker_processes_the_newest_frame_and_drops_the_ones_in_between():
    release = threading.Event()
    started = threading.Event()
    done = threading.Event()
    seen: list[int] = []

    def process(frame: int) -> None:
        seen.append(frame)
        started.set()
        release.wait(WAIT_S)
        if frame == 9:
            done.set()

    worker = FrameWorker(process, on_error=lambda frame, error: None)
    worker.start()
    assert worker.submit(0) is False
    assert started.wait(WAIT_S)  # frame 0 is being processed; the slot is empty
    drops = [worker.submit(frame) for frame in range(1, 10)]
    release.set()
    assert done.wait(WAIT_S)
    assert seen == [0, 9]
    assert drops == [False] + [True] * 8
    assert worker.stop()


def test_errors_are_reported_and_the_thread_keeps_going():
    errors: list[tuple[int, str]] = []
    processed: list[int] = []
    handled = threading.Semaphore(0)

    def process(frame: int) -> None:
        if frame % 2:
            raise ValueError(f"bad frame {frame}")
        processed.append(frame)
        handled.release()

    def on_error(frame: int, error: Exception) -> None:
        errors.append((frame, str(error)))
        handled.release()
        raise RuntimeError("the error handler itself fails")

    worker = FrameWorker(process, on_error)
    worker.start()
    for frame in range(5):
        worker.submit(frame)
        assert handled.acquire(timeout=WAIT_S)  # one at a time: nothing is dropped
    assert processed == [0, 2, 4]
    assert errors == [(1, "bad frame 1"), (3, "bad frame 3")]
    assert worker.alive
    assert worker.stop()
    assert not worker.alive


def test_stop_waits_for_the_frame_in_progress():
    started = threading.Event()
    finished = threading.Event()

    def process(frame: int) -> None:
        started.set()
        threading.Event().wait(0.2)
        finished.set()

    worker = FrameWorker(process, on_error=lambda frame, error: None)
    worker.start()
    worker.submit(1)
    assert started.wait(WAIT_S)
    assert worker.stop(timeout=WAIT_S)
    assert finished.is_set()
