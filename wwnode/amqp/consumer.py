"""The command side: which queues a node consumes, and the acks.

What a node consumes:

- ``create_instance``, like every node (competing consumers), while
  admission allows, with a consumer priority (``x-priority``) that follows
  the node's headroom (``placement.py``): the broker hands each create to
  the accepting node with the most room.  Its prefetch (one to a few, also
  from the headroom) is the consumer's, not the channel's: quorum queues
  refuse a channel-wide (``global``) prefetch.  So across a change of
  priority (cancel, then consume anew) the new consumer may take a create
  while the old one's are still unacknowledged; the cap is asked again at
  each create (``dispatch.py``), and one without room goes back to the
  queue;
- ``send_message``, ``destroy_instance`` and ``wa.reroute`` as the fleet's
  *router*: the node holding the exclusive queue ``wa.router``, which the
  broker grants to one connection at a time, consumes them (with exclusive
  consumers too), so commands are routed one by one, in order.  The others
  try again every few seconds and one takes over when the router's
  connection goes.  The lock queue is what makes the router one on quorum
  queues, which let a second exclusive consumer in (RabbitMQ 3.10);
- its own queue ``wa.node.{node}``, where the router puts the commands for
  keys this node owns.

A queue the broker cancels our consumer on, or cannot serve now (a
cluster's queue with no live home: ``declare.py``), is declared and
consumed again every ``QUEUE_RETRY`` seconds; the others are consumed
meanwhile.

The bytes of command bodies held at once are bounded (``COMMAND_BYTES_LIMIT``,
``holding.py``): a delivery past it is put back, and its queue's consumer
cancelled until there is room, then consumed anew (the router stays the
router meanwhile).
"""

from __future__ import annotations

import functools
import logging
from typing import Callable, Collection, cast

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ..config import redact_url
from .creates import CREATE_PREFETCH, CREATE_QUEUE, CreateConsumer
from .declare import NOT_SERVED, declare_served
from .holding import HeldBodies
from .link import BROKER_ERRORS, RPC_TIMEOUT, Link
from .nowait import before_close, cancel_without_waiting
from .router import RouterElection
from .topology import ROUTED_QUEUES, ROUTER_LOCK_QUEUE, Delivery, declare_node_queue, node_queue_name

log = logging.getLogger(__name__)

QUEUE_RETRY = 1.0  # seconds between tries to consume a queue again (cancelled, or not served)


