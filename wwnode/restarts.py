"""When a crashed session comes back: a back-off that grows, and a breaker.

- the delay starts at ``BACKOFF_INITIAL`` and doubles at each crash up to
  ``BACKOFF_MAX``; it resets only once the session has run ``STABLE_AFTER``
  seconds, so a session that crashes soon after each start backs off;
- more than ``CRASH_LIMIT`` crashes within ``CRASH_WINDOW`` seconds trip the
  breaker: the session is failed instead of restarting in a storm.

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
        h.backoff = self.initial if h.backoff == 0 else min(self.cap, h.backoff * 2)
        return h.backoff

    def restarting(self, key: str) -> None:
        """A start that follows a crash (not a restore at the node's start)."""
        if key in self._history:
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
