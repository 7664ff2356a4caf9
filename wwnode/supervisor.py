"""The node's sessions: what each is doing, and the rules that move it.

One :class:`Session` per key this node runs.  Its state changes only in
:meth:`Supervisor.set_state`; everything else asks for a change.  Time is
handed in (``now``, monotonic seconds), so every rule here is tested
without sleeping; the OS is behind ``Spawner`` and the outside world behind
``Bus`` (RabbitMQ) and ``Store`` (Redis).

The rules, in short:

- a crashed session restarts after a back-off that doubles up to a cap and
  resets only once the session has run ``stable_after`` seconds; more than
  ``crash_limit`` crashes within ``crash_window`` make it ``failed``;
- a session that cannot ever start (exit 78) is ``failed`` at once;
- a session that ended itself (logout, conflict, auth failure: exit 3) is
  reported and removed;
- a ready session is pinged; no pong, or a pong saying the page does not
  answer, and it is killed and restarted;
- commands are acknowledged when their effect is done, or dead-lettered
  with ``command_failed`` when they failed for good.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_ENDED, EXIT_STOPPED, LINKED_MARKER

from . import states as S
from .broker import Delivery
from .children import Child, SessionArgs, Spawner
from .commands import Command
from .config import Config
from .paths import Paths, UnsafePath
from .store import Unavailable

log = logging.getLogger(__name__)

# Reasons after which the profile no longer holds a working link.
UNLINKED_REASONS = frozenset({"LOGOUT", "UNPAIRED", "UNPAIRED_IDLE", "credentials_rejected"})


class Bus(Protocol):
    def emit(self, name: str, body: dict, on_confirmed=None) -> None: ...
    def ack(self, d: Delivery) -> None: ...
    def requeue(self, d: Delivery) -> None: ...
    def fail(self, d: Delivery, reason: str, detail: str, key: str | None, command_id: str | None) -> None: ...


class Store(Protocol):
    def set_qr(self, key: str, qr: str) -> None: ...
    def clear_qr(self, key: str) -> None: ...
    def set_state(self, key: str, state: str, me: str | None = None) -> None: ...
    def forget(self, key: str) -> None: ...
    def begin_send(self, key: str, command_id: str) -> str | None: ...
    def end_send(self, key: str, command_id: str, message_id: str | None) -> None: ...


@dataclass
class PendingSend:
    command: Command
    delivery: Delivery
    hold_until: float = 0.0


@dataclass
class Session:
    key: str
    state: str = S.STARTING
    child: Child | None = None
    linked: bool = False  # its profile holds a link: restarts need no QR
    me: str | None = None
    qr: str | None = None  # the QR code shown now
    started_at: float | None = None
    queued_at: float | None = None  # waiting for a start slot since
    backoff: float = 0.0
    restart_at: float | None = None
    crashes: deque = field(default_factory=deque)
    inflight: dict = field(default_factory=dict)  # child command id -> PendingSend
    held: deque = field(default_factory=deque)  # sends waiting for ready
    # Stopping
    stop_deadline: float | None = None
    stop_for_good: bool = False  # destroy (vs. node shutdown): forget the key
    logout: bool = False
    destroys: list = field(default_factory=list)  # deliveries acked when stopped
    recreate: Delivery | None = None  # a create that came while stopping
    # How the session process said it ended
    end_event: tuple[str, str] | None = None
    # Health
    ping_id: str | None = None
    ping_deadline: float | None = None
    next_ping: float = 0.0


class Supervisor:
    def __init__(self, cfg: Config, paths: Paths, bus: Bus, store: Store, spawner: Spawner | None = None):
        self.cfg = cfg
        self.paths = paths
        self.bus = bus
        self.store = store
        self.spawner = spawner or Spawner()
        self.sessions: dict[str, Session] = {}
        self._ids = itertools.count(1)
        # Whether this node may run a key now (it holds its lease); the node
        # sets it.  A restored session waits for its lease before starting.
        self.may_run = lambda key: True
        self.graveyard: list[Child] = []  # processes of dropped sessions, to reap
        self.start_limit = cfg.start_concurrency or float("inf")

    # ================================================================ state
    def set_state(self, s: Session, new: str, now: float) -> None:
        """The one place a session's state changes."""
        old = s.state
        if new == old:
            return
        if new not in S.TRANSITIONS[old]:
            raise AssertionError(f"{s.key}: no transition {old} -> {new}")
        s.state = new
        log.info("session %s: %s -> %s", s.key, old, new)
        # Redis first: a client that sees the event finds Redis agreeing.
        if new == S.STOPPED:
            if s.stop_for_good:
                self.store.forget(s.key)
            # else the node is going down: the lease (and the record of sends
            # done) stays, for this node to take up again when it is back, or
            # to run out and be reported lost if it is not.
        else:
            self.store.set_state(s.key, new, s.me)
        self.bus.emit("state_instance", {"key": s.key, "state": new, "previous": old})

    def count(self) -> int:
        """Sessions that hold a place on this node (for admission)."""
        return sum(1 for s in self.sessions.values() if s.state in S.ALIVE)

    def running_keys(self) -> list[str]:
        return [k for k, s in self.sessions.items() if s.state in S.ALIVE or s.state == S.STOPPING]

    # ============================================================= commands
    def create(self, cmd: Command, d: Delivery, now: float) -> None:
        s = self.sessions.get(cmd.key)
        if s is not None and s.state in S.ALIVE:
            log.info("create %s: already running here (%s)", cmd.key, s.state)
            self.bus.ack(d)
            return
        if s is not None and s.state == S.STOPPING:
            if s.recreate is not None:
                self.bus.ack(s.recreate)
            s.recreate = d  # started again once stopped, then acked
            return
        try:
            self.paths.mark_wanted(cmd.key)
        except (UnsafePath, OSError) as e:
            self.bus.fail(d, "storage_error", str(e), cmd.key, cmd.command_id)
            return
        if s is None:
            s = Session(cmd.key, linked=self._profile_linked(cmd.key))
            self.sessions[cmd.key] = s
            self.bus.emit("state_instance", {"key": s.key, "state": S.STARTING, "previous": None})
            self.store.set_state(s.key, S.STARTING)
        else:  # failed: a new create is a fresh start
            s.crashes.clear()
            s.backoff = 0.0
        self._spawn(s, now)
        self.bus.ack(d)

    def destroy(self, cmd: Command, d: Delivery, now: float) -> None:
        s = self.sessions.get(cmd.key)
        if s is None:
            self.bus.fail(d, "unknown_instance", f"no session {cmd.key} on this node", cmd.key, cmd.command_id)
            return
        s.destroys.append(d)
        s.logout = s.logout or cmd.logout
        self._stop(s, now, for_good=True)

    def send(self, cmd: Command, d: Delivery, now: float) -> None:
        s = self.sessions.get(cmd.key)
        if s is None or s.state in (S.STOPPING, S.STOPPED):
            self.bus.fail(d, "unknown_instance", f"no session {cmd.key} on this node", cmd.key, cmd.command_id)
            return
        pending = PendingSend(cmd, d)
        if s.state == S.READY:
            self._dispatch(s, pending, now)
        elif s.linked and s.state in (S.STARTING, S.RESTARTING):
            # Coming back from a crash or a node restart: it will be ready
            # without a scan, so the send waits for it (bounded).
            pending.hold_until = now + self.cfg.send_hold
            s.held.append(pending)
        else:
            self.bus.fail(d, "not_ready", f"session {cmd.key} is {s.state}, not ready", cmd.key, cmd.command_id)

    def _dispatch(self, s: Session, p: PendingSend, now: float) -> None:
        cid = p.command.command_id
        if cid is not None:
            # At most once per command id: a redelivery (after a crash, a
            # client's retry) must not message the contact a second time.
            try:
                seen = self.store.begin_send(s.key, cid)
            except Unavailable:
                p.hold_until = now + self.cfg.send_hold
                s.held.appendleft(p)  # Redis cannot say now: wait for it
                return
            if seen is not None and seen.startswith("done:"):
                log.info("send %s of %s was done before; not sending again", cid, s.key)
                body = {"key": s.key, "chat_id": p.command.chat_id, "message_id": seen[len("done:"):],
                        "command_id": cid, "duplicate": True}
                self.bus.emit("message_sent_instance", body, on_confirmed=lambda d=p.delivery: self.bus.ack(d))
                return
            if seen is not None:
                self.bus.fail(p.delivery, "outcome_unknown",
                              f"send {cid} was attempted before and may have gone out; not sending it again",
                              s.key, cid)
                return
        child_id = f"n{next(self._ids)}"
        s.inflight[child_id] = p
        s.child.send({"cmd": "send", "id": child_id, "chat_id": p.command.chat_id, "text": p.command.text})

    # =============================================================== restore
    def restore(self, now: float) -> list[str]:
        """Bring back the sessions this node ran before it stopped, one
        every ``restore_stagger`` seconds."""
        keys = [k for k in self.paths.wanted_keys() if k not in self.sessions]
        for i, key in enumerate(keys):
            s = Session(key, state=S.RESTARTING, linked=self._profile_linked(key))
            s.restart_at = now + i * self.cfg.restore_stagger
            self.sessions[key] = s
            self.store.set_state(key, S.RESTARTING)
        if keys:
            log.info("restoring %d sessions: %s", len(keys), ", ".join(keys))
        return keys

    def _profile_linked(self, key: str) -> bool:
        try:
            return (self.paths.profile(key) / LINKED_MARKER).exists()
        except UnsafePath:
            return False

    # ============================================================ processes
    def _spawn(self, s: Session, now: float) -> None:
        """Start the session's process, or queue it while ``START_CONCURRENCY``
        browsers are already booting (a bound for a big node that restores
        or receives many sessions at once; none by default)."""
        self.set_state(s, S.STARTING, now)
        s.end_event = None
        s.restart_at = None
        if self._booting() >= self.start_limit:
            s.queued_at = now
            return
        self._launch(s, now)

    def _booting(self) -> int:
        return sum(1 for s in self.sessions.values() if s.state == S.STARTING and s.child is not None)

    def _start_queued(self, now: float) -> None:
        queued = sorted((s for s in self.sessions.values() if s.queued_at is not None), key=lambda s: s.queued_at)
        for s in queued:
            if self._booting() >= self.start_limit:
                return
            self._launch(s, now)

    def _launch(self, s: Session, now: float) -> None:
        s.queued_at = None
        args = SessionArgs(
            key=s.key,
            profile=self.paths.profile(s.key),
            log_file=self.paths.session_log(s.key),
            url=self.cfg.wa_url,
            chrome=self.cfg.chrome_path,
            chromedriver=self.cfg.chromedriver_path,
            qr_max=self.cfg.qr_max,
            send_timeout=self.cfg.send_timeout,
            ping_timeout=self.cfg.ping_timeout,
            log_bodies=self.cfg.log_message_bodies,
        )
        s.ping_id = s.ping_deadline = None
        s.next_ping = now + self.cfg.ping_interval
        try:
            s.child = self.spawner.spawn(args)
        except OSError as e:
            log.error("session %s: could not start its process: %s", s.key, e)
            self._crashed(s, now)
            return
        s.started_at = now
        log.info("session %s: started process %d", s.key, s.child.pid)

    def children(self) -> list[tuple[Session, Child]]:
        return [(s, s.child) for s in self.sessions.values() if s.child is not None]

    def on_events(self, s: Session, events: list[dict], now: float) -> None:
        for event in events:
            handler = getattr(self, f"_ev_{event['event']}", None)
            if handler is None:
                log.debug("session %s: %s", s.key, event)
                continue
            handler(s, event, now)
        self._start_queued(now)  # a session done booting frees a slot

    def _ev_qr(self, s: Session, e: dict, now: float) -> None:
        if s.state not in (S.STARTING, S.QR):
            return
        s.qr = e["qr"]
        self.store.set_qr(s.key, e["qr"])
        self.bus.emit("qr_instance", {"key": s.key, "qr": e["qr"], "attempt": e.get("attempt")})
        self.set_state(s, S.QR, now)

    def _ev_authenticated(self, s: Session, e: dict, now: float) -> None:
        if s.state not in (S.STARTING, S.QR):
            return  # already being stopped: news of its start is stale
        s.qr = None
        self.store.clear_qr(s.key)
        self.bus.emit("authenticated_instance", {"key": s.key})

    def _ev_ready(self, s: Session, e: dict, now: float) -> None:
        if s.state not in (S.STARTING, S.QR):
            return  # already being stopped: news of its start is stale
        s.linked = True
        s.me = e.get("me")
        self.bus.emit("ready_instance", {"key": s.key, "me": s.me})
        self.set_state(s, S.READY, now)
        self._dispatch_held(s, now)

    def _dispatch_held(self, s: Session, now: float) -> None:
        while s.held and s.state == S.READY:
            p = s.held.popleft()
            before = len(s.held)
            self._dispatch(s, p, now)
            if len(s.held) > before:
                return  # put back: Redis cannot say yet; tick tries again

    def _ev_message(self, s: Session, e: dict, now: float) -> None:
        self.bus.emit("message_instance", {"key": s.key, "message": e.get("message")})

    def _ev_sent(self, s: Session, e: dict, now: float) -> None:
        p = s.inflight.pop(e.get("id"), None)
        if p is None:
            return
        if p.command.command_id is not None:
            self.store.end_send(s.key, p.command.command_id, e.get("message_id"))
        body = {"key": s.key, "chat_id": p.command.chat_id, "message_id": e.get("message_id"),
                "command_id": p.command.command_id}
        # Acknowledged only once the event about it is safely with the broker.
        self.bus.emit("message_sent_instance", body, on_confirmed=lambda d=p.delivery: self.bus.ack(d))

    def _ev_send_failed(self, s: Session, e: dict, now: float) -> None:
        p = s.inflight.pop(e.get("id"), None)
        if p is None:
            return
        if p.command.command_id is not None:
            self.store.end_send(s.key, p.command.command_id, None)
        self.bus.fail(p.delivery, e.get("reason", "send_failed"), e.get("detail", ""), s.key, p.command.command_id)

    def _ev_pong(self, s: Session, e: dict, now: float) -> None:
        if e.get("id") != s.ping_id:
            return
        s.ping_id = s.ping_deadline = None
        if not e.get("ok"):
            log.warning("session %s: health check failed (%s); restarting it", s.key, e.get("detail"))
            s.child.kill()

    def _ev_disconnected(self, s: Session, e: dict, now: float) -> None:
        s.end_event = ("disconnected_instance", e.get("reason", "unknown"))
        log.info("session %s: disconnected (%s)", s.key, e.get("reason"))

    def _ev_auth_failure(self, s: Session, e: dict, now: float) -> None:
        s.end_event = ("auth_failure_instance", e.get("reason", "unknown"))
        log.info("session %s: auth failure (%s)", s.key, e.get("reason"))

    def _ev_error(self, s: Session, e: dict, now: float) -> None:
        log.warning("session %s reported an error: %s %s", s.key, e.get("reason"), e.get("detail"))

    def on_exit(self, s: Session, code: int, now: float) -> None:
        """The session's process ended (its pipes are drained)."""
        s.child.close()
        s.child = None
        log.info("session %s: process exited with %d", s.key, code)
        s.qr = None
        self.store.clear_qr(s.key)
        # Sends it took and did not answer: back to the queue, they may run again.
        for p in s.inflight.values():
            self.bus.requeue(p.delivery)
        s.inflight.clear()

        if s.state == S.STOPPING:
            self._finish_stop(s, now)
        elif code == EXIT_ENDED:
            name, reason = s.end_event or ("disconnected_instance", "ended")
            self.bus.emit(name, {"key": s.key, "reason": reason})
            if reason in UNLINKED_REASONS:
                s.logout = True  # the link is dead: so is the profile
            self._stop(s, now, for_good=True)
        elif code == EXIT_CANNOT_START:
            self._fail(s, now, "cannot_start")
        elif code == EXIT_STOPPED:
            # It stopped without being asked (its input closed): restart it.
            self._crashed(s, now)
        else:
            self._crashed(s, now)

    def _crashed(self, s: Session, now: float) -> None:
        s.crashes.append(now)
        while s.crashes and s.crashes[0] < now - self.cfg.crash_window:
            s.crashes.popleft()
        if len(s.crashes) > self.cfg.crash_limit:
            self._fail(s, now, "crash_loop")
            return
        s.backoff = self.cfg.backoff_initial if s.backoff == 0 else min(self.cfg.backoff_max, s.backoff * 2)
        s.restart_at = now + s.backoff
        log.warning("session %s: crashed; restarting in %.1f s", s.key, s.backoff)
        self.set_state(s, S.RESTARTING, now)

    def _fail(self, s: Session, now: float, reason: str) -> None:
        log.error("session %s: failed (%s)", s.key, reason)
        self.set_state(s, S.FAILED, now)
        self.bus.emit("disconnected_instance", {"key": s.key, "reason": reason})
        self._fail_held(s, "session_failed", f"session {s.key} failed ({reason})")
        self.paths.unmark_wanted(s.key)

    def _fail_held(self, s: Session, reason: str, detail: str) -> None:
        while s.held:
            p = s.held.popleft()
            self.bus.fail(p.delivery, reason, detail, s.key, p.command.command_id)

    # ================================================================= stop
    def _stop(self, s: Session, now: float, for_good: bool) -> None:
        s.stop_for_good = s.stop_for_good or for_good
        s.queued_at = None
        if s.state != S.STOPPING:
            self.set_state(s, S.STOPPING, now)
        if s.child is None:
            self._finish_stop(s, now)
            return
        if s.stop_deadline is None:
            s.stop_deadline = now + self.cfg.stop_timeout
            s.child.send({"cmd": "stop", "logout": s.logout})

    def _finish_stop(self, s: Session, now: float) -> None:
        self._fail_held(s, "instance_destroyed", f"session {s.key} was stopped")
        if s.stop_for_good:
            self.paths.unmark_wanted(s.key)
            if s.logout:
                self.paths.delete_session(s.key)
        self.set_state(s, S.STOPPED, now)
        del self.sessions[s.key]
        for d in s.destroys:
            self.bus.ack(d)
        if s.recreate is not None:
            self.create(Command("create_instance", s.key), s.recreate, now)

    def resync(self) -> None:
        """Write every session's state (and QR code) to Redis again: after
        Redis came back, it may have kept nothing."""
        for s in self.sessions.values():
            self.store.set_state(s.key, s.state, s.me)
            if s.state == S.QR and s.qr:
                self.store.set_qr(s.key, s.qr)

    def drop(self, key: str, now: float) -> None:
        """This node lost the key (its lease ran out and another node may
        run it): end the session at once, without a word as its owner."""
        s = self.sessions.pop(key, None)
        if s is None:
            return
        log.error("session %s: this node no longer owns it; killing it", key)
        if s.child is not None:
            s.child.kill()
            self.graveyard.append(s.child)
            s.child = None
        for p in s.inflight.values():
            self.bus.requeue(p.delivery)  # routed again, to the new owner
        for p in s.held:
            self.bus.requeue(p.delivery)
        for d in s.destroys:
            self.bus.requeue(d)
        self.paths.unmark_wanted(key)

    def shutdown(self, now: float) -> None:
        """Node going down: stop every session, keep them wanted, so the
        next start brings them back."""
        for s in list(self.sessions.values()):
            if s.state != S.STOPPING:
                self._stop(s, now, for_good=False)

    # ================================================================= tick
    def tick(self, now: float) -> None:
        self._start_queued(now)
        for s in list(self.sessions.values()):
            if s.state == S.RESTARTING and s.restart_at is not None and now >= s.restart_at:
                if self.may_run(s.key):
                    self._spawn(s, now)
            elif s.state == S.STOPPING and s.child is not None and s.stop_deadline and now >= s.stop_deadline:
                log.warning("session %s: did not stop in %.0f s; killing it", s.key, self.cfg.stop_timeout)
                s.child.kill()
                s.stop_deadline = now + self.cfg.stop_timeout  # once more, if even that hangs
            if s.child is not None and s.state in S.RUNNING:
                self._check_health(s, now)
                if s.backoff and s.started_at is not None and now - s.started_at >= self.cfg.stable_after:
                    s.backoff = 0.0  # stable long enough: the next crash starts over
            if s.held and s.state == S.READY:
                self._dispatch_held(s, now)
            while s.held and s.held[0].hold_until <= now:
                p = s.held.popleft()
                self.bus.fail(p.delivery, "not_ready", f"session {s.key} was not ready in time", s.key,
                              p.command.command_id)

    def _check_health(self, s: Session, now: float) -> None:
        if s.state not in (S.QR, S.READY):
            return  # a browser still starting cannot answer yet
        if s.ping_id is not None:
            if now >= s.ping_deadline:
                log.warning("session %s: no answer to a health check; restarting it", s.key)
                s.ping_id = s.ping_deadline = None
                s.child.kill()
            return
        if now >= s.next_ping:
            s.ping_id = f"p{next(self._ids)}"
            s.ping_deadline = now + self.cfg.ping_timeout + 5.0
            s.next_ping = now + self.cfg.ping_interval
            s.child.send({"cmd": "ping", "id": s.ping_id})