class Consumer(RouterElection, CreateConsumer):
    """Commands in.  ``on_command(delivery)`` is called from ``pump()``."""

    def __init__(self, url: str, heartbeat: int, prefetch: int, node_id: str,
                 on_command: Callable[[Delivery], None], node_queue_ttl: float = 60.0, bytes_limit: int = 0):
        self.link = Link(url, heartbeat, "command", self._declare_and_consume)
        self.prefetch = prefetch
        self.node_queue = node_queue_name(node_id)
        self.node_queue_ttl = node_queue_ttl
        self.on_command = on_command
        self.channels: dict[str, BlockingChannel] = {}  # queue -> the channel consuming it
        self.consumer_tags: dict[str, str] = {}
        self.want_creates = True
        self.create_priority = 0  # the x-priority of the create consumer (placement.py)
        self.create_prefetch = CREATE_PREFETCH  # creates held at once (placement.py)
        # Creates acknowledged or put back since the create consumer was
        # last updated (True: ack), settled by that update, after it
        # (``set_accepting_creates``).
        self._creates_to_settle: list[tuple[Delivery, bool]] = []
        self.router_retry_at = 0.0
        self._cancelled: set[str] = set()  # queues to declare and consume again
        self._retry_at = 0.0
        self._unserved: frozenset[str] = frozenset()  # as last logged
        self.cancels = 0  # consumers the broker cancelled (a deleted queue), for the heartbeat
        self.bodies = HeldBodies(bytes_limit)  # COMMAND_BYTES_LIMIT: bytes of command bodies held at once
        self._waiting_room: set[str] = set()  # queues whose consumer we cancelled until their next body fits
        self._cancelling: set[str] = set()  # of those, the ones whose cancel the broker has not answered yet

    @property
    def up(self) -> bool:
        return self.link.up

    @property
    def connecting(self) -> bool:
        return self.link.connecting

    @property
    def generation(self) -> int:
        """Which connection is current: a delivery of an earlier one is void."""
        return self.link.generation

    @property
    def losses(self) -> int:
        return self.link.losses

    def socket(self):
        return self.link.socket()

    def pending(self) -> bool:
        """Deliveries read (by an ack's write, say) and not handed over:
        the next pump hands them over, without waiting on the socket."""
        return self.link.pending()

    @property
    def is_router(self) -> bool:
        return self.up and ROUTER_LOCK_QUEUE in self.channels and all(
            q in self.consumer_tags or q in self._waiting_room for q in ROUTED_QUEUES)

    def connect(self, now: float) -> bool:
        if not self.up:
            self.channels, self.consumer_tags = {}, {}
            self.bodies.clear()
            self._waiting_room.clear()
            self._cancelling.clear()
            if not self.link.connect(now):
                return False
            self.router_retry_at = 0.0
            log.info("consuming commands from %s", redact_url(self.link.url))
        elif self._cancelled and now >= self._retry_at:
            # The broker cancelled a consumer (its queue was deleted, say),
            # or could not serve a queue: declare what is missing again and
            # consume anew.
            self._retry_at = now + QUEUE_RETRY
            self._cancelled.clear()
            try:
                with self.link.bounded(RPC_TIMEOUT):
                    self._declare_and_consume()
            except BROKER_ERRORS as e:
                self.link.lost(e)
                return False
            self.router_retry_at = 0.0
        if not self.is_router and now >= self.router_retry_at:
            self._try_router(now)
        self._consume_again_with_room()
        return True

    def _declare_and_consume(self) -> None:
        connection = cast(pika.BlockingConnection, self.link.connection)  # called with the link up
        unserved = set(declare_served(connection))
        ch = connection.channel()
        try:
            declare_node_queue(ch, self.node_queue, self.node_queue_ttl)
            ch.close()
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code == NOT_SERVED:
                unserved.add(self.node_queue)
            elif e.reply_code == 406:
                # Declared earlier with another NODE_QUEUE_TTL: use it as it
                # is rather than drop the commands it holds.
                log.warning("%s exists with other settings; using it as it is", self.node_queue)
            else:
                raise
        for queue in (self.node_queue, CREATE_QUEUE):
            if (queue in self.consumer_tags or queue in self._waiting_room
                    or (queue == CREATE_QUEUE and not self.want_creates)):
                continue
            if queue in unserved:
                self._not_served(queue)
            else:
                self._consume_served(queue)
        self._log_unserved(unserved)

    def _log_unserved(self, unserved: Collection[str]) -> None:
        """Say so when the queues the broker cannot serve change (the
        retries themselves would fill the log)."""
        unserved = frozenset(unserved)
        if unserved and unserved != self._unserved:
            log.warning("RabbitMQ cannot serve %s now (no live member holds it); consuming the other queues, "
                        "trying again every %g s", ", ".join(sorted(unserved)), QUEUE_RETRY)
        elif self._unserved and not unserved:
            log.info("RabbitMQ serves %s again", ", ".join(sorted(self._unserved)))
        self._unserved = unserved

    def _not_served(self, queue: str) -> None:
        self.channels.pop(queue, None)  # the refusal closed it
        self._cancelled.add(queue)

    def _consume_served(self, queue: str, exclusive: bool = False) -> bool:
        """Consume ``queue``; False if the broker cannot serve it now."""
        try:
            self._consume(queue, exclusive=exclusive)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != NOT_SERVED:
                raise
            self._not_served(queue)
            return False
        return True

    def _on_cancel(self, queue: str) -> None:
        log.warning("the broker cancelled the consumer on %s; declaring and consuming it again", queue)
        self.cancels += 1
        self.consumer_tags.pop(queue, None)
        self._cancelled.add(queue)
        self._cancelling.discard(queue)  # (ours, if any, will not be answered now)

    def _consume(self, queue: str, exclusive: bool = False) -> None:
        if queue not in self.channels or not self.channels[queue].is_open:
            channel = cast(pika.BlockingConnection, self.link.connection).channel()  # up: connected
            if queue == CREATE_QUEUE:
                channel.basic_qos(prefetch_count=self.create_prefetch)
            else:
                channel.basic_qos(prefetch_count=self.prefetch)
            channel.add_on_cancel_callback(lambda frame, q=queue: self._on_cancel(q))
            self.channels[queue] = channel
        arguments = {"x-priority": self.create_priority} if queue == CREATE_QUEUE else None
        self.consumer_tags[queue] = self.channels[queue].basic_consume(queue, self._on_delivery(queue),
                                                                       exclusive=exclusive, arguments=arguments)

    def _on_delivery(self, queue: str) -> Callable:
        """The consumer callback of ``queue`` on the connection of now."""
        generation = self.link.generation

        def callback(ch, method, properties, body):
            d = Delivery(queue, method.delivery_tag, generation, method.redelivered, body,
                         dict(properties.headers or {}))
            first = queue not in self.bodies.waiting
            if queue == CREATE_QUEUE or self.bodies.take(queue, _held(d), len(body)):
                self.on_command(d)
            else:
                self._put_back(d, first)
        return callback

    def pump(self, now: float) -> None:
        """Handle whatever arrived (commands, heartbeats); never waits."""
        self.link.pump(now)
        self._wait_for_room()

    # ------------------------------------------------ COMMAND_BYTES_LIMIT
    def _put_back(self, d: Delivery, first: bool) -> None:
        """Past the limit (``holding.py``): back where it was in its queue,
        at once (from the consumer's callback: acks and nacks may be sent
        there, a cancel may not; ``_wait_for_room`` cancels after the pump).
        ``first``: its queue starts waiting for room with it."""
        if first:
            log.warning("holding %.1f MiB of command bodies (COMMAND_BYTES_LIMIT %.1f MiB): the next of %s "
                        "(%.1f MiB) waits in its queue until some are done", self.bodies.held / MIB,
                        self.bodies.limit / MIB, d.queue, len(d.body) / MIB)
        try:
            self.channels[d.queue].basic_nack(d.tag, requeue=True)
        except BROKER_ERRORS as e:
            self.link.lost(e)

    def _wait_for_room(self) -> None:
        """Cancel the consumers of the queues that wait for room: the broker
        hands them nothing more until there is."""
        for queue in list(self.bodies.waiting):
            tag = self.consumer_tags.pop(queue, None)
            if tag is None or not self.up:
                continue
            self._waiting_room.add(queue)
            # Not waited for: the answer comes behind all the consumer was
            # sent already, at worst COMMAND_PREFETCH bodies of 128 MiB
            # (``cancel_without_waiting``).  Consumed anew only once it came.
            self._cancelling.add(queue)
            try:
                cancel_without_waiting(self.channels[queue], tag, functools.partial(self._cancelling.discard, queue))
            except BROKER_ERRORS as e:
                self.link.lost(e)
                return

    def _consume_again_with_room(self) -> None:
        """The queues whose body put back first fits now: consumed anew."""
        for queue in self.bodies.ready(skip=self._cancelling):
            if queue not in self._waiting_room:
                continue  # its consumer was not cancelled yet: it goes on
            self._waiting_room.discard(queue)
            log.info("room for command bodies again (%.1f MiB held): consuming %s", self.bodies.held / MIB, queue)
            try:
                with self.link.bounded(RPC_TIMEOUT):
                    self._consume(queue, exclusive=queue in ROUTED_QUEUES)
            except BROKER_ERRORS as e:
                self.link.lost(e)
                return

    # ------------------------------------------------------------ acks
    def ack(self, d: Delivery) -> None:
        """Acknowledge the delivery; a create's at the next update of the
        create consumer (``set_accepting_creates``)."""
        if d.queue == CREATE_QUEUE:
            self._creates_to_settle.append((d, True))
        else:
            self._ack(d)

    def requeue(self, d: Delivery) -> None:
        """Put the delivery back in its queue; a create at the next update
        of the create consumer (``set_accepting_creates``)."""
        if d.queue == CREATE_QUEUE:
            self._creates_to_settle.append((d, False))
        else:
            self._requeue(d)

    def _ack(self, d: Delivery) -> None:
        self.bodies.release(_held(d))
        if self.holds(d):
            try:
                self.channels[d.queue].basic_ack(d.tag)
            except BROKER_ERRORS as e:
                self.link.lost(e)

    def _requeue(self, d: Delivery) -> None:
        self.bodies.release(_held(d))
        if self.holds(d):
            try:
                self.channels[d.queue].basic_nack(d.tag, requeue=True)
            except BROKER_ERRORS as e:
                self.link.lost(e)

    def hold_copy(self, d: Delivery, size: int) -> None:
        """``d``'s body has a parsed copy of ``size`` bytes (0: gone),
        counted with it by COMMAND_BYTES_LIMIT (``HeldBodies.copy``)."""
        self.bodies.copy(_held(d), size)

    def holds(self, d: Delivery) -> bool:
        """Whether the delivery is still this node's to end.  A tag from an
        earlier connection means nothing now: the broker already put that
        message back in its queue."""
        return self.up and d.generation == self.link.generation and d.queue in self.channels

    def close(self) -> None:
        self._creates_to_settle.clear()  # void with the connection: the broker puts them back
        if self.up:
            for channel in self.channels.values():
                if channel.is_open:
                    before_close(channel)
        self.link.close()


MIB = 1024 * 1024


def _held(d: Delivery) -> tuple:
    """A delivery as ``HeldBodies`` counts it: tags are per channel (one a
    queue), and void with their connection."""
    return d.generation, d.queue, d.tag
