"""What happened on this node since it started, counted in one place: the
heartbeat's counts and the metrics' tally.

- :class:`Counters`: counts by a stable word (like a reason), written with
  the heartbeat to ``nodes:{node}`` for operators and tests to read rather
  than to find in the log;
- :class:`Tally`: commands by queue and outcome, events published,
  restarts and failures by reason, and the latencies' histograms, which
  ``/metrics`` shows (``metrics.py``).

Both are written by the loop only, plain numbers the metrics thread reads
copies of (``metrics.py``: no lock between them).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from typing import Callable

from . import states as S

# Upper bounds of the histograms' buckets, in seconds.
SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)



class Counters:
    def __init__(self):
        self._counts: Counter[str] = Counter()

    def bump(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def get(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)


class Histogram:
    """A histogram the loop adds to: a count per bucket, a sum, a count."""

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def copy(self) -> tuple[tuple[float, ...], list[int], float, int]:
        return self.bounds, list(self.counts), self.sum, self.count


class Tally:
    """What happened, as the node's parts report it: commands by queue and
    how they ended, latencies, restarts and failures by reason.  Written by
    the loop only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.commands: Counter[tuple[str, str]] = Counter()  # (queue, outcome)
        self.failed: Counter[tuple[str, str]] = Counter()  # (queue, reason)
        self.events: Counter[str] = Counter()  # event name -> published (handed to the publisher)
        self.restarts: Counter[str] = Counter()  # reason (crash, memory_limit) -> sessions restarting
        self.failures: Counter[str] = Counter()  # reason (crash_loop, cannot_start, ...) -> sessions failed
        self.send = Histogram(SEND_BUCKETS)
        self.publish = Histogram(PUBLISH_BUCKETS)
        self.turn = Histogram(TURN_BUCKETS)

    # ------------------------------------------------ the bus reports
    def command(self, queue: str, outcome: str, reason: str = "") -> None:
        """A command's step: ``done``, ``failed`` (with its reason),
        ``forwarded`` (to its owner) or ``requeued`` (to come again)."""
        self.commands[(queue, outcome)] += 1
        if reason:
            self.failed[(queue, reason)] += 1

    def timed_publish(self, name: str, then: Callable[[], None] | None) -> Callable[[], None]:
        """The confirm callback of an event being published: it records
        the time from now to the broker's confirm, then runs ``then``."""
        self.events[name] += 1
        start = self.clock()

        def confirmed() -> None:
            self.publish.observe(self.clock() - start)
            if then is not None:
                then()

        return confirmed

    # ----------------------------------------------- the send desk reports
    def sent(self, seconds: float) -> None:
        """A send answered sent, this long after it reached the node."""
        self.send.observe(seconds)

    # ------------------------------------------ a listener of Sessions
    def on_change(self, change: S.Change) -> None:
        if change.new == S.RESTARTING and not change.restored:
            self.restarts[change.reason or "crash"] += 1
        elif change.new == S.FAILED:
            self.failures[change.reason or "unknown"] += 1
