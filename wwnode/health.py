"""Is a session's process alive: a deadline while it boots, pings once its
page runs.  A session that fails either is killed; its exit is then a crash
like any other (restarted with the backoff, counted by the breaker), but
for a boot that was merely slow on a busy machine (``pacing.py``).

- booting: a session still ``starting`` (no QR code shown, not ready)
  ``BOOT_TIMEOUT`` + ``BOOT_MARGIN`` seconds after its process started, or
  after the last page load it reported (``loaded``), is killed.  It also
  frees its ``START_CONCURRENCY`` slot, which a hung boot held for good.
  The session process keeps a ``BOOT_TIMEOUT`` deadline of its own and says
  why when it runs out (``boot_timeout``); the margin lets that report come
  first, so this one only catches a process too stuck to report;
- running (``qr``, ``ready``): every ``PING_INTERVAL`` the page must run a
  line of JavaScript; no pong within ``PING_TIMEOUT`` (+5 s for the pipe),
  or a pong saying the page did not answer, and it is killed.

A page busy with traffic is not a hung page.  What the page reports of its
own accord (a message, a receipt, a reaction, an edit, a deletion:
``PAGE_LIFE``) is JavaScript the page ran, as good a sign of life as a
pong.  Under a flood of inbound messages the pong waits in the session's
queue behind thousands of them, and the page's own answer to the ping
comes late; killed for that, the page came back to a backlog larger still
(WhatsApp hands the new page every message the old one had not
acknowledged, and the flood went on), spent its whole boot reporting it,
was killed for overstaying its boot, and so on, round and round, each
round reporting the backlog again.  So:

- a ping unanswered at its deadline is forgiven when the page reported
  something since the ping went out: the check waits another
  ``PING_TIMEOUT`` + 5 s for the pong or more signs of life; one answered
  "the page did not answer" likewise, and the next ping asks again (the
  heartbeat counts both in ``pings_busy``); a page that falls silent is
  killed as before;
- a booting session whose page reports messages (the backlog a restored
  page is handed before it is ready) is making progress: each report gives
  its boot a new deadline, as a page load does.  A boot that stops
  reporting is killed ``BOOT_TIMEOUT`` + ``BOOT_MARGIN`` after the last.

Signs of life are counted by the session's process as it reads its events
(``Child.heard``); time is handed in; nothing here waits.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from . import states as S
from .counters import Counters

log = logging.getLogger(__name__)

BOOT_MARGIN = 15.0

# What a page reports of its own accord, only while its JavaScript runs.
PAGE_LIFE = frozenset({"message", "ack", "reaction", "message_edit", "message_revoke"})


class Process(Protocol):
    heard: Counter  # events read from it so far, by name (``Child.heard``)

    def send(self, command: dict) -> None: ...
    def kill(self) -> None: ...


def signs_of_life(process: Process) -> int:
    """How many reports its page has made so far."""
    heard = getattr(process, "heard", None) or {}
    return sum(heard.get(name, 0) for name in PAGE_LIFE)


@dataclass
class _Vitals:
    boot_deadline: float | None
    next_ping: float
    ping_id: str | None = None
    ping_deadline: float = 0.0
    boot_killed: bool = False  # killed for overstaying its boot
    lives: int = 0  # its page's reports (``signs_of_life``) when last looked at


@dataclass(eq=False)
class Health:
    ping_interval: float
    ping_timeout: float
    boot_timeout: float
    counters: Counters
    _vitals: dict[str, _Vitals] = field(default_factory=dict, init=False)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False)

    def launched(self, key: str, now: float) -> None:
        """A process of this key has just started."""
        self._vitals[key] = _Vitals(boot_deadline=now + self.boot_timeout + BOOT_MARGIN,
                                    next_ping=now + self.ping_interval)

    def killed_at_boot(self, key: str) -> bool:
        """Its process was killed for overstaying its boot deadline."""
        v = self._vitals.get(key)
        return v is not None and v.boot_killed

    def forget(self, key: str) -> None:
        """Its process is gone."""
        self._vitals.pop(key, None)

    def check(self, key: str, state: str, process: Process, now: float) -> None:
        v = self._vitals.get(key)
        if v is None:
            return
        if state == S.STARTING:
            if v.boot_deadline is not None and self._alive_since(v, process):
                v.boot_deadline = now + self.boot_timeout + BOOT_MARGIN  # reporting its backlog: progress
            if v.boot_deadline is not None and now >= v.boot_deadline:
                log.warning("session %s: not started in %.0f s; killing it", key, self.boot_timeout + BOOT_MARGIN)
                self.counters.bump("boot_timeouts")
                v.boot_deadline = None  # once: its exit does the rest
                v.boot_killed = True
                process.kill()
            return
        if state not in (S.QR, S.READY):
            return
        if v.ping_id is not None:
            if now >= v.ping_deadline:
                if self._alive_since(v, process):
                    self._busy(key, v, now, "no answer to a health check yet")
                    return
                log.warning("session %s: no answer to a health check; restarting it", key)
                self.counters.bump("health_kills")
                v.ping_id = None
                process.kill()
            return
        if now >= v.next_ping:
            v.ping_id = f"p{next(self._ids)}"
            v.ping_deadline = now + self.ping_timeout + 5.0
            v.next_ping = now + self.ping_interval
            v.lives = signs_of_life(process)
            process.send({"cmd": "ping", "id": v.ping_id})

    @staticmethod
    def _alive_since(v: _Vitals, process: Process) -> bool:
        """Its page reported something since the last look (which this
        look becomes)."""
        lives = signs_of_life(process)
        alive, v.lives = lives > v.lives, lives
        return alive

    def _busy(self, key: str, v: _Vitals, now: float, what: str) -> None:
        """The ping failed, but the page reported meanwhile: busy, not
        hung.  An open ping gets another ``PING_TIMEOUT`` + 5 s for its
        pong, or for more signs of life."""
        log.info("session %s: %s, but its page is busy reporting; waiting longer", key, what)
        self.counters.bump("pings_busy")
        v.ping_deadline = now + self.ping_timeout + 5.0

    def handlers(self) -> dict:
        """The session events this acts on (``protocol.EVENTS``)."""
        return {"pong": self._on_pong, "loaded": self._on_loaded}

    def _on_loaded(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        """The page (re)loaded: what follows (a QR code, or the sync of a
        linked profile) gets a boot budget of its own."""
        v = self._vitals.get(rec.key)
        if v is not None and v.boot_deadline is not None:
            v.boot_deadline = now + self.boot_timeout + BOOT_MARGIN

    def _on_pong(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        v = self._vitals.get(rec.key)
        if v is None or event["id"] != v.ping_id or rec.child is None:
            return
        v.ping_id = None
        if not event["ok"] and self._alive_since(v, rec.child):
            # Asked again at the next ping: a page still too busy to answer
            # must still be reporting then, and one that calmed down answers.
            # (Not sooner: the session waits out each ping, PING_TIMEOUT,
            # while what the page reports queues behind it.)
            self._busy(rec.key, v, now, f"health check failed ({event.get('detail')})")
            return
        if not event["ok"]:
            log.warning("session %s: health check failed (%s); restarting it", rec.key, event.get("detail"))
            self.counters.bump("health_kills")
            rec.child.kill()
