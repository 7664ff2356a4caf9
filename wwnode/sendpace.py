"""When a key's next send may go, by its ``pacing`` setting
(``sessionsettings.Pacing``): sends spaced as a person's are, not fired one
after another.

For a key with pacing, one send is with its session at a time, and the
next may start only

- ``min_gap_ms`` after the previous one *ended* (its answer came: the gap
  holds on the contact's phone, however long the page took, "typing..."
  included), plus a random ``jitter_ms`` at most, drawn anew for each send;
- and while fewer than ``per_minute`` sends started in the last 60 s.

The first send of a key goes at once.  A key without pacing is never held
here.  The send desk (``sends.py``) keeps the waiting sends in order and
asks :meth:`SendPace.due`; this only keeps the times.  Pure: time handed in,
the random draw injectable.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable

from .sessionsettings import Pacing

WINDOW = 60.0  # seconds per_minute counts over


class SendPace:
    def __init__(self, pacing_of: Callable[[str], Pacing | None], draw: Callable[[], float] = random.random):
        self.pacing_of = pacing_of  # the key's pacing now (an update_settings applies to the next send)
        self.draw = draw  # a number in [0, 1): the share of jitter_ms the next send waits
        self._ended: dict[str, float] = {}  # key -> when its last send ended
        self._started: dict[str, deque[float]] = {}  # key -> when its sends of the last minute started
        self._jitter: dict[str, float] = {}  # key -> seconds of jitter its next send waits

    def paced(self, key: str) -> bool:
        return self.pacing_of(key) is not None

    def due(self, key: str, now: float, busy: bool) -> bool:
        """Whether a send of ``key`` may start now; ``busy``: one of its
        sends is with its session."""
        pacing = self.pacing_of(key)
        if pacing is None:
            return True
        if busy:
            return False
        ended = self._ended.get(key)
        if ended is not None:
            if key not in self._jitter:  # drawn once per send, not at every look
                self._jitter[key] = self.draw() * pacing.jitter_ms / 1000
            if now < ended + pacing.min_gap_ms / 1000 + self._jitter[key]:
                return False
        if pacing.per_minute is not None:
            started = self._started.get(key)
            while started and started[0] <= now - WINDOW:
                started.popleft()
            if started and len(started) >= pacing.per_minute:
                return False
        return True

    def started(self, key: str, now: float) -> None:
        if self.pacing_of(key) is None:
            return
        self._started.setdefault(key, deque()).append(now)
        self._jitter.pop(key, None)  # the next send draws its own

    def ended(self, key: str, now: float) -> None:
        if self.pacing_of(key) is not None:
            self._ended[key] = now

    def forget(self, key: str) -> None:
        self._ended.pop(key, None)
        self._started.pop(key, None)
        self._jitter.pop(key, None)
