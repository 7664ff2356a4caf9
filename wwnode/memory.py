"""A session whose browser grows too big is restarted at a quiet moment.

The real page grows over days.  With ``SESSION_MEMORY_LIMIT`` (MB; 0, the
default, turns this off) the node measures each ready session's whole
process tree (the session process, chromedriver, Chrome and its helpers)
as PSS: each page shared by n processes counts 1/n, so the sum is what the
tree really costs the machine, and two sessions sharing Chromium's code do
not both pay for it.

Measuring PSS is not cheap: the kernel walks each process's page tables
to answer (``/proc/{pid}/smaps_rollup``): a stall of the node's loop
(docs/decisions.md, "The memory limit reads RSS first").  Three things
bound it: each session is measured every ``MEMORY_CHECK_INTERVAL`` seconds (60
by default); at most one session per turn of the loop; and RSS first
(far cheaper, most of it finding the tree's processes in ``/proc``): PSS is
never more than RSS, so a tree whose RSS adds up to no more than the limit
is under it, and its PSS is not read.  Nothing is measured while the limit
is off.

A session found over the limit is restarted at a safe moment:

- one showing a QR code (or a pairing code) at once: nothing is in flight
  there, and the code it shows is replaced by a new one as it would be
  within a minute anyway (the scan of a code being shown fails; the next
  one works);
- a ready one once no send is in flight: from the moment it is found over,
  its new sends wait (``SendDesk.hold_back``) rather than go to its
  process, so a steady stream of sends, which never left a moment with
  none in flight and kept a page over the limit for ever, lets it go at
  the end of the send under way.  The sends that waited go out once it is
  ready again, as in any restart (within ``SEND_HOLD``).

Booting sessions are not measured (a page that is loading is no measure
of one that runs).

The restart (``Sessions.recycle``) stops its process and starts it again
from its profile, without a QR code when it was linked; ``state_instance``
says ``restarting`` with ``reason: memory_limit``, and the heartbeat
counts ``memory_restarts``.  It is not counted as a crash, but it backs
off like one, and more than ``CRASH_LIMIT`` of them in a row without the
session being found under the limit in between end it ``failed`` with
``reason: memory_limit`` (``restarts.py``): a page that is over the limit
as soon as it has booted is not helped by restarting it.

Measurement is a function handed in (``measure(pid, cutoff) -> MB``; the
real one is :func:`tree_pss_mb`) and time is handed in, so the rule is
tested without a browser.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import psutil

from . import states as S
from .counters import Counters

if TYPE_CHECKING:
    from .restarts import Restarts
    from .sends import SendDesk
    from .sessions import Sessions

log = logging.getLogger(__name__)

REASON = "memory_limit"
MEASURED = frozenset({S.QR, S.READY})  # running, booted


def tree_pss_mb(pid: int, cutoff: float = 0.0) -> float:
    """PSS of a process and all its descendants, in MB; processes that end
    while being read count 0.  When their RSS adds up to no more than
    ``cutoff`` MB, that sum is returned instead (PSS is at most RSS): the
    answer is then only known to be under the cutoff, and cheap."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    mb = 1024 * 1024
    rss = _sum(procs, lambda p: p.memory_info().rss) / mb
    if rss <= cutoff:
        return rss
    return _sum(procs, lambda p: p.memory_full_info().pss) / mb


def _sum(procs: list[psutil.Process], reading: Callable[[psutil.Process], int]) -> int:
    total = 0
    for proc in procs:
        try:
            total += reading(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return total


@dataclass(eq=False)
class MemoryLimit:
    limit_mb: float  # 0: off
    interval: float  # seconds between two measures of one session
    sessions: Sessions
    sends: SendDesk
    counters: Counters
    measure: Callable[[int, float], float] = tree_pss_mb  # (pid, cutoff MB) -> MB
    _due: dict[str, float] = field(default_factory=dict, init=False)  # key -> when to measure it next
    _over: dict[str, float] = field(default_factory=dict, init=False)  # key -> MB, waiting for a quiet moment

    def tick(self, now: float) -> None:
        if not self.limit_mb:
            return
        running = {rec.key: (rec, child) for rec, child in self.sessions.children() if rec.state in MEASURED}
        for key in [k for k in self._due if k not in running]:
            del self._due[key]  # not running any more: measured afresh once it is
            self._over.pop(key, None)
        for key, (rec, _) in running.items():
            self._due.setdefault(key, now + self.interval)  # a fresh start: let it settle first
            if key in self._over and self._safe(rec):
                self._recycle(rec, now)
        due = [k for k, t in self._due.items() if t <= now and k not in self._over]
        if due:
            key = min(due, key=self._due.__getitem__)  # one per turn: measuring costs the loop
            self._measure(running[key][0], running[key][1].pid, now)

    @property
    def restarts(self) -> Restarts:
        return self.sessions.restarts  # the back-off and breaker of restarts on purpose too

    def _safe(self, rec: S.SessionRecord) -> bool:
        """A moment to restart it: nothing of its own is under way."""
        return rec.state == S.QR or not self.sends.in_flight(rec.key)

    def _measure(self, rec: S.SessionRecord, pid: int, now: float) -> None:
        self._due[rec.key] = now + self.interval
        mb = self.measure(pid, self.limit_mb)
        if mb <= self.limit_mb:
            self.restarts.back_under(rec.key)
            return
        log.warning("session %s: its browser uses %.0f MB, over SESSION_MEMORY_LIMIT (%g MB); restarting it "
                    "once nothing is in flight", rec.key, mb, self.limit_mb)
        self._over[rec.key] = mb
        if rec.state == S.READY:
            self.sends.hold_back(rec.key)  # new sends wait for the restart: the ones in flight end
        if self._safe(rec):
            self._recycle(rec, now)

    def _recycle(self, rec: S.SessionRecord, now: float) -> None:
        del self._over[rec.key]
        self._due.pop(rec.key, None)
        self.counters.bump("memory_restarts")
        self.sessions.recycle(rec, now, REASON)
