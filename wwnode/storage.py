"""Can the node write under ``DATA_DIR``?  A full or read-only disk is a
condition the node lives through, not a reason to exit.

What a failed write means, by writer:

- the event spool: the event is still published (the spool is a safety net
  for a broker outage, not a gate); it is counted as not journaled, and
  lost only if RabbitMQ is down too and the node dies before it is back;
- a create: it fails with ``command_failed`` reason ``storage_error`` (a
  session's profile folder cannot be made); sessions already running go on;
- the logs: lines are lost (``logging`` reports the error on stderr and
  carries on).

Writers report failures here (``failed``); the condition clears by itself:
while it holds, the node writes and removes a small probe file in
``DATA_DIR`` every ``check_every`` seconds (and before each create), and
the first probe that succeeds ends it.  While all is well the probe runs
at the same pace, so a disk remounted read-only, or filled by someone
else, shows in ``wwnode status`` before anything fails.

Time is handed in; the probe is a function handed in (``Paths.probe``),
so the rule is tested without a disk that fills.
"""

from __future__ import annotations

import errno
import logging
from typing import Callable

log = logging.getLogger(__name__)


class Storage:
    def __init__(self, probe: Callable[[], None], check_every: float):
        self.probe = probe  # raises OSError when DATA_DIR cannot take a write
        self.check_every = check_every
        self.ok = True
        self.errors = 0  # writes that failed since the node started
        self.not_journaled = 0  # events published without their copy in the spool
        self._next_check = 0.0
        self._retries: list[Callable[[], None]] = []  # what to redo once writes work again

    def on_recovery(self, retry: Callable[[], None]) -> None:
        """Call ``retry`` when the disk takes writes again (the spool writes
        its journal afresh)."""
        self._retries.append(retry)

    def failed(self, what: str, error: OSError) -> None:
        """A write under DATA_DIR failed (``what`` says which)."""
        self.errors += 1
        if self.ok:
            log.error("cannot write %s (%s): the disk is full or read-only; sessions run on, events are "
                      "published without their copy on disk, creates fail (storage_error)",
                      what, error.strerror or error)
            self.ok = False
            self._next_check = 0.0

    def usable(self, now: float) -> bool:
        """Whether a write may be tried now: probed at once while the
        condition holds (a create must not wait for the next check)."""
        if not self.ok:
            self._next_check = 0.0
            self.tick(now)
        return self.ok

    def write(self, what: str, action: Callable[[], None], now: float) -> None:
        """Do a write under DATA_DIR (``action``); OSError if it fails, or
        at once while the disk is known to take none."""
        if not self.usable(now):
            raise OSError(errno.ENOSPC, "DATA_DIR takes no writes (full or read-only)")
        try:
            action()
        except OSError as e:
            self.failed(what, e)
            raise

    def tick(self, now: float) -> None:
        if now < self._next_check:
            return
        self._next_check = now + self.check_every
        try:
            self.probe()
        except OSError as e:
            self.failed("a probe file", e)
            return
        if not self.ok:
            log.warning("the disk takes writes again")
            self.ok = True
            for retry in self._retries:
                retry()

    def gauges(self) -> dict:
        """For the heartbeat (``wwnode status``)."""
        return {"disk_ok": int(self.ok), "storage_errors": self.errors, "events_not_journaled": self.not_journaled}
