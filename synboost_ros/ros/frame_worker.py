"""A one-frame slot and the worker thread that processes the newest frame.

The subscription callback only puts the frame in the slot and returns; a frame that was
still waiting is dropped, so memory stays bounded (one waiting frame plus the one being
processed) and the output never falls behind the camera.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


class SlotClosed(Exception):
    """The slot was closed: no more frames will come."""


class LatestSlot(Generic[T]):
    """Holds at most one item; putting a new one replaces the one not yet taken."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced (dropped) an item not yet taken."""
        with self._condition:
            dropped = self._full
            self._item, self._full = item, True
            self._condition.notify()
            return dropped

    def take(self) -> T:
        """Wait for an item and remove it; raise ``SlotClosed`` once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._full or self._closed)
            if self._closed:
                raise SlotClosed
            item, self._item, self._full = self._item, None, False
            return item  # type: ignore[return-value]

    def close(self) -> None:
        """Wake the taker; a waiting item is discarded."""
        with self._condition:
            self._closed = True
            self._item, self._full = None, False
            self._condition.notify_all()


class FrameWorker(Generic[T]):
    """Runs ``process`` on the newest submitted frame in its own thread.

    An exception from ``process`` goes to ``on_error`` and the thread carries on; an exception
    from ``on_error`` itself is logged and ignored.
    """

    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[T, Exception], None],
        name: str = "frame_worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._slot: LatestSlot[T] = LatestSlot()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def submit(self, frame: T) -> bool:
        """Hand over a frame; True when a frame not yet processed was dropped for it."""
        return self._slot.put(frame)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the frame in progress; True when the thread has ended."""
        self._slot.close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                frame = self._slot.take()
            except SlotClosed:
                return
            try:
                self._process(frame)
            except Exception as error:
                self._report(frame, error)

    def _report(self, frame: T, error: Exception) -> None:
        try:
            self._on_error(frame, error)
        except Exception:
            logger.exception("error handler failed")
