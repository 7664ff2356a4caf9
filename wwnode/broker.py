"""RabbitMQ, as the node uses it: command queues in, events out.

Two connections, as pika's documentation advises: flow control on the
publishing one must not stall consumption.  Both are pika
``BlockingConnection``s pumped by the node's loop (``pump()`` never waits);
only the making of a connection runs on a thread (``_Connector``).

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
- the durable queue ``wa.dead_letter`` for commands that failed for good.
  The old queues were declared without arguments by the old service, so a
  dead-letter *argument* on them would clash; the node republishes the
  rejected command there itself (with ``x-reason`` headers) and then acks it.
"""

from __future__ import annotations

import logging
import random
import socket as socketlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import pika
import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from .config import redact_url
from .spool import Spool

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "wa.events"
DEAD_LETTER_QUEUE = "wa.dead_letter"
COMMAND_QUEUES = ("create_instance", "destroy_instance", "send_message")
REROUTE_QUEUE = "wa.reroute"
# Consumed by one node at a time, the router (see Consumer).
ROUTED_QUEUES = ("send_message", "destroy_instance", REROUTE_QUEUE)
ROUTER_RETRY = 3.0  # seconds between a node's tries to become the router
# Longest wait for the broker's answer to a cancel, consume or declare: on a
# live broker these take milliseconds, and the wait holds up the node's loop.
RPC_TIMEOUT = 3.0
LEGACY_EVENT_QUEUES = ("authenticated_instance", "disconnected_instance", "auth_failure_instance", "message_instance")

# What a broken connection or channel raises in pika (a connection attempt
# that times out raises the connection workflow's own exceptions).
BROKER_ERRORS = (pika.exceptions.AMQPError, AMQPConnectorException, OSError)


@dataclass(frozen=True)
class Delivery:
    """A command as delivered: acked on the channel that delivered it, and
    only while that connection lives (tags die with it)."""

    queue: str
    tag: int
    generation: int
    redelivered: bool
    body: bytes
    headers: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The command queue the client published to (a routed command
        carries it in a header)."""
        return self.headers.get("x-queue") or self.queue


def _params(url: str, heartbeat: int) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 4 * heartbeat
    params.connection_attempts = 1
    # Connecting blocks the node's loop: keep it short, retries back off.
    params.socket_timeout = 3
    params.stack_timeout = 5
    params.client_properties = {"connection_name": "wwnode"}
    return params


class _Bounded:
    """Bounds a call that waits for the broker's answer (a cancel, a consume,
    a declare): past ``seconds`` the connection's socket is shut, so the
    wait ends in an error instead of lasting until pika notices a silent
    link.  The timer is the I/O loop's own, which runs during the wait."""

    def __init__(self, connection, seconds: float):
        self.connection = connection
        self.seconds = seconds

    def __enter__(self):
        self.ioloop = self.connection._impl.ioloop  # pika 1.x internals
        self.timer = self.ioloop.call_later(self.seconds, self._cut)
        return self

    def _cut(self) -> None:
        log.warning("RabbitMQ did not answer in %.0f s; dropping the connection", self.seconds)
        try:
            self.connection._impl._transport._sock.shutdown(socketlib.SHUT_RDWR)
        except (AttributeError, OSError):
            pass

    def __exit__(self, *exc) -> None:
        self.ioloop.remove_timeout(self.timer)


class _Connector:
    """Opens a connection on a thread of its own.  The handshake with a broker
    that does not answer (a silent link) would otherwise hold up the node's
    loop for the whole connection timeout.  The thread only builds the
    connection; once it has ended, the loop alone uses it."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._result: object = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def poll(self, url: str, heartbeat: int) -> pika.BlockingConnection | None:
        """Start an attempt if none runs; a connection once one is made,
        None meanwhile; the attempt's error if it failed."""
        if self._thread is None:
            self._result = None
            self._thread = threading.Thread(target=self._run, args=(_params(url, heartbeat),),
                                            name="amqp-connect", daemon=True)
            self._thread.start()
            return None
        if self._thread.is_alive():
            return None
        self._thread = None
        result, self._result = self._result, None
        if isinstance(result, BaseException):
            raise result
        return result

    def _run(self, params: pika.URLParameters) -> None:
        try:
            self._result = pika.BlockingConnection(params)
        except BROKER_ERRORS as e:
            self._result = e


