"""The link's timing rules: when to try a connection again, and when one went silent.

When to try a connection again, and when to give up on one: the link's
two timing rules, with time handed in, apart from pika."""

from __future__ import annotations

import random


class Silence:
    """Notices a connection that went silent without closing.  RabbitMQ
    sends a heartbeat every half interval when nothing else flows, so two
    intervals without a byte mean the link is dead."""

    def __init__(self, heartbeat: int):
        self.limit = 2 * heartbeat
        self.reset()

    def reset(self) -> None:
        self._bytes = -1
        self._since: float | None = None

    def silent(self, received: int, now: float) -> bool:
        if received != self._bytes or self._since is None:
            self._bytes, self._since = received, now
            return False
        return now - self._since > self.limit


class Backoff:
    """Jittered, growing delay between reconnect attempts."""

    def __init__(self, initial: float = 0.5, cap: float = 15.0):
        self.initial, self.cap = initial, cap
        self.delay = initial

    def next(self) -> float:
        d = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return d * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.delay = self.initial
