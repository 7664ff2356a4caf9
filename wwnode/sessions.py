"""The node's sessions: what each is doing, and the rules that move it.

One :class:`~states.SessionRecord` per key this node runs.  Its state
changes only in :meth:`Sessions.set_state`, which hands every change (create,
restore and drop included) to the listeners, in the one order
``wiring.LISTENERS`` gives with its reasons (the Redis writer before the
``state_instance`` announcer, the desks that answer commands after both).
A create or a destroy says what it came to, and the session desk
(``sessiondesk.py``) ends its delivery: nothing here touches one.  Time is
handed in (``now``), so every rule is tested without sleeping.  The rules:

- a crashed session restarts after a back-off, or is ``failed`` when it
  crashes too often (``restarts.py``);
- one that cannot ever start (exit 78) is ``failed`` at once, with the
  reason it gave; one that ended itself (logout, conflict, auth failure:
  exit 3) is reported and removed;
- one that breaks the protocol, or overstays its boot or a ping
  (``health.py``), is killed: a crash;
- an illegal transition is a bug: logged, and that one session is killed
  (a crash), never the node;
- a listener, or the handler of an event the session wrote, that raises is
  a bug in that part (``guard.py``): logged, and that one session is
  ``failed`` (``internal_error``), its process killed, its key let go,
  never the node (``contain``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from sessionproc.protocol import LINKED_MARKER

from . import states as S
from .children import Child
from .commands import Command, Rejected
from .config import Config
from .counters import Counters
from .guard import Guard
from .health import Health
from .parts import Listener
from .paths import Paths, UnsafePath
from .restarts import Restarts
from .sessionexits import SessionExits
from .starts import Starts, UnusableProfile
from .storage import Storage

if TYPE_CHECKING:  # only for the annotations: no redis needed here
    from .redis_side.store import Store

log = logging.getLogger(__name__)


class Events(Protocol):
    """Where what the sessions do is published (``EventBus``)."""

    def emit(self, name: str, body: dict) -> None: ...

    def emit_as_owner(self, name: str, body: dict) -> None: ...


@dataclass(eq=False)
class Sessions(SessionExits):
    cfg: Config
    paths: Paths
    bus: Events
    store: Store
    starts: Starts
    health: Health
    restarts: Restarts
    counters: Counters
    may_run: Callable[[str], bool]  # whether this node holds the key's lease
    storage: Storage  # whether DATA_DIR takes writes: a create needs its folder
    guard: Guard  # every listener is called through it: a bug in one ends its session only
    bury: Callable[[Child], None]  # a killed process nobody waits for any more, reaped when gone (``Processes``)
    # Whether a boot that ran out of time was merely slow (pacing.py), by
    # (key, timed_out); not a crash then.
    slow_boot: Callable[[str, bool], bool] = lambda key, timed_out: False
    # Told of each create about to start a key here (its settings:
    # ``settingsdesk.py``), and of Redis coming back (written again).
    before_start: Callable[[Command], None] = lambda cmd: None
    on_resync: Callable[[], None] = lambda: None
    listeners: list[Listener] = field(default_factory=list, init=False)  # told every Change, in order
    _records: dict[str, S.SessionRecord] = field(default_factory=dict, init=False)
    _recycle_at_once: set[str] = field(default_factory=set, init=False)  # keys restarted without a back-off

    # ================================================================ state
    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def set_state(self, rec: S.SessionRecord, new: str, now: float, reason: str = "") -> None:
        """The one place a session's state changes."""
        old = rec.state
        if new == old:
            return
        if new not in S.TRANSITIONS[old]:
            log.error("session %s: no transition %s -> %s (a bug); killing this session", rec.key, old, new)
            self.counters.bump("illegal_transitions")
            if rec.child is not None:
                rec.child.kill()  # its exit is a crash, handled as any other
            return
        rec.state = new
        log.info("session %s: %s -> %s", rec.key, old, new)
        change = S.Change(rec.key, old, new, rec.me, rec.stop_for_good, reason, now, rec.logout, rec.moving)
        faulty = False
        for listener in self.listeners:  # every one, even past a faulty one: the change did happen
            if not self.guard.call(rec.key, f"the change {old} -> {new}", listener.on_change, change):
                faulty = True
        if faulty:
            self.contain(rec, now)

    # ============================================================ queries
    def get(self, key: str) -> S.SessionRecord | None:
        return self._records.get(key)

    def has(self, key: str) -> bool:
        return key in self._records

    def runs(self, key: str) -> bool:
        """A session of the key is here and holds it: not one that failed
        for good and let its key go (another node may run it now)."""
        rec = self._records.get(key)
        return rec is not None and (rec.state != S.FAILED or self.may_run(key))

    def is_stopping(self, key: str) -> bool:
        rec = self._records.get(key)
        return rec is not None and rec.state == S.STOPPING

    def __bool__(self) -> bool:
        return bool(self._records)

    def count(self) -> int:
        """Sessions that hold a place on this node (for admission): a
        session being stopped still has its browser."""
        return sum(1 for r in self._records.values() if r.state in S.ALIVE or r.state == S.STOPPING)

    def count_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(S.VISIBLE, 0)
        for r in self._records.values():
            counts[r.state] = counts.get(r.state, 0) + 1
        return counts

    def children(self) -> list[tuple[S.SessionRecord, Child]]:
        return [(r, r.child) for r in self._records.values() if r.child is not None]

    def waiting_for_lease(self) -> list[str]:
        """Restored sessions not started yet: they wait for their lease."""
        return [k for k, r in self._records.items()
                if r.child is None and r.state == S.RESTARTING and not self.may_run(k)]

    # ============================================================= commands
    def create(self, cmd: Command, now: float) -> bool:
        """Its lease claimed (``Dispatch``); a key being stopped here is not
        handed over until it has stopped.  True: a session of the key runs
        here now (started, or running already); False: none does (it failed
        at once), and the key's claim is to be given back.  Rejected
        (``storage_error``) when its folder cannot be made: nothing done."""
        rec = self._records.get(cmd.key)
        if rec is not None and rec.state in S.ALIVE:
            log.info("create %s: already running here (%s)", cmd.key, rec.state)
            return True
        try:
            self.storage.write(f"session {cmd.key}'s folder", lambda: self.paths.mark_wanted(cmd.key), now)
        except (UnsafePath, OSError) as e:
            raise Rejected("storage_error", getattr(e, "strerror", None) or str(e), cmd.key,
                           cmd.command_id) from None
        if rec is None:
            rec = S.SessionRecord(cmd.key, linked=self._profile_linked(cmd.key))
            self._records[cmd.key] = rec
        else:  # failed: a new create is a fresh start
            self.restarts.forget(cmd.key)
        self.starts.pair_with(cmd.key, cmd.pair_with_phone)
        self.before_start(cmd)
        self._spawn(rec, now)
        return rec.state in S.ALIVE

    def destroy(self, cmd: Command, now: float) -> None:
        """Stop the key's session for good (its record must be here:
        ``has``); it ends ``stopped``, or ``dropped`` if the node loses the
        key first."""
        rec = self._records[cmd.key]
        rec.logout = rec.logout or cmd.logout
        self._stop(rec, now, for_good=True)

    # =============================================================== restore
    def restore(self, now: float) -> list[str]:
        """Bring back the sessions this node ran before it stopped, one
        every ``restore_stagger`` seconds (each once its lease is ours).
        The keys that wait for their lease now: not one a part failed on
        (``contain``), which must not hold its key."""
        keys = [k for k in self.paths.wanted_keys() if k not in self._records]
        for i, key in enumerate(keys):
            rec = S.SessionRecord(key, linked=self._profile_linked(key))
            rec.restart_at = now + i * self.cfg.restore_stagger
            self._records[key] = rec
            self.set_state(rec, S.RESTARTING, now)
        if keys:
            log.info("restoring %d sessions: %s", len(keys), ", ".join(keys))
        return [k for k in keys if self._records[k].state == S.RESTARTING]

    def _profile_linked(self, key: str) -> bool:
        try:
            return (self.paths.profile(key) / LINKED_MARKER).exists()
        except UnsafePath:
            return False

    def resync(self) -> None:
        """Write every session's state (and QR code) to Redis again: after
        Redis came back, it may have kept nothing."""
        for rec in self._records.values():
            self.store.set_state(rec.key, rec.state, rec.me)
            if rec.state == S.QR and rec.qr:
                self.store.set_qr(rec.key, rec.qr)
        self.on_resync()

    # ============================================================ processes
    def _spawn(self, rec: S.SessionRecord, now: float) -> None:
        """Start the session's process, or let it wait for a start slot."""
        self.set_state(rec, S.STARTING, now)
        if rec.state != S.STARTING:
            return  # a part failed on this start, and the session with it (``contain``)
        rec.end_event = None
        rec.restart_at = None
        if self.starts.may_start(rec.key, now):
            self._launch(rec, now)

    def start_waiting(self, now: float) -> None:
        """Launch waiting starts while slots are free."""
        while (key := self.starts.next_waiting()) is not None:
            self._launch(self._records[key], now)

    def _launch(self, rec: S.SessionRecord, now: float) -> None:
        try:
            rec.child = self.starts.spawn(rec.key, now)
        except UnusableProfile as e:
            log.error("session %s: cannot start: %s", rec.key, e)
            self._fail(rec, now, "cannot_start", str(e))
            return
        except OSError as e:
            log.error("session %s: could not start its process: %s", rec.key, e)
            self._crashed(rec, now)
            return
        rec.started_at = now

    def bad_output(self, rec: S.SessionRecord, why: str, now: float) -> None:
        """Its process wrote a line outside the protocol: end it (a crash,
        once it has exited)."""
        log.error("session %s: its process broke the protocol (%s); killing it", rec.key, why)
        self.counters.bump("bad_events")
        if rec.child is not None:
            rec.child.kill()

    def handlers(self) -> dict[str, Callable[[S.SessionRecord, dict, float], None]]:
        """The session events these rules act on (``protocol.EVENTS``)."""
        return {"qr": self._on_qr, "authenticated": self._on_authenticated, "ready": self._on_ready,
                "disconnected": self._on_ended, "auth_failure": self._on_ended}

    def _on_qr(self, rec: S.SessionRecord, e: dict, now: float) -> None:
        if rec.state not in (S.STARTING, S.QR):
            return
        # Redis first (the code, then the state), then the events, the
        # state first: a QR code is said as a pairing code is (pairing.py).
        rec.qr = e["qr"]
        self.store.set_qr(rec.key, e["qr"])
        self.set_state(rec, S.QR, now)
        if rec.state != S.QR:
            return  # a part failed on this change, and the session with it (``contain``)
        self.bus.emit_as_owner("qr_instance", {"key": rec.key, "qr": e["qr"], "attempt": e["attempt"]})

    def _on_authenticated(self, rec: S.SessionRecord, e: dict, now: float) -> None:
        if rec.state not in (S.STARTING, S.QR):
            return  # already being stopped: news of its start is stale
        rec.qr = None
        self.store.clear_qr(rec.key)
        self.bus.emit("authenticated_instance", {"key": rec.key})

    def _on_ready(self, rec: S.SessionRecord, e: dict, now: float) -> None:
        if rec.state not in (S.STARTING, S.QR):
            return  # already being stopped: news of its start is stale
        rec.linked = True
        rec.me = e["me"]
        body = {"key": rec.key, "me": rec.me}
        if e.get("me_lid"):
            body["me_lid"] = e["me_lid"]  # the account's LID beside its number
        self.bus.emit("ready_instance", body)
        self.set_state(rec, S.READY, now)

    def _on_ended(self, rec: S.SessionRecord, e: dict, now: float) -> None:
        """``disconnected`` or ``auth_failure``: acted on when it exits."""
        name = "disconnected_instance" if e["event"] == "disconnected" else "auth_failure_instance"
        rec.end_event = (name, e["reason"], e.get("detail"))
        log.info("session %s: %s (%s)", rec.key, name.replace("_instance", "").replace("_", " "), e["reason"])

    # ================================================================= stop
    def _stop(self, rec: S.SessionRecord, now: float, for_good: bool) -> None:
        rec.stop_for_good = rec.stop_for_good or for_good
        self.set_state(rec, S.STOPPING, now)
        if rec.child is None:
            self._finish_stop(rec, now)
            return
        if rec.stop_deadline is None:
            rec.stop_deadline = now + self.cfg.stop_timeout
            rec.child.send({"cmd": "stop", "logout": rec.logout})

    def _finish_stop(self, rec: S.SessionRecord, now: float) -> None:
        if rec.stop_for_good:
            self.paths.unmark_wanted(rec.key)
            if rec.logout:
                self.paths.delete_session(rec.key)
        self.set_state(rec, S.STOPPED, now)
        del self._records[rec.key]
        self.restarts.forget(rec.key)

    def drop(self, key: str, now: float) -> Child | None:
        """This node lost the key (its lease ran out and another node may
        run it): end the session at once, without a word as its owner.
        Returns its process, killed, for the caller to reap."""
        rec = self._records.get(key)
        if rec is None:
            return None
        log.error("session %s: this node no longer owns it; killing it", key)
        child, rec.child = rec.child, None
        if child is not None:
            child.kill()
            self.health.forget(key)
        self.set_state(rec, S.DROPPED, now)
        del self._records[key]
        self.restarts.forget(key)
        self.paths.unmark_wanted(key)
        return child

    def shutdown(self, now: float) -> None:
        """Node going down: stop every session, keep them wanted, so the
        next start brings them back."""
        for rec in list(self._records.values()):
            if rec.state != S.STOPPING:
                self._stop(rec, now, for_good=False)

    # ================================================================= tick
    def tick(self, now: float) -> None:
        self.start_waiting(now)
        for rec in list(self._records.values()):
            if rec.state == S.RESTARTING and rec.restart_at is not None and now >= rec.restart_at:
                if self.may_run(rec.key):
                    self.restarts.restarting(rec.key)
                    self._spawn(rec, now)
            elif rec.child is not None and rec.stop_deadline and now >= rec.stop_deadline:  # stopping, recycling
                log.warning("session %s: did not stop in %.0f s; killing it", rec.key, self.cfg.stop_timeout)
                rec.child.kill()
                rec.stop_deadline = now + self.cfg.stop_timeout  # once more, if even that hangs
            if rec.child is not None and rec.state in S.RUNNING:
                self.health.check(rec.key, rec.state, rec.child, now)
                if rec.started_at is not None:
                    self.restarts.running(rec.key, rec.started_at, now)