class _Silence:
    """Notices a connection that went silent without closing.  RabbitMQ
    sends a heartbeat every half interval when nothing else flows, so two
    intervals without a byte mean the link is dead; pika alone takes up to
    2 x (interval + 5 s) to say so."""

    def __init__(self, heartbeat: int):
        self.limit = 2 * heartbeat
        self.reset()

    def reset(self) -> None:
        self._bytes = -1
        self._since: float | None = None

    def silent(self, connection, now: float) -> bool:
        received = connection._impl.bytes_received  # counted by pika for its own heartbeat check
        if received != self._bytes or self._since is None:
            self._bytes, self._since = received, now
            return False
        return now - self._since > self.limit


class _Backoff:
    """Jittered, growing delay between reconnect attempts."""

    def __init__(self, initial: float = 0.5, cap: float = 15.0):
        self.initial, self.cap = initial, cap
        self.delay = initial

    def next(self) -> float:
        d = self.delay
        self.delay = min(self.cap, self.delay * 2)
        return d * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.delay = self.initial


class _Link:
    """What the command and the event connections share."""

    connection: pika.BlockingConnection | None
    _connector: "_Connector"

    @property
    def connecting(self) -> bool:
        return self._connector.busy

    def socket(self) -> socketlib.socket | None:
        """The connection's socket, for the node's poll(); None if unknown."""
        try:
            return self.connection._impl._transport._sock  # pika 1.x internals
        except AttributeError:
            return None


