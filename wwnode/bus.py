"""The node's side of RabbitMQ as its parts use it: events out, and the end
of every command (acknowledged, put back, failed for good, handed on).

When a command is acknowledged is decided here, by which method its
handler calls:

- ``ack``: its effect is done and nothing more is published about it;
- ``emit_then_ack``: its effect is an event (``message_sent_instance``,
  ``message_action_done_instance``): acknowledged, and counted done, only
  once the broker confirmed the event (a command whose answer never reached
  the broker is not done);
- ``fail``: failed for good: ``command_failed`` is published, the body is
  dead-lettered, and it is acknowledged once the dead letter is confirmed.
  A body over ``dead_letter_max_body`` bytes is kept cut to that size, with
  its size in the ``x-original-size`` header: nobody may read the dead
  letters, and a 10 MB rejected body kept whole a thousand times is how a
  broker reaches its memory alarm (which blocks every publisher);
- ``forward``: handed to another node's queue, acknowledged once that
  publish is confirmed;
- ``requeue``: put back, to be delivered again (here or elsewhere).

What a key's owner says of the key (its state, its QR or pairing code:
``emit_as_owner``) waits while the node's leases have lapsed, for the
renewal that says whether they are still ours (``settle``).  A node is
paused (SIGSTOP, a frozen VM) between any two lines: one stopped after a
session's ``ready_instance`` went out, and before its ``state_instance``,
resumed to say ``ready`` of a key another node had started meanwhile.
Facts (a message, a command's answer) go out all the same: they happened.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Callable, Protocol, Sequence

import orjson

from . import states as S
from .amqp.topology import DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, Delivery, Outgoing
from .counters import Counters, Tally

log = logging.getLogger(__name__)


# The namespace of event ids made from what an event is about (uuid5).
EVENT_ID_NAMESPACE = uuid.UUID("0b3c4f7e-5a1d-4f57-9a53-7d1c1f0e6a21")


def message_event_id(name: str, key: str, message: dict) -> str | None:
    """The event id of a message reported by ``key``'s session, made from
    the key and the message's own id (``id._serialized``), so the same
    message reported again has the same event id: WhatsApp hands a
    restarted page every message the one before had not acknowledged, and
    the session reports it again.  The same 32 hex digits as any event id;
    None when the message has no id to make it from (a new id then)."""
    serialized = (message.get("id") or {}).get("_serialized") if isinstance(message.get("id"), dict) else None
    if not isinstance(serialized, str) or not serialized:
        return None
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{name}\n{key}\n{serialized}").hex


class Publisher(Protocol):
    def publish(self, item: Outgoing) -> None: ...


class Acker(Protocol):
    def ack(self, d: Delivery) -> None: ...
    def requeue(self, d: Delivery) -> None: ...
    def holds(self, d: Delivery) -> bool: ...


class EventBus:
    def __init__(self, node_id: str, publisher: Publisher, consumer: Acker, counters: Counters,
                 wall_clock: Callable[[], float] = time.time, dead_letter_max_body: int = 65536,
                 tally: Tally | None = None, lapsed: Callable[[], bool] = lambda: False):
        self.node_id = node_id
        self.lapsed = lapsed  # the leases may not be ours any more: owner's words wait
        self._held: list[tuple[str, Outgoing]] = []  # (key, event) said as owner while lapsed
        self.dead_letter_max_body = dead_letter_max_body
        self.publisher = publisher
        self.consumer = consumer
        self.counters = counters
        self.wall_clock = wall_clock
        self.tally = tally or Tally()  # commands by outcome, publish latency (the metrics)

    def emit(self, name: str, body: dict, on_confirmed: Callable[[], None] | None = None,
             event_id: str | None = None) -> None:
        """Publish an event, with the envelope every event carries.  Its
        ``id`` is new, unless the event is one that may be reported again
        (a message: ``message_event_id``) and the caller names it."""
        self.publisher.publish(self._event(name, body, on_confirmed, event_id))

    def _event(self, name: str, body: dict, on_confirmed: Callable[[], None] | None = None,
               event_id: str | None = None) -> Outgoing:
        doc = {**body, "event": name, "node": self.node_id, "ts": int(self.wall_clock() * 1000),
               "id": event_id or uuid.uuid4().hex}
        return Outgoing(EVENTS_EXCHANGE, name, orjson.dumps(doc),
                        on_confirmed=self.tally.timed_publish(name, on_confirmed))

    def emit_as_owner(self, name: str, body: dict) -> None:
        """An event only the key's owner may publish (its state, its QR or
        pairing code): held while the leases have lapsed, until ``settle``."""
        if self.lapsed():
            log.info("leases lapsed: %s of %s waits for the renewal", name, body["key"])
            self._held.append((body["key"], self._event(name, body)))
            return
        self.emit(name, body)

    def settle(self, lost: Sequence[str]) -> None:
        """A renewal answered: what was held goes out, in order, but for
        the keys it says we lost (another node may run them: not a word)."""
        held, self._held = self._held, []
        gone = set(lost)
        for key, item in held:
            if key in gone:
                log.warning("lease of %s lost: its %s, said while the node was paused, is not published",
                            key, item.routing_key)
            else:
                self.publisher.publish(item)

    # ---------------------------------------------------- a command's end
    def ack(self, d: Delivery) -> None:
        self.tally.command(d.command_queue, "done")
        self.consumer.ack(d)

    def requeue(self, d: Delivery) -> None:
        self.tally.command(d.command_queue, "requeued")
        self.consumer.requeue(d)

    def emit_then_ack(self, name: str, body: dict, d: Delivery, copies: Sequence[Delivery] = ()) -> None:
        """The command's outcome is this event: acknowledged, and counted
        done, only once the event is safely with the broker (with
        ``copies``, other deliveries of the same command that share this
        answer)."""
        def ack_all() -> None:
            for x in (d, *copies):
                self.ack(x)

        self.emit(name, body, on_confirmed=ack_all)

    def fail(self, d: Delivery, reason: str, detail: str, key: str | None, command_id: str | None,
             copies: Sequence[Delivery] = ()) -> None:
        """Failed for good: tell the client, keep the command in the dead
        letter queue, then take it off its queue (with ``copies``, other
        deliveries of the same command that share this answer)."""
        body = {"command": d.command_queue, "reason": reason, "detail": detail}
        if key is not None:
            body["key"] = key
        if command_id is not None:
            body["command_id"] = command_id
        log.info("command %s failed: %s (%s)", d.command_queue, reason, detail)
        self.counters.bump("commands_failed")
        self.counters.bump(f"commands_failed_{reason}")
        for x in (d, *copies):
            self.tally.command(x.command_queue, "failed", reason)
        self.emit("command_failed", body)
        headers: dict[str, object]  # AMQP headers: texts, and a size
        headers = {"x-queue": d.command_queue, "x-reason": reason, "x-detail": detail[:1000], "x-node": self.node_id}
        dead = d.body
        if len(dead) > self.dead_letter_max_body:
            headers["x-original-size"] = len(dead)
            dead = dead[:self.dead_letter_max_body]

        def ack_all() -> None:
            for x in (d, *copies):
                self.consumer.ack(x)

        self.publisher.publish(Outgoing("", DEAD_LETTER_QUEUE, dead, headers, mandatory=True, on_confirmed=ack_all))

    def forward(self, d: Delivery, queue: str, on_unroutable: Callable[[], None]) -> None:
        """Hand the command to another queue (its owner's), unchanged but
        for headers naming where it came from; acknowledged once confirmed.
        Not published at all once the delivery died with its connection
        while the copy waited in the outbox (a cut, the node stopping): the
        broker gives the command out again, and that delivery is routed
        anew; a copy as well would be a second command, without the mark
        of one delivered again, that could be sent after the other was
        refused."""
        headers = {**d.headers, "x-queue": d.command_queue, "x-routed-by": self.node_id}
        if d.redelivered:
            headers["x-redelivered"] = True  # the owner answers it as it did the first time
        self.tally.command(d.command_queue, "forwarded")
        self.publisher.publish(Outgoing("", queue, d.body, headers, mandatory=True,
                                        on_confirmed=lambda: self.consumer.ack(d), on_unroutable=on_unroutable,
                                        stale=lambda: not self.consumer.holds(d)))

    def command(self, queue: str, body: dict, headers: dict) -> None:
        """Publish a command of the node's own to a command queue (a create
        for a key of a lost node, a session moved off a drained one)."""
        self.publisher.publish(Outgoing("", queue, orjson.dumps(body), {**headers, "x-node": self.node_id},
                                        mandatory=True))

    # ------------------------------------------------ what sessions say
    def handlers(self) -> dict:
        """The session events only logged (``protocol.EVENTS``); a
        ``message`` goes out through ``media/inbound.py``, which adds its media."""
        return {"error": self._on_error}

    def _on_error(self, rec: S.SessionRecord, event: dict, now: float) -> None:
        log.warning("session %s reported an error: %s %s", rec.key, event["reason"], event.get("detail"))

    # ------------------------------------------------- a listener of Sessions
    def on_change(self, change: S.Change) -> None:
        """Every session state change is a ``state_instance`` event, but a
        restored record (clients never saw it stop) and a dropped one (this
        node may not speak as its owner any more)."""
        if change.restored or change.new == S.DROPPED:
            return
        body = {"key": change.key, "state": change.new, "previous": None if change.old == S.NEW else change.old}
        if change.reason:  # why, where the node says (failed: crash_loop; restarting: memory_limit)
            body["reason"] = change.reason
        self.emit_as_owner("state_instance", body)
