"""How many browsers may boot at once, and which failed boots were merely
slow.

A browser's boot (chromedriver, Chromium, the page, the first QR code) is
mostly CPU.  Thirty at once on two cores each get a fifteenth of a core:
every one of them takes long enough to run out its deadlines, and they all
restart together.  Booted a few at a time, each finishes in a couple of
seconds and frees its slot for the next.

- ``START_CONCURRENCY`` 0 (the default): one boot per core the node may use
  (the cgroup's CPU quota, else the CPUs it may run on) that other work
  does not already keep busy.  Busy cores are read from the node's smoothed
  CPU reading (the one admission uses), minus what the boots in flight
  themselves use (about a core each), so a burst does not slow itself
  down: ``limit = clamp(1, cores, round(cores * (1 - cpu) + booting))``;
- ``START_CONCURRENCY`` N: at most N, whatever the load.

One boot per core is measured, not guessed (docs/decisions.md, "One boot
per core").  More at once gains nothing at the end and delays the first
ones: each boot is CPU from end to end (Python, Chromium, the page), so
two cores finish the same work in the same time whatever the split.

A boot that runs out of time (the page's ``boot_timeout``, the browser
failing to come up after ``SLOW_BROWSER`` seconds, the node's own boot
deadline) while the machine is
busy (the smoothed CPU at ``ADMIT_LOW`` or more) is *slow*, not broken: the
session starts again through the start slots without counting a crash
(no back-off, no breaker), up to ``SLOW_BOOT_LIMIT`` times in a row; past
that, or on a machine that is not busy, it is a crash as before.

Pure: readings are handed in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

SLOW_BOOT_LIMIT = 3  # slow boots in a row forgiven before one counts as a crash
# A browser that failed to come up after this many seconds ran out of time
# (chromedriver's calls time out on a starved machine); sooner, it broke.
SLOW_BROWSER = 20.0


def timed_out(reason: str | None, booted_for: float) -> bool:
    """Whether a boot that ended with this reason (``protocol.py``) after
    ``booted_for`` seconds ran out of time rather than broke."""
    return reason == "boot_timeout" or (reason == "browser_failed" and booted_for >= SLOW_BROWSER)


def usable_cores(cgroup_cpus: float | None) -> float:
    """CPUs the node may use: its cgroup's quota if it has one, else the
    CPUs it may run on."""
    if cgroup_cpus:
        return cgroup_cpus
    try:
        return float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return float(os.cpu_count() or 1)


def boot_limit(cores: float, cpu_percent: float, booting: int) -> int:
    """Boots allowed at once (see the module docstring)."""
    free = cores * max(0.0, 100.0 - cpu_percent) / 100.0
    return int(max(1, min(round(cores), round(free + booting))))


@dataclass(eq=False)
class BootPace:
    """The start slots' size and the slow-boot rule of one node."""

    fixed: int  # START_CONCURRENCY; 0: from cores and load
    cores: float
    cpu: Callable[[], float]  # the smoothed CPU reading, percent
    busy_at: float  # ADMIT_LOW: at this CPU percent the machine counts as busy
    _slow: dict[str, int] = field(default_factory=dict, init=False)  # key -> slow boots in a row

    def limit(self, booting: int) -> int:
        if self.fixed:
            return self.fixed
        return boot_limit(self.cores, self.cpu(), booting)

    def forgive(self, key: str, timed_out: bool) -> bool:
        """A boot of ``key`` failed; True when it was merely slow (not a
        crash).  ``timed_out``: it ran out of time rather than broke."""
        if not timed_out or self.cpu() < self.busy_at:
            return False
        n = self._slow.get(key, 0)
        if n >= SLOW_BOOT_LIMIT:
            return False
        self._slow[key] = n + 1
        return True

    def booted(self, key: str) -> None:
        """It came up (or went): the next slow boot starts a new count."""
        self._slow.pop(key, None)