class Consumer(_Link):
    """The command side.  ``on_command(delivery)`` is called from ``pump()``.

    What it consumes:

    - ``create_instance``, like every node (competing consumers), while
      admission allows;
    - ``send_message``, ``destroy_instance`` and ``wa.reroute`` as the
      fleet's *router*: with an exclusive consumer, which the broker grants
      to one node at a time, so commands are routed one by one, in order.
      The others try again every few seconds and one takes over when the
      router's connection goes;
    - its own queue ``wa.node.{node}``, where the router puts the commands
      for keys this node owns.
    """

    def __init__(self, url: str, heartbeat: int, prefetch: int, node_id: str,
                 on_command: Callable[[Delivery], None], node_queue_ttl: float = 60.0):
        self.url = url
        self.heartbeat = heartbeat
        self.prefetch = prefetch
        self.node_queue = node_queue_name(node_id)
        self.node_queue_ttl = node_queue_ttl
        self.on_command = on_command
        self.connection: pika.BlockingConnection | None = None
        self.channels: dict[str, object] = {}
        self.consumer_tags: dict[str, str] = {}
        self.generation = 0
        self.want_creates = True
        self.retry_at = 0.0
        self.router_retry_at = 0.0
        self._connector = _Connector()
        self._cancelled: set[str] = set()
        self._backoff = _Backoff()
        self._silence = _Silence(heartbeat)
        # Counters for the node's heartbeat (tests and operators read them).
        self.losses = 0  # command connection lost or found silent
        self.cancels = 0  # consumers the broker cancelled (a deleted queue)

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.is_open

    @property
    def is_router(self) -> bool:
        return self.up and all(q in self.consumer_tags for q in ROUTED_QUEUES)


    def connect(self, now: float) -> bool:
        if not self.up:
            if now < self.retry_at:
                return False
            try:
                connection = self._connector.poll(self.url, self.heartbeat)
                if connection is None:
                    return False  # still connecting, on its own thread
                self.connection = connection
                self.generation += 1
                self.channels, self.consumer_tags = {}, {}
                with _Bounded(self.connection, RPC_TIMEOUT):
                    self._declare_and_consume()
            except BROKER_ERRORS as e:
                delay = self._backoff.next()
                log.warning("RabbitMQ at %s unreachable (%s); retrying in %.1f s", redact_url(self.url), _why(e), delay)
                self.retry_at = now + delay
                self._drop()
                return False
            self._backoff.reset()
            self.router_retry_at = 0.0
            log.info("consuming commands from %s", redact_url(self.url))
        elif self._cancelled:
            # The broker cancelled a consumer (its queue was deleted, say):
            # declare what is missing again and consume anew.
            log.warning("consumers cancelled by the broker on %s; declaring and consuming again",
                        ", ".join(sorted(self._cancelled)))
            self._cancelled.clear()
            try:
                with _Bounded(self.connection, RPC_TIMEOUT):
                    self._declare_and_consume()
            except BROKER_ERRORS as e:
                self._lost(e)
                return False
            self.router_retry_at = 0.0
        if not self.is_router and now >= self.router_retry_at:
            self._try_router(now)
        return True

    def _declare_and_consume(self) -> None:
        ch = self.connection.channel()
        declare_topology(ch)
        try:
            declare_node_queue(ch, self.node_queue, self.node_queue_ttl)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != 406:
                raise
            # Declared earlier with another NODE_QUEUE_TTL: use it as it is
            # rather than drop the commands it holds.
            log.warning("%s exists with other settings; using it as it is", self.node_queue)
            ch = self.connection.channel()
            ch.queue_declare(self.node_queue, passive=True)
        ch.close()
        if self.node_queue not in self.consumer_tags:
            self._consume(self.node_queue)
        if self.want_creates and "create_instance" not in self.consumer_tags:
            self._consume("create_instance")

    def _on_cancel(self, queue: str) -> None:
        self.cancels += 1
        self.consumer_tags.pop(queue, None)
        self._cancelled.add(queue)

    def _try_router(self, now: float) -> None:
        self.router_retry_at = now + ROUTER_RETRY
        for queue in ROUTED_QUEUES:
            if queue in self.consumer_tags:
                continue
            try:
                with _Bounded(self.connection, RPC_TIMEOUT):
                    self._consume(queue, exclusive=True)
            except pika.exceptions.ChannelClosedByBroker as e:
                # 403: another node is the router.  404: the queue is gone
                # (deleted under us): declare it again first.
                self.channels.pop(queue, None)
                if e.reply_code == 404:
                    self._cancelled.add(queue)
                elif e.reply_code != 403:
                    log.warning("could not consume %s: %s", queue, _why(e))
                return
            except BROKER_ERRORS as e:
                self._lost(e)
                return
        log.info("this node routes send_message and destroy_instance for the fleet")

    def _consume(self, queue: str, exclusive: bool = False) -> None:
        generation = self.generation
        if queue not in self.channels or not self.channels[queue].is_open:
            channel = self.connection.channel()
            channel.basic_qos(prefetch_count=self.prefetch)
            channel.add_on_cancel_callback(lambda frame, q=queue: self._on_cancel(q))
            self.channels[queue] = channel

        def callback(ch, method, properties, body):
            self.on_command(Delivery(queue, method.delivery_tag, generation, method.redelivered, body,
                                     dict(properties.headers or {})))

        self.consumer_tags[queue] = self.channels[queue].basic_consume(queue, callback, exclusive=exclusive)

    def set_accepting_creates(self, accepting: bool) -> None:
        """Admission: cancel or restart the create consumer.  Deliveries it
        holds unacked stay ours; waiting creates stay in the queue."""
        if accepting == self.want_creates:
            return
        self.want_creates = accepting
        if not self.up:
            return
        try:
            with _Bounded(self.connection, RPC_TIMEOUT):
                if accepting:
                    self._consume("create_instance")
                else:
                    tag = self.consumer_tags.pop("create_instance", None)
                    if tag:
                        self.channels["create_instance"].basic_cancel(tag)
        except BROKER_ERRORS as e:
            self._lost(e)

    def pump(self, now: float) -> None:
        """Handle whatever arrived (commands, heartbeats); never waits."""
        if not self.up:
            return
        try:
            self.connection.process_data_events(time_limit=0)
        except BROKER_ERRORS as e:
            self._lost(e)
            return
        if self._silence.silent(self.connection, now):
            self._lost(TimeoutError(f"nothing received for {self._silence.limit} s"))

    def ack(self, d: Delivery) -> None:
        if self._current(d):
            try:
                self.channels[d.queue].basic_ack(d.tag)
            except BROKER_ERRORS as e:
                self._lost(e)

    def requeue(self, d: Delivery) -> None:
        if self._current(d):
            try:
                self.channels[d.queue].basic_nack(d.tag, requeue=True)
            except BROKER_ERRORS as e:
                self._lost(e)

    def _current(self, d: Delivery) -> bool:
        """A tag from an earlier connection means nothing now: the broker
        already put that message back in its queue."""
        return self.up and d.generation == self.generation and d.queue in self.channels

    def _lost(self, e: BaseException) -> None:
        log.warning("lost the command connection to RabbitMQ: %s", _why(e))
        self.losses += 1
        self._drop()

    def _drop(self, graceful: bool = False) -> None:
        _close(self.connection, graceful)
        self.connection = None
        self.channels = {}
        self.consumer_tags = {}
        self._silence.reset()

    def close(self) -> None:
        self._drop(graceful=True)


