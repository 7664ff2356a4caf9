"""What the node and its clients agree on in RabbitMQ: names, declarations and the records.

What the node and its clients agree on in RabbitMQ: names, the shape of
the queues, and the two message records the node handles.

Nothing here imports pika, so the node's rules (and their tests) can use
the names and records without a broker library.  ``declare_*`` take any
channel with pika's ``queue_declare``/``exchange_declare``/``queue_bind``.

Topology (declared at every connect, so a restarted broker is rebuilt):

- durable command queues ``create_instance``, ``destroy_instance``,
  ``send_message``, filled by clients through the default exchange;
- each node's own durable queue ``wa.node.{node}``, where the router puts
  commands for the keys that node owns, and ``wa.reroute``, where commands
  a dead node never took come back to be routed again;
- the durable topic exchange ``wa.events``; events are published there with
  routing key = event name, with publisher confirms;
- the old service's four durable event queues, bound to ``wa.events`` under
  their own names;
- ``wa.router``, an exclusive queue nobody publishes to: the router's lock.
  The node that declares it is the fleet's router; an exclusive queue goes
  with its connection, and RabbitMQ grants it to one connection in the
  whole cluster (an exclusive *consumer* alone is not enforced by quorum
  queues);
- the durable queue ``wa.dead_letter`` for commands that failed for good.
  The old queues were declared without arguments by the old service, so a
  dead-letter *argument* on them would clash; the node republishes the
  rejected command there itself (with ``x-reason`` headers) and then acks it.

The old event queues and ``wa.dead_letter`` have a reader only if someone
runs one, so they are bounded by a RabbitMQ *policy* (``bounded_policy``),
never by declaration arguments: a policy does not clash with how the old
service, or a client, declared them, and changes without redeclaring.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from ..commands import COMMANDS

EVENTS_EXCHANGE = "wa.events"
DEAD_LETTER_QUEUE = "wa.dead_letter"
COMMAND_QUEUES = tuple(COMMANDS)  # the command table's queues
REROUTE_QUEUE = "wa.reroute"
ROUTER_LOCK_QUEUE = "wa.router"  # held (declared exclusive) by the router
# Consumed by one node at a time, the router (see consumer.py).
ROUTED_QUEUES = tuple(q for q, spec in COMMANDS.items() if spec.routed) + (REROUTE_QUEUE,)
LEGACY_EVENT_QUEUES = ("authenticated_instance", "disconnected_instance", "auth_failure_instance", "message_instance")
NODE_QUEUE_EXPIRES = 3600.0  # seconds an abandoned node queue is kept
BOUNDED_QUEUES = LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE,)  # queues whose reader may never come
BOUNDED_POLICY_NAME = "wwnode-bounded"


@dataclass(frozen=True)
class Delivery:
    """A command as delivered: acked on the channel that delivered it, and
    only while that connection lives (tags die with it)."""

    queue: str
    tag: int
    generation: int  # which connection delivered it (see Consumer.ack)
    redelivered: bool
    body: bytes
    headers: dict = field(default_factory=dict)

    @property
    def command_queue(self) -> str:
        """The command queue the client published to (a routed command
        carries it in a header)."""
        return self.headers.get("x-queue") or self.queue


@dataclass
class Outgoing:
    """A message for the publisher: an event, a routed command or a dead
    letter.  ``on_confirmed`` runs once the broker confirmed it (that is
    when a command may be acked); ``on_unroutable`` when a ``mandatory``
    message found no queue."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict | None = None
    mandatory: bool = False
    on_confirmed: Callable[[], None] | None = None
    on_unroutable: Callable[[], None] | None = None
    # Whether publishing it now would only make a second copy: a command
    # handed on whose delivery died with its connection (the broker put it
    # back, and it is routed again).  Such an item leaves the outbox unsent.
    stale: Callable[[], bool] | None = None
    seq: int | None = None  # its number in the spool, for events


def node_queue_name(node_id: str) -> str:
    return f"wa.node.{node_id}"


SHARED_QUEUES = COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE)


def declare_topology(ch) -> None:
    """Everything, on one channel: any refusal is the caller's (the node
    uses ``declare.declare_served``, which carries on past a queue the
    broker cannot serve now)."""
    for queue in SHARED_QUEUES:
        ch.queue_declare(queue, durable=True)
    declare_events(ch)


def declare_events(ch, skip: frozenset[str] = frozenset()) -> None:
    """The events exchange and the old event queues' bindings (but those
    in ``skip``: queues the broker cannot serve now, bound when they were
    first declared)."""
    ch.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    for queue in LEGACY_EVENT_QUEUES:
        if queue not in skip:
            ch.queue_bind(queue, EVENTS_EXCHANGE, routing_key=queue)


def declare_node_queue(ch, name: str, ttl: float) -> None:
    """A node's own queue.  Commands the router put there for a node that
    then died do not wait for it forever: after ``ttl`` seconds unconsumed
    they go to ``wa.reroute``, and the router routes them again (to a new
    owner, or to command_failed).  An abandoned queue goes after an hour."""
    ch.queue_declare(name, durable=True, arguments={
        "x-message-ttl": int(ttl * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": REROUTE_QUEUE,
        "x-expires": int(NODE_QUEUE_EXPIRES * 1000),
    })


def bounded_policy(max_length: int, ttl_seconds: int) -> tuple[str, str]:
    """The pattern and definition of the policy that bounds
    ``BOUNDED_QUEUES`` (``rabbitmqctl set_policy --apply-to queues
    wwnode-bounded PATTERN DEFINITION``): at most ``max_length`` messages
    each, none older than ``ttl_seconds``.  Past the length the oldest go
    (RabbitMQ's default overflow, ``drop-head``)."""
    if max_length < 1 or ttl_seconds < 1:
        raise ValueError("a bounded queue needs a length and a TTL of at least 1")
    pattern = "^(" + "|".join(re.escape(q) for q in BOUNDED_QUEUES) + ")$"
    return pattern, json.dumps({"max-length": max_length, "message-ttl": ttl_seconds * 1000})
