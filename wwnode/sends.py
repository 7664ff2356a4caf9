"""The send desk: ``send_message`` from the moment it reaches this node to
its answer.

- a send for a ready session goes to its process at once; one for a
  session coming back by itself (linked, ``starting`` or ``restarting``)
  is held until it is ready, at most ``SEND_HOLD`` seconds; any other
  fails (``not_ready``, ``unknown_instance``);
- a send with a client's id is done at most once per key and id (the
  record is in Redis, ``Store.begin_send``): a repeat of one that went out
  is answered again without sending, one whose outcome is unknown fails
  ``outcome_unknown``;
- the command is acknowledged once ``message_sent_instance`` is confirmed
  by the broker, or dead-lettered with the session's reason;
- sends a process took and never answered go back to their queue when the
  process is gone (they may run again: hence the ids); held sends fail
  when the session fails or is destroyed, and go back to their queue,
  without a word, when the stop is not final (the node going down) or the
  node loses the key: a send is answered once, done or failed, never both.
  Sends the process refused because it was told to stop before it began
  them go back the same way when the stop is not final;
- a delivery of a send whose id is already under way here (held or in
  flight) joins it and shares its answer: after a broken connection the
  broker delivers again what this node had not acknowledged, while the
  first delivery is still being carried out, and that copy must neither
  send a second time nor be refused ``outcome_unknown``;
- a key with ``pacing`` (its settings, ``sendpace.py``) has one send with
  its session at a time, the next one waiting, in order, until its pace
  allows: at most ``SEND_HOLD`` seconds from when it reached this node, as a
  send waiting for ready does, then it fails ``pacing_backlog`` (and at
  once when ``paced_limit`` sends already wait here: waiting sends are
  unacknowledged, and hold places of the node's ``COMMAND_PREFETCH`` that
  other keys' sends need).  Its at-most-once record is begun only when it
  goes to the session, as any send's; a copy delivered while it waits
  joins it.  Another key's sends are never held for it;
- a send with an id that fails without reaching a session here (no
  session, not ready, refused by a router for want of an owner, a hold
  run out) is first looked up: one that went out before is answered sent,
  and one an earlier attempt left in doubt fails ``outcome_unknown`` (its
  record stays): that attempt may have gone out, and a definite failure
  would tell the client it did not (a node that lost its key while its
  session was sending puts those sends back unanswered, and the router
  gets them with nobody owning the key).

It follows the sessions as a listener of their state changes and never
changes a session itself.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, Sequence, cast


from . import states as S
from .children import Child
from .commands import Command
from .counters import Tally
from .sendoutcomes import SendOutcomes
from .sendpace import SendPace

log = logging.getLogger(__name__)



class Bus(Protocol):
    def emit_then_ack(self, name: str, body: dict, d, copies: Sequence = ()) -> None: ...
    def requeue(self, d) -> None: ...
    def fail(self, d, reason: str, detail: str, key: str | None, command_id: str | None,
             copies: Sequence = ()) -> None: ...


class Store(Protocol):
    def begin_send(self, key: str, command_id: str) -> str | None: ...
    def send_record(self, key: str, command_id: str) -> str | None: ...
    def end_send(self, key: str, command_id: str, message_id: str | None, failed: str | None = None) -> None: ...


class Sessions(Protocol):
    def get(self, key: str) -> S.SessionRecord | None: ...


def delivered_again(d) -> bool:
    """The broker delivers this command again, here or to the node that
    handed it on (whose hop carries the mark), or it comes back from a
    node's queue (``x-death``: dead-lettered to ``wa.reroute``): it may
    have been delivered there, and a copy put back there after its time ran
    out is dead-lettered without the broker's mark."""
    return bool(d.redelivered or d.headers.get("x-redelivered") or d.headers.get("x-death"))


@dataclass
class PendingSend:
    command: Command
    delivery: object
    hold_until: float = 0.0
    repeats: list = field(default_factory=list)  # later deliveries of the same send (same id)
    received: float = 0.0  # when it reached this node (its latency, for the metrics)

    def deliveries(self) -> list:
        return [self.delivery, *self.repeats]


