"""How long the node's loop takes to go round, the wait for input left out.

Every command, event and timer of every session waits for the loop: a turn
that takes 200 ms delays them all by as much.  The heartbeat carries the
99th percentile and the longest turn since the heartbeat before
(``loop_turn_p99_ms``, ``loop_turn_max_ms``, ``loop_turns``), so an
operator (and the density benchmark) sees the loop slowing as sessions are
added, without a profiler.  Beside the wall time, the CPU time of the same
turns (``loop_turn_cpu_p99_ms``): on a machine whose cores are busy with
others' work a turn waits for a core, and only the two together tell the
node's own cost from the machine's load.
"""

from __future__ import annotations

import time
from typing import Callable

# Turns kept per window: past this many, every other one is dropped (the
# percentile of a half is still the percentile).
MAX_KEPT = 20_000


class TurnTimes:
    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.thread_time):
        self._clock, self._cpu_clock = clock, cpu_clock
        self._started: float | None = None
        self._cpu_started = 0.0
        self._waited = 0.0
        self._busy: list[float] = []  # seconds of work of each turn in this window
        self._cpu: list[float] = []  # CPU seconds of each turn in this window
        self._turns = 0

    def begin(self) -> None:
        self._started = self._clock()
        self._cpu_started = self._cpu_clock()
        self._waited = 0.0

    def waited(self, seconds: float) -> None:
        """Time of this turn spent waiting for input (the poll)."""
        self._waited += seconds

    def end(self) -> None:
        if self._started is None:
            return
        self._busy.append(max(0.0, self._clock() - self._started - self._waited))
        self._cpu.append(max(0.0, self._cpu_clock() - self._cpu_started))
        self._turns += 1
        self._started = None
        if len(self._busy) >= MAX_KEPT:
            self._busy, self._cpu = self._busy[::2], self._cpu[::2]

    def report(self) -> dict[str, float | int]:
        """Figures of the turns since the last report; starts a new window."""
        busy, cpu, turns = sorted(self._busy), sorted(self._cpu), self._turns
        self._busy, self._cpu, self._turns = [], [], 0
        if not busy:
            return {"loop_turns": 0, "loop_turn_p99_ms": 0.0, "loop_turn_max_ms": 0.0, "loop_turn_cpu_p99_ms": 0.0}
        return {"loop_turns": turns, "loop_turn_p99_ms": round(_p99(busy) * 1000, 2),
                "loop_turn_max_ms": round(busy[-1] * 1000, 2), "loop_turn_cpu_p99_ms": round(_p99(cpu) * 1000, 2)}


def _p99(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
