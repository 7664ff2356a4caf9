"""RabbitMQ, as the node uses it: command queues in, events out.

Two connections, as pika's documentation advises: flow control on the
publishing one must not stall consumption.  Both are pika
``BlockingConnection``s pumped by the node's loop (``pump()`` never waits);
nothing here runs on a thread of its own.

Topology (declared at every connect, so a restarted broker is rebuilt):

- durable command queues ``create_instance``, ``destroy_instance``,
  ``send_message``, filled by clients through the default exchange;
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
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import pika
import pika.exceptions

from .config import redact_url

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "wa.events"
DEAD_LETTER_QUEUE = "wa.dead_letter"
COMMAND_QUEUES = ("create_instance", "destroy_instance", "send_message")
LEGACY_EVENT_QUEUES = ("authenticated_instance", "disconnected_instance", "auth_failure_instance", "message_instance")

# What a broken connection or channel raises in pika.
BROKER_ERRORS = (pika.exceptions.AMQPError, OSError)


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


def _params(url: str, heartbeat: int) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 4 * heartbeat
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.client_properties = {"connection_name": "wwnode"}
    return params


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


class Consumer:
    """The command side.  ``on_command(delivery)`` is called from ``pump()``."""

    def __init__(self, url: str, heartbeat: int, prefetch: int, on_command: Callable[[Delivery], None]):
        self.url = url
        self.heartbeat = heartbeat
        self.prefetch = prefetch
        self.on_command = on_command
        self.connection: pika.BlockingConnection | None = None
        self.channels: dict[str, object] = {}
        self.consumer_tags: dict[str, str] = {}
        self.generation = 0
        self.want_creates = True
        self.retry_at = 0.0
        self._backoff = _Backoff()

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.is_open

    def socket(self) -> socketlib.socket | None:
        """The connection's socket, for the node's select(); None if unknown."""
        try:
            return self.connection._impl._transport._sock  # pika 1.x internals
        except AttributeError:
            return None

    def connect(self, now: float) -> bool:
        if self.up:
            return True
        if now < self.retry_at:
            return False
        try:
            self.connection = pika.BlockingConnection(_params(self.url, self.heartbeat))
            self.generation += 1
            self.channels = {}
            self.consumer_tags = {}
            ch = self.connection.channel()
            declare_topology(ch)
            for queue in COMMAND_QUEUES:
                qch = self.connection.channel()
                qch.basic_qos(prefetch_count=self.prefetch)
                self.channels[queue] = qch
                if queue != "create_instance" or self.want_creates:
                    self._consume(queue)
            ch.close()
        except BROKER_ERRORS as e:
            delay = self._backoff.next()
            log.warning("RabbitMQ at %s unreachable (%s); retrying in %.1f s", redact_url(self.url), _why(e), delay)
            self.retry_at = now + delay
            self._drop()
            return False
        self._backoff.reset()
        log.info("consuming commands from %s", redact_url(self.url))
        return True

    def _consume(self, queue: str) -> None:
        generation = self.generation

        def callback(ch, method, properties, body):
            self.on_command(Delivery(queue, method.delivery_tag, generation, method.redelivered, body,
                                     dict(properties.headers or {})))

        self.consumer_tags[queue] = self.channels[queue].basic_consume(queue, callback)

    def set_accepting_creates(self, accepting: bool) -> None:
        """Admission: cancel or restart the create consumer.  Deliveries it
        holds unacked stay ours; waiting creates stay in the queue."""
        if accepting == self.want_creates:
            return
        self.want_creates = accepting
        if not self.up:
            return
        try:
            if accepting:
                self._consume("create_instance")
            else:
                tag = self.consumer_tags.pop("create_instance", None)
                if tag:
                    self.channels["create_instance"].basic_cancel(tag)
        except BROKER_ERRORS as e:
            self._lost(e)

    def pump(self) -> None:
        """Handle whatever arrived (commands, heartbeats); never waits."""
        if not self.up:
            return
        try:
            self.connection.process_data_events(time_limit=0)
        except BROKER_ERRORS as e:
            self._lost(e)

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
        return self.up and d.generation == self.generation

    def _lost(self, e: BaseException) -> None:
        log.warning("lost the command connection to RabbitMQ: %s", _why(e))
        self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                if self.connection.is_open:
                    self.connection.close()
            except BROKER_ERRORS:
                pass
        self.connection = None
        self.channels = {}
        self.consumer_tags = {}

    def close(self) -> None:
        self._drop()


def declare_topology(ch) -> None:
    for queue in COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE,):
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


class Publisher:
    """Events and dead letters, in order, each confirmed by the broker.
    What cannot be published now waits in the outbox for the connection to
    come back."""

    def __init__(self, url: str, heartbeat: int):
        self.url = url
        self.heartbeat = heartbeat
        self.connection: pika.BlockingConnection | None = None
        self.channel = None
        self.outbox: deque[Outgoing] = deque()
        self.retry_at = 0.0
        self._backoff = _Backoff()

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.is_open and self.channel is not None

    def connect(self, now: float) -> bool:
        if self.up:
            return True
        if now < self.retry_at:
            return False
        try:
            self.connection = pika.BlockingConnection(_params(self.url, self.heartbeat))
            self.channel = self.connection.channel()
            declare_topology(self.channel)
            self.channel.confirm_delivery()
        except BROKER_ERRORS as e:
            delay = self._backoff.next()
            self.retry_at = now + delay
            log.warning("RabbitMQ publisher unreachable (%s); retrying in %.1f s", _why(e), delay)
            self._drop()
            return False
        self._backoff.reset()
        return True

    def publish(self, item: Outgoing) -> None:
        self.outbox.append(item)
        self.drain()

    def drain(self) -> None:
        while self.outbox and self.up:
            item = self.outbox[0]
            props = pika.BasicProperties(
                content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, headers=item.headers
            )
            try:
                self.channel.basic_publish(item.exchange, item.routing_key, item.body, props, mandatory=item.mandatory)
            except pika.exceptions.UnroutableError:
                log.error("%s had no queue to go to", item.routing_key)
            except pika.exceptions.NackError:
                log.warning("broker refused %s; will retry", item.routing_key)
                return
            except BROKER_ERRORS as e:
                log.warning("publishing stopped: %s", _why(e))
                self._drop()
                return
            self.outbox.popleft()
            if item.on_confirmed is not None:
                item.on_confirmed()

    def pump(self) -> None:
        if not self.up:
            return
        try:
            self.connection.process_data_events(time_limit=0)
        except BROKER_ERRORS as e:
            log.warning("publisher connection lost: %s", _why(e))
            self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                if self.connection.is_open:
                    self.connection.close()
            except BROKER_ERRORS:
                pass
        self.connection = None
        self.channel = None

    def close(self) -> None:
        self._drop()


def _why(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.replace("\n", " ")[:300]
