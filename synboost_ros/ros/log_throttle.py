"""Log throttling per reason (plain Python): the first frame rejected for a reason is always
logged; more frames for the same reason at most once per period, with how many were left out.

Numbers do not make a reason new ("got 4000x1" and "got 3000x1" are one reason), so a camera
that sends every frame a little differently cannot flood the log.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable

MAX_REASONS = 64  # the reasons remembered; the one logged longest ago is forgotten first


class ReasonThrottle:
    """Decides, per (source, reason), whether a line is logged now."""

    def __init__(self, period_s: float, max_reasons: int = MAX_REASONS) -> None:
        self.period_s = period_s
        self._max = max_reasons
        self._seen: OrderedDict[tuple[Hashable, str], tuple[float, int]] = OrderedDict()

    def admit(self, source: Hashable, reason: str, now: float) -> int | None:
        """None to stay quiet; else the number of lines for this reason left out since its last
        logged one (0 the first time)."""
        key = (source, re.sub(r"\d+", "#", reason))
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.period_s:
            self._seen[key] = (last[0], last[1] + 1)
            return None
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return 0 if last is None else last[1]