def node_queue_name(node_id: str) -> str:
    return f"wa.node.{node_id}"


def declare_node_queue(ch, name: str, ttl: float) -> None:
    """A node's own queue.  Commands the router put there for a node that
    then died do not wait for it forever: after ``ttl`` seconds unconsumed
    they go to ``wa.reroute``, and the router routes them again (to a new
    owner, or to command_failed).  An abandoned queue goes after an hour."""
    ch.queue_declare(name, durable=True, arguments={
        "x-message-ttl": int(ttl * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": REROUTE_QUEUE,
        "x-expires": 3600 * 1000,
    })


def declare_topology(ch) -> None:
    for queue in COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE):
        ch.queue_declare(queue, durable=True)
    ch.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    for queue in LEGACY_EVENT_QUEUES:
        ch.queue_bind(queue, EVENTS_EXCHANGE, routing_key=queue)


@dataclass
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict | None = None
    mandatory: bool = False
    on_confirmed: Callable[[], None] | None = None
    on_unroutable: Callable[[], None] | None = None
    seq: int | None = None  # its number in the spool, for events


class Publisher(_Link):
    """Events and dead letters, in order, each confirmed by the broker.
    What cannot be published now waits in the outbox for the connection to
    come back."""

    def __init__(self, url: str, heartbeat: int, spool: Spool | None = None):
        self.url = url
        self.heartbeat = heartbeat
        self.spool = spool
        self.connection: pika.BlockingConnection | None = None
        self.channel = None
        self.outbox: deque[Outgoing] = deque()
        self.retry_at = 0.0
        self._connector = _Connector()
        self._backoff = _Backoff()
        self._silence = _Silence(heartbeat)
        # A confirm from a healthy broker takes milliseconds; waiting for one
        # blocks the node's loop, so the wait is short.
        self.confirm_timeout = min(2.0, float(heartbeat))
        self.blocked = False
        self.blocks = 0  # times the broker blocked publishing, for the heartbeat

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.is_open and self.channel is not None

    def connect(self, now: float) -> bool:
        if self.up:
            return True
        if now < self.retry_at:
            return False
        try:
            connection = self._connector.poll(self.url, self.heartbeat)
            if connection is None:
                return False  # still connecting, on its own thread
            self.connection = connection
            with _Bounded(self.connection, RPC_TIMEOUT):
                self.channel = self.connection.channel()
                declare_topology(self.channel)
                self.channel.confirm_delivery()
            # On the I/O loop itself: a block arrives while a publish waits.
            self.connection._impl.add_on_connection_blocked_callback(self._on_blocked)
            self.connection._impl.add_on_connection_unblocked_callback(self._on_unblocked)
            self.blocked = False
        except BROKER_ERRORS as e:
            delay = self._backoff.next()
            self.retry_at = now + delay
            log.warning("RabbitMQ publisher unreachable (%s); retrying in %.1f s", _why(e), delay)
            self._drop()
            return False
        self._backoff.reset()
        return True

    def publish(self, item: Outgoing) -> None:
        if self.spool is not None and item.exchange == EVENTS_EXCHANGE:
            item.seq = self.spool.add(item.routing_key, item.body)
            if self.spool.over_limit:
                self._drop_oldest_event()
        self.outbox.append(item)
        self.drain()

    def _drop_oldest_event(self) -> None:
        for i, old in enumerate(self.outbox):
            if old.seq is not None:
                del self.outbox[i]
                self.spool.dropped(old.seq)
                log.error("more than %d events wait for RabbitMQ; dropped the oldest (%s)",
                          self.spool.limit, old.routing_key)
                return

    def drain(self) -> None:
        while self.outbox and self.up and not self.blocked:
            item = self.outbox[0]
            props = pika.BasicProperties(
                content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, headers=item.headers
            )
            # Waiting for the confirm blocks the node's loop, so it is bounded:
            # past it the link is cut, and the event waits for the next one.
            # (The I/O loop's own timer: BlockingConnection runs its timers
            # only between calls, never during a blocking one like this.)
            ioloop = self.connection._impl.ioloop
            timer = ioloop.call_later(self.confirm_timeout, self._cut_stalled)
            try:
                self.channel.basic_publish(item.exchange, item.routing_key, item.body, props, mandatory=item.mandatory)
            except pika.exceptions.UnroutableError:
                self.outbox.popleft()
                if item.on_unroutable is not None:
                    item.on_unroutable()
                else:
                    log.error("%s had no queue to go to", item.routing_key)
                continue
            except pika.exceptions.NackError:
                log.warning("broker refused %s; will retry", item.routing_key)
                return
            except BROKER_ERRORS as e:
                log.warning("publishing stopped: %s", _why(e))
                self._drop()
                return
            finally:
                ioloop.remove_timeout(timer)
            self.outbox.popleft()
            if item.seq is not None:
                self.spool.confirmed(item.seq)
            if item.on_confirmed is not None:
                item.on_confirmed()

    def pump(self, now: float) -> None:
        if not self.up:
            return
        try:
            self.connection.process_data_events(time_limit=0)
        except BROKER_ERRORS as e:
            log.warning("publisher connection lost: %s", _why(e))
            self._drop()
            return
        if self._silence.silent(self.connection, now):
            log.warning("publisher connection silent for %d s; replacing it", self._silence.limit)
            self._drop()


    def _cut_stalled(self) -> None:
        log.warning("no publisher confirm in %.0f s%s; replacing the connection", self.confirm_timeout,
                    " (RabbitMQ blocks publishing)" if self.blocked else "")
        # Not at once: while an alarm lasts, each try stalls the loop again.
        self.retry_at = time.monotonic() + self._backoff.next()
        sock = self.socket()
        if sock is not None:
            try:
                sock.shutdown(socketlib.SHUT_RDWR)  # the pending wait then fails at once
            except OSError:
                pass

    def _on_blocked(self, *_args) -> None:
        log.warning("RabbitMQ blocks publishing (a resource alarm); events wait")
        self.blocked = True
        self.blocks += 1

    def _on_unblocked(self, *_args) -> None:
        log.warning("RabbitMQ takes events again")
        self.blocked = False

    def _drop(self, graceful: bool = False) -> None:
        _close(self.connection, graceful)
        self.connection = None
        self.channel = None
        self._silence.reset()

    def close(self) -> None:
        self._drop(graceful=True)


def _close(connection, graceful: bool) -> None:
    """Close a connection.  After a failure the link may be dead or silent,
    and a polite close would wait for the broker's answer: cut the socket
    first, so closing cannot block the node."""
    if connection is None:
        return
    if not graceful:
        try:
            connection._impl._transport._sock.shutdown(socketlib.SHUT_RDWR)  # pika 1.x internals
        except (AttributeError, OSError):
            pass
    try:
        if connection.is_open:
            connection.close()
    except BROKER_ERRORS:
        pass


def _why(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.replace("\n", " ")[:300]
