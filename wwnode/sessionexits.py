"""A session's process ended: why, and what follows (a restart after a back-off, ``failed``, or a clean stop).

Part of :class:`~wwnode.sessions.Sessions` (a base class of it: the same
records, ``set_state`` and parts).  The rules are those the docstring of
``sessions.py`` lists: crashes restart under the breaker of
``restarts.py``; exit 78 is ``failed`` at once; exit 3 is reported and
removed; a slow boot on a busy machine is started again without a back-off;
a restart on purpose (``recycle``) is no crash; a part that raised ends its
one session (``contain``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, cast

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_ENDED, UNLINKED_REASONS

from . import states as S
from .children import Child
from .guard import INTERNAL_ERROR
from .pacing import timed_out

if TYPE_CHECKING:  # only for the annotations: sessions.py imports this module
    from .config import Config
    from .counters import Counters
    from .health import Health
    from .paths import Paths
    from .redis_side.store import Store
    from .restarts import Restarts
    from .sessions import Events

log = logging.getLogger(__name__)


class SessionExits:
    """How :class:`Sessions` ends a session process and what follows."""

    # What it uses of Sessions, declared for the type checker: annotations
    # only (Sessions, a dataclass, sets them), and the methods only while
    # type checking, so nothing here shadows what Sessions defines.
    cfg: Config
    paths: Paths
    bus: Events
    store: Store
    health: Health
    restarts: Restarts
    counters: Counters
    bury: Callable[[Child], None]
    slow_boot: Callable[[str, bool], bool]
    _records: dict[str, S.SessionRecord]
    _recycle_at_once: set[str]

    if TYPE_CHECKING:
        def set_state(self, rec: S.SessionRecord, new: str, now: float, reason: str = "") -> None: ...

        def _stop(self, rec: S.SessionRecord, now: float, for_good: bool) -> None: ...

        def _finish_stop(self, rec: S.SessionRecord, now: float) -> None: ...

    def on_exit(self, rec: S.SessionRecord, code: int, now: float) -> None:
        """The session's process ended (its pipes are drained)."""
        cast(Child, rec.child).close()  # the node calls this for a record's own process
        rec.child = None
        killed_at_boot = self.health.killed_at_boot(rec.key)
        self.health.forget(rec.key)
        log.info("session %s: process exited with %d", rec.key, code)
        rec.qr = None
        self.store.clear_qr(rec.key)
        if rec.state == S.STOPPING:
            self._finish_stop(rec, now)
        elif code == EXIT_ENDED:
            name, reason, _ = rec.end_event or ("disconnected_instance", "ended", None)
            self.bus.emit(name, {"key": rec.key, "reason": reason})
            if reason in UNLINKED_REASONS:
                rec.logout = True  # the link is dead: so is the profile
            self._stop(rec, now, for_good=True)
        elif rec.recycle:  # stopped on purpose to start afresh (``recycle``): not a crash
            self._recycled(rec, now)
        elif code == EXIT_CANNOT_START:
            # Not retried.  The reason it gave (an incompatible page, say),
            # else the generic one.
            name, reason, detail = rec.end_event or ("", "cannot_start", None)
            if name != "disconnected_instance":
                reason, detail = "cannot_start", None
            self._fail(rec, now, reason, detail)
        elif rec.state == S.STARTING and self.slow_boot(rec.key, killed_at_boot or self._timed_out(rec, now)):
            self.counters.bump("slow_boots")
            log.warning("session %s: its boot ran out of time on a busy machine; starting it again", rec.key)
            self.set_state(rec, S.RESTARTING, now, reason="slow_boot")
            rec.end_event, rec.restart_at = None, now  # through the start slots, no backoff
        else:  # crashed, killed, or stopped without being asked (its input closed)
            self._crashed(rec, now)

    @staticmethod
    def _timed_out(rec: S.SessionRecord, now: float) -> bool:
        """It said it ran out of time booting (its page, or its browser)."""
        reason = rec.end_event[1] if rec.end_event else None
        return timed_out(reason, now - (rec.started_at if rec.started_at is not None else now))

    def move_out(self, key: str, now: float) -> None:
        """Stop a session cleanly to start it on another node (a drain,
        ``drain.py``): stopped for good here, its lease kept until its
        login is saved and the key handed off."""
        rec = self._records[key]
        rec.moving = True
        self._stop(rec, now, for_good=True)

    def recycle(self, rec: S.SessionRecord, now: float, reason: str, back_off: bool = True) -> None:
        """Restart a running session on purpose: stopped, then started again,
        no crash counted (``_recycled``); sends wait as in any restart.
        ``back_off``: after a back-off, under the restarts' breaker (a page
        over ``memory_limit`` may be so again at once); without it, at once
        (a client changed a setting the browser starts with)."""
        rec.recycle, rec.stop_deadline = reason, now + self.cfg.stop_timeout
        if back_off:
            self._recycle_at_once.discard(rec.key)
        else:
            self._recycle_at_once.add(rec.key)
        self.set_state(rec, S.RESTARTING, now, reason=reason)
        if rec.child is not None:  # else a part failed on this change, and the session with it (``contain``)
            rec.child.send({"cmd": "stop", "logout": False})

    def _recycled(self, rec: S.SessionRecord, now: float) -> None:
        """Its process stopped for a restart on purpose: started again after
        a back-off, as after a crash, or ``failed`` with the restart's reason
        once its breaker trips (``restarts.py``)."""
        reason, rec.recycle, rec.stop_deadline = rec.recycle, "", None
        if rec.key in self._recycle_at_once:
            self._recycle_at_once.discard(rec.key)
            rec.restart_at = now
            log.info("session %s: restarting now (%s)", rec.key, reason)
            return
        delay = self.restarts.recycled(rec.key, now)
        if delay is None:
            log.error("session %s: %d restarts in a row for %s did not help; not restarting it again", rec.key,
                      self.restarts.limit, reason)
            self._fail(rec, now, reason)
            return
        rec.restart_at = now + delay
        log.info("session %s: restarting in %.1f s (%s)", rec.key, delay, reason)

    def _crashed(self, rec: S.SessionRecord, now: float) -> None:
        delay = self.restarts.crashed(rec.key, now)
        if delay is None:
            self._fail(rec, now, "crash_loop")
            return
        rec.restart_at = now + delay
        log.warning("session %s: crashed; restarting in %.1f s", rec.key, delay)
        self.set_state(rec, S.RESTARTING, now)

    def _fail(self, rec: S.SessionRecord, now: float, reason: str, detail: str | None = None) -> None:
        log.error("session %s: failed (%s)", rec.key, reason)
        self.set_state(rec, S.FAILED, now, reason=reason)
        body = {"key": rec.key, "reason": reason}
        if detail:
            body["detail"] = detail[:1000]
        self.bus.emit("disconnected_instance", body)
        self.paths.unmark_wanted(rec.key)

    def contain(self, rec: S.SessionRecord, now: float) -> None:
        """A part raised on this session's behalf (a bug, ``guard.py``): end
        this session, no other.  One that can still fail is ``failed`` at
        once (``internal_error``): its process killed and left to be reaped,
        nothing more it wrote acted on, its key let go (the Redis writer, on
        ``failed``).  Not restarted: a bug that struck once strikes again;
        a new create starts it afresh.  One already ending is left to end:
        being stopped, its process is killed (the stop ends with its exit,
        as at its deadline); failed, stopped or dropped, nothing is done,
        so a listener that fails on the ``failed`` change itself (or on
        every change) comes back here once and stops."""
        if rec.state in S.ALIVE:
            child, rec.child = rec.child, None
            if child is not None:
                child.kill()
                self.health.forget(rec.key)
                self.bury(child)
            rec.qr, rec.recycle, rec.stop_deadline, rec.restart_at = None, "", None, None
            self._fail(rec, now, INTERNAL_ERROR)
        elif rec.state == S.STOPPING and rec.child is not None:
            rec.child.kill()

    # ======================================================== what it said
