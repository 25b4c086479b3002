"""One latest-frame slot per camera, served fairly, and the worker thread that processes them.

A subscription callback only puts its camera's frame in that camera's slot and returns; a
frame that was still waiting there is dropped, so memory stays bounded (one waiting frame per
camera plus the one being processed) and the output never falls behind a camera.

Fairness: the worker takes the newest frame of the camera that has waited longest. A camera
joins the back of the waiting line when its empty slot fills; a newer frame replacing its
waiting one keeps its place. So, while every camera has a frame waiting, the cameras are
served in turn (round robin), and a fast camera cannot starve a slow one: a slow camera's
frame waits for at most one frame of each other camera plus the one in progress.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

logger = logging.getLogger(__name__)


class SlotClosed(Exception):
    """The slots were closed: no more frames will come."""


class LatestSlots(Generic[K, T]):
    """At most one waiting item per key; ``take`` serves the key that has waited longest."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._items: dict[K, T] = {}
        self._waiting: deque[K] = deque()  # keys with an item, longest-waiting first
        self._closed = False

    def put(self, key: K, item: T) -> bool:
        """Store ``item`` for ``key``; True when it replaced (dropped) an item not yet taken."""
        with self._condition:
            dropped = key in self._items
            if not dropped:
                self._waiting.append(key)
            self._items[key] = item
            self._condition.notify()
            return dropped

    def take(self) -> tuple[K, T]:
        """Wait for an item; remove and return the longest-waiting key's newest item.

        Raises ``SlotClosed`` once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._waiting or self._closed)
            if self._closed:
                raise SlotClosed
            key = self._waiting.popleft()
            return key, self._items.pop(key)

    def close(self) -> None:
        """Wake the taker; waiting items are discarded."""
        with self._condition:
            self._closed = True
            self._items.clear()
            self._waiting.clear()
            self._condition.notify_all()


class FrameWorker(Generic[K, T]):
    """Runs ``process(key, frame)`` in its own thread on the frames submitted per key
    (camera), taken fairly from ``LatestSlots``.

    An exception from ``process`` goes to ``on_error(key, frame, error)`` and the thread carries
    on; an exception from ``on_error`` itself is logged and ignored.
    """

    def __init__(
        self,
        process: Callable[[K, T], None],
        on_error: Callable[[K, T, Exception], None],
        name: str = "frame_worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._slots: LatestSlots[K, T] = LatestSlots()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def submit(self, key: K, frame: T) -> bool:
        """Hand over a frame of ``key``; True when a frame of ``key`` not yet processed was
        dropped for it."""
        return self._slots.put(key, frame)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the frame in progress; True when the thread has ended."""
        self._slots.close()
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
                key, frame = self._slots.take()
            except SlotClosed:
                return
            try:
                self._process(key, frame)
            except Exception as error:
                self._report(key, frame, error)

    def _report(self, key: K, frame: T, error: Exception) -> None:
        try:
            self._on_error(key, frame, error)
        except Exception:
            logger.exception("error handler failed")
