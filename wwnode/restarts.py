"""When a crashed session comes back: a back-off that grows, and a breaker.

- the delay starts at ``BACKOFF_INITIAL`` and doubles at each crash up to
  ``BACKOFF_MAX``; it resets only once the session has run ``STABLE_AFTER``
  seconds, so a session that crashes soon after each start backs off;
- more than ``CRASH_LIMIT`` crashes within ``CRASH_WINDOW`` seconds trip the
  breaker: the session is failed instead of restarting in a storm;
- a restart on purpose (a page over ``SESSION_MEMORY_LIMIT``, ``memory.py``)
  is not a crash, but backs off like one (the same delay, doubling), and
  more than ``CRASH_LIMIT`` of them in a row, with the session never found
  back under the limit in between, trip the breaker too: a page that is
  over the limit as soon as it has booted is not helped by restarting it,
  and was restarted every few seconds for ever.  No window here: with
  ``MEMORY_CHECK_INTERVAL`` at its 60 s a page too big from the start is
  restarted about once a minute, slower than any crash window would count.

Pure: time is handed in, state is kept per key.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .counters import Counters


@dataclass
class _History:
    crashes: deque = field(default_factory=deque)
    backoff: float = 0.0
    recycles: int = 0  # restarts on purpose in a row, none followed by ``back_under``


@dataclass(eq=False)
class Restarts:
    initial: float  # seconds: BACKOFF_INITIAL
    cap: float  # BACKOFF_MAX
    stable_after: float  # STABLE_AFTER
    limit: int  # CRASH_LIMIT
    window: float  # CRASH_WINDOW
    counters: Counters
    _history: dict[str, _History] = field(default_factory=dict, init=False)

    def crashed(self, key: str, now: float) -> float | None:
        """A crash: seconds until the restart, or None when the breaker trips."""
        self.counters.bump("crashes")
        h = self._history.setdefault(key, _History())
        h.crashes.append(now)
        while h.crashes and h.crashes[0] < now - self.window:
            h.crashes.popleft()
        if len(h.crashes) > self.limit:
            return None
        return self._back_off(h)

    def recycled(self, key: str, now: float) -> float | None:
        """A restart on purpose (its page over the memory limit): seconds
        until it starts again, or None when the breaker trips (more than
        ``limit`` in a row without ``back_under``).  Not counted as a crash."""
        h = self._history.setdefault(key, _History())
        h.recycles += 1
        if h.recycles > self.limit:
            return None
        return self._back_off(h)

    def back_under(self, key: str) -> None:
        """What called for its restarts on purpose is gone (its page was
        measured under the limit): the next one starts a new count."""
        h = self._history.get(key)
        if h is not None:
            h.recycles = 0

    def _back_off(self, h: _History) -> float:
        h.backoff = self.initial if h.backoff == 0 else min(self.cap, h.backoff * 2)
        return h.backoff

    def restarting(self, key: str) -> None:
        """A start that follows a crash (not a restore at the node's start,
        nor a restart on purpose)."""
        h = self._history.get(key)
        if h is not None and h.crashes:
            self.counters.bump("restarts")

    def running(self, key: str, started_at: float, now: float) -> None:
        """Stable long enough: the next crash starts over."""
        h = self._history.get(key)
        if h is not None and h.backoff and now - started_at >= self.stable_after:
            h.backoff = 0.0

    def backoff(self, key: str) -> float:
        h = self._history.get(key)
        return h.backoff if h is not None else 0.0

    def forget(self, key: str) -> None:
        """A fresh start (a new create after ``failed``), or the session is gone."""
        self._history.pop(key, None)