class SendDesk(SendOutcomes):
    def __init__(self, send_hold: float, bus: Bus, store: Store, sessions: Sessions, unavailable: type[Exception],
                 tally: Tally | None = None, settings=None, pace: SendPace | None = None, paced_limit: int = 25):
        self.send_hold = send_hold
        self.bus = bus
        self.store = store
        self.sessions = sessions
        self.unavailable = unavailable  # what the store raises when Redis cannot answer
        self._init_commands()  # held and in-flight sends by key (heldcommands.py)
        self._under_way: dict[tuple[str, str], PendingSend] = {}  # (key, command id) -> held or in flight
        # Ready keys whose new sends are held, not sent: their session is to
        # be restarted once its sends in flight are done (``memory.py``).
        # Until it leaves ``ready``.
        self._held_back: set[str] = set()
        self._ids = itertools.count(1)
        self.tally = tally or Tally()
        # Each key's settings (``settingsdesk.py``): what a send line says
        # of them (``send_fields``).  None: nothing, the session's defaults.
        self.settings = settings
        self.pace = pace or SendPace(lambda key: None)  # when a paced key's next send may go
        self.paced_limit = paced_limit  # sends that may wait for their pace here, all keys together

    def send(self, cmd: Command, d, now: float) -> None:
        if cmd.command_id is not None and (cmd.key, cmd.command_id) in self._under_way:
            log.info("send %s of %s is under way here; this delivery waits for its answer", cmd.command_id, cmd.key)
            self._under_way[cmd.key, cmd.command_id].repeats.append(d)
            return
        pending = PendingSend(cmd, d, received=now)
        if cmd.command_id is not None and delivered_again(d) and self._answered_before(pending):
            return
        rec = self.sessions.get(cmd.key)
        if rec is None or rec.state in (S.STOPPING, S.STOPPED):
            self._fail_unless_done(cmd.key, pending, "unknown_instance", f"no session {cmd.key} on this node")
            return
        if (rec.state == S.READY and cmd.key not in self._held_back and not self._held.get(cmd.key)
                and self._due(cmd.key, now)):
            self._dispatch(rec, pending, now)
        elif rec.state == S.READY:
            # Behind the key's waiting sends, or its pace, or a restart it
            # is held back for: it waits its turn, in order, as long as a
            # send may wait for ready.
            if self.pace.paced(cmd.key) and self.paced_waiting() >= self.paced_limit:
                self._fail_unless_done(cmd.key, pending, "pacing_backlog",
                                       f"{self.paced_limit} paced sends wait on this node already; publish {cmd.key}'s "
                                       f"sends no faster than its pacing")
                return
            pending.hold_until = now + self.send_hold
            self._held.setdefault(cmd.key, deque()).append(pending)
            self._track(pending)
        elif rec.linked and rec.state in (S.STARTING, S.RESTARTING):
            # Coming back from a crash or a node restart: it will be ready
            # without a scan, so the send waits for it (bounded).
            pending.hold_until = now + self.send_hold
            self._held.setdefault(cmd.key, deque()).append(pending)
            self._track(pending)
        else:
            self._fail_unless_done(cmd.key, pending, "not_ready", f"session {cmd.key} is {rec.state}, not ready")

    def refuse(self, cmd: Command, d, reason: str, detail: str) -> None:
        """A send failed before any desk took it (a router found no owner
        for its key): recorded like any failure, so the same delivery
        coming again, when the key runs again, gets the same answer.  One
        that went out, or may have, before its node lost the key is
        answered so, not refused."""
        p = PendingSend(cmd, d)
        if cmd.command_id is not None and delivered_again(d) and self._answered_before(p):
            return
        self._fail_unless_done(cmd.key, p, reason, detail)

    def _answered_before(self, p: PendingSend) -> bool:
        """A send delivered again (its first delivery was not acknowledged:
        a broken link, a node gone) gets the answer its first delivery got,
        if it got one.  Redis unreachable: it goes the usual way."""
        try:
            seen = self.store.send_record(p.command.key, cast(str, p.command.command_id))  # callers check it is set
        except self.unavailable:
            return False
        if seen is not None and seen.startswith("done:"):
            self._done_before(p.command.key, p, seen)
            return True
        if seen is not None and seen.startswith("failed:"):
            reason = seen[len("failed:"):]
            self._fail(p, reason, f"send {p.command.command_id} failed before ({reason}); the same answer again",
                       record=False)
            return True
        return False

    def _dispatch(self, rec: S.SessionRecord, p: PendingSend, now: float) -> bool:
        """Hand the send to the process; False if it was put back to wait
        (Redis cannot say whether it was done before)."""
        cid = p.command.command_id
        if cid is not None:
            # At most once per command id: a redelivery (after a crash, a
            # client's retry) must not message the contact a second time.
            try:
                seen = self.store.begin_send(rec.key, cid)
            except self.unavailable:
                p.hold_until = now + self.send_hold
                self._held.setdefault(rec.key, deque()).appendleft(p)
                self._track(p)
                return False
            if seen is not None and seen.startswith("done:"):
                self._done_before(rec.key, p, seen)
                return True
            if seen is not None:
                self._fail(p, "outcome_unknown",
                           f"send {cid} was attempted before and may have gone out; not sending it again",
                           record=False)  # its record stays pending
                return True
        child_id = f"n{next(self._ids)}"
        self._inflight.setdefault(rec.key, {})[child_id] = p
        self._track(p)
        line: dict[str, object] = {"cmd": "send", "id": child_id, "chat_id": p.command.chat_id, "text": p.command.text}
        if p.command.quoted_message_id:
            line["quoted_message_id"] = p.command.quoted_message_id
        if p.command.mentions:
            line["mentions"] = list(p.command.mentions)
        if p.command.media_file is not None:
            line["media"] = p.command.media_file  # a path in the session's folder (media/desk.py)
        if p.command.content:
            line.update(p.command.content)  # a location, contact cards or a poll instead of text
        if self.settings is not None:
            # Read at each send: an update_settings applies to the next one.
            line.update(self.settings.send_fields(rec.key, p.command.text, p.command.media_file is not None))
        cast(Child, rec.child).send(line)  # ready: its process runs
        self.pace.started(rec.key, now)
        return True

    def _due(self, key: str, now: float) -> bool:
        """Whether the key's pace lets a send go now."""
        return self.pace.due(key, now, busy=bool(self._inflight.get(key)))

    def paced_waiting(self) -> int:
        """Sends that wait for their pace here (their session is ready)."""
        return sum(len(held) for key, held in self._held.items()
                   if (rec := self.sessions.get(key)) is not None and rec.state == S.READY)

    def _dispatch_held(self, rec: S.SessionRecord, now: float) -> None:
        held = self._held.get(rec.key)
        while held and rec.state == S.READY and rec.key not in self._held_back and self._due(rec.key, now):
            if not self._dispatch(rec, held.popleft(), now):
                return  # put back: Redis cannot say yet; tick tries again

    def in_flight(self, key: str) -> bool:
        """A send of this key is with its process, unanswered."""
        return bool(self._inflight.get(key))

    def hold_back(self, key: str) -> None:
        """Its session is to be restarted once its sends in flight are done:
        until it leaves ``ready``, its new sends wait (as for a restart,
        within ``SEND_HOLD``) instead of going to its process."""
        self._held_back.add(key)

    # ------------------------------------------- a send's end, every copy
    def _track(self, p: PendingSend) -> None:
        if p.command.command_id is not None:
            self._under_way[p.command.key, p.command.command_id] = p

    def _untrack(self, p: PendingSend) -> None:
        if p.command.command_id is not None:
            self._under_way.pop((p.command.key, p.command.command_id), None)

    def _answer_sent(self, p: PendingSend, body: dict) -> None:
        """One event; every delivery of the send acknowledged once it is
        confirmed."""
        self._untrack(p)
        self.bus.emit_then_ack("message_sent_instance", body, p.delivery, copies=tuple(p.repeats))

    def _fail(self, p: PendingSend, reason: str, detail: str, record: bool = True) -> None:
        """One ``command_failed`` (the first delivery's); the copies are
        acknowledged with it.  With ``record``, the failure is kept as the
        send's answer, for a delivery of it that comes again."""
        self._untrack(p)
        if record and p.command.command_id is not None:
            self.store.end_send(p.command.key, p.command.command_id, None, failed=reason)
        self.bus.fail(p.delivery, reason, detail, p.command.key, p.command.command_id, copies=tuple(p.repeats))

    def _requeue(self, p: PendingSend) -> None:
        self._untrack(p)
        for d in p.deliveries():
            self.bus.requeue(d)

    def tick(self, now: float) -> None:
        for key, held in list(self._held.items()):
            rec = self.sessions.get(key)
            if rec is not None and held and rec.state == S.READY:
                self._dispatch_held(rec, now)
            if rec is not None and rec.state == S.READY and self.pace.paced(key):
                reason, detail = "pacing_backlog", (f"session {key}'s pacing did not let this send go within "
                                                    f"SEND_HOLD ({self.send_hold:g} s)")
            else:
                reason, detail = "not_ready", f"session {key} was not ready in time"
            self._expire_held(key, now, reason, detail)
