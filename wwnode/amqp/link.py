"""One connection to RabbitMQ kept alive for the node's loop; with nowait.py, the only module that touches pika's internals.

One connection to RabbitMQ, kept alive for the node's loop: with
``nowait.py`` (its channels' calls not waited for), the only file in the
project that touches pika's private attributes.

The node runs one synchronous loop, so its connections are pika
``BlockingConnection``s that the loop pumps (``pump()`` never waits).
What a ``BlockingConnection`` does not offer publicly, and the node needs:

- the socket, for the loop's ``poll()`` and to cut a stalled link;
- a timer that fires *during* a blocking call (a declare, a consume, a
  publisher confirm): ``BlockingConnection.call_later`` only runs between
  calls, so the I/O loop's own timer is used to bound every wait;
- the count of bytes received, to notice a link gone silent sooner than
  pika's own heartbeat check (2 x (interval + 5 s));
- whether pika holds deliveries it read but has not handed over (it
  reads while it writes), which the socket no longer shows to ``poll()``;
- blocked/unblocked callbacks run on the I/O loop, so a resource alarm is
  known while a publish waits (the public ones run between calls);
- ``AMQPConnectorException``, which a connection attempt that times out
  raises unwrapped, from an internal module;
- a consumer made, cancelled or given a prefetch without waiting for the
  broker's answer (``nowait.py``, the one other file that reaches into
  pika, for its channels).

All of these sit in ``_Internals`` and ``nowait.py``.  ``check_pika()`` runs at import and
``_Internals`` checks each new connection: on a pika that lacks one of
them the node stops with ``PikaUnsupported`` naming what is missing,
rather than run with waits that silently stopped being bounded.

Why not the supported path?  (The figures: docs/decisions.md, "Events
through pika's BlockingConnection".)  With the node's semantics (events in order, a command acked only after
its confirm, so one in flight) no client is faster: the round trip is the
cost.  The gain needs confirms in flight, which is an outbox with a window
and an I/O thread for both connections, a redesign of the consumer and the
publisher rather than a change of client; py-amqp would remove the
internals at equal speed, but as a second AMQP client beside pika (the tests
and benchmarks use pika).  So the internals stay, fenced here and checked.
"""

from __future__ import annotations

import logging
import socket as socketlib
import threading
import time
from contextlib import contextmanager
from typing import Callable, cast

import pika
import pika.adapters.base_connection
import pika.adapters.blocking_connection
import pika.channel
import pika.connection
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from ..config import redact_url, split_urls
from .liveness import Backoff, Silence

log = logging.getLogger(__name__)

# Longest wait for the broker's answer to a cancel, consume or declare: on a
# live broker these take milliseconds, and the wait holds up the node's loop.
RPC_TIMEOUT = 3.0


class PikaUnsupported(RuntimeError):
    """This pika lacks an internal the link relies on.  Not a broker error:
    nothing catches it, the node stops and says why."""


def check_pika() -> None:
    """What can be checked without a connection: the classes and module
    the link reaches into."""
    missing = []
    try:
        import pika.adapters.utils.connection_workflow as workflow
        if not hasattr(workflow, "AMQPConnectorException"):
            missing.append("pika.adapters.utils.connection_workflow.AMQPConnectorException")
    except ImportError:
        missing.append("pika.adapters.utils.connection_workflow")
    for cls, name in ((pika.connection.Connection, "add_on_connection_blocked_callback"),
                      (pika.connection.Connection, "add_on_connection_unblocked_callback"),
                      (pika.adapters.base_connection.BaseConnection, "ioloop"),
                      (BlockingChannel, "_remove_pending_deliveries"),
                      (BlockingChannel, "_on_consumer_message_delivery"),
                      (pika.channel.Channel, "_generate_consumer_tag"),
                      (pika.adapters.blocking_connection, "_ConsumerInfo")):
        if not hasattr(cls, name):
            missing.append(f"{cls.__module__}.{cls.__name__}.{name}")
    if missing:
        raise PikaUnsupported(f"pika {pika.__version__} lacks {', '.join(missing)}, which wwnode's RabbitMQ "
                              "link relies on (checked with pika 1.3 and 1.4)")


check_pika()
from pika.adapters.utils.connection_workflow import AMQPConnectorException  # noqa: E402  (checked just above)

# What a broken connection or channel raises in pika (a connection attempt
# that times out raises the connection workflow's own exceptions).
BROKER_ERRORS = (pika.exceptions.AMQPError, AMQPConnectorException, OSError)

# The private attributes used on each connection, as paths from it.
INTERNALS = ("_impl.ioloop.call_later", "_impl.ioloop.remove_timeout", "_impl._transport._sock",
             "_impl.bytes_received", "_impl.add_on_connection_blocked_callback",
             "_impl.add_on_connection_unblocked_callback", "_channels_pending_dispatch", "_ready_events")


class _Internals:
    """Every private pika attribute of one open connection, checked when
    it is made."""

    def __init__(self, connection: pika.BlockingConnection):
        missing = [path for path in INTERNALS if not _has_path(connection, path)]
        if missing:
            raise PikaUnsupported(f"pika {pika.__version__} connections lack {', '.join(missing)}, which wwnode's "
                                  "RabbitMQ link relies on (checked with pika 1.3 and 1.4)")
        self._impl = connection._impl
        self._connection = connection

    def sock(self) -> socketlib.socket | None:
        transport = self._impl._transport  # None once the connection has closed
        return None if transport is None else transport._sock

    def pending(self) -> bool:
        """Read from the socket but not handed over yet: a delivery or a
        connection event waits for the next ``process_data_events``."""
        return bool(self._connection._channels_pending_dispatch or self._connection._ready_events)

    def bytes_received(self) -> int:
        return self._impl.bytes_received  # counted by pika for its own heartbeat check

    def call_later(self, seconds: float, callback: Callable[[], None]) -> object:
        return self._impl.ioloop.call_later(seconds, callback)

    def remove_timeout(self, timer: object) -> None:
        self._impl.ioloop.remove_timeout(timer)

    def watch_blocked(self, on_blocked: Callable[[], None], on_unblocked: Callable[[], None]) -> None:
        self._impl.add_on_connection_blocked_callback(lambda *_: on_blocked())
        self._impl.add_on_connection_unblocked_callback(lambda *_: on_unblocked())


def _has_path(obj: object, path: str) -> bool:
    for name in path.split("."):
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


class Link:
    """One connection, made again whenever it goes: for the consumer or the
    publisher, which each have their own (flow control on the publishing
    one must not stall consumption).

    ``on_open`` declares and subscribes on a fresh connection; it runs with
    its waits bounded, and a broker error in it counts as a failed attempt.
    ``generation`` counts connections, so a delivery tag from an earlier one
    is known to be void.

    ``url`` may list several brokers, comma-separated (the members of a
    cluster): an attempt tries each in turn, from the one after the broker
    last lost, and keeps the first that answers; ``url`` is then that one."""

    def __init__(self, url: str, heartbeat: int, role: str, on_open: Callable[[], None]):
        self.urls = split_urls(url)
        self.url = self.urls[0]  # the broker connected to, or last tried
        self._first = 0  # where the next attempt starts in ``urls``
        self.heartbeat = heartbeat
        self.role = role  # "command" or "event", for the log
        self.on_open = on_open
        self.connection: pika.BlockingConnection | None = None
        self.generation = 0
        self.retry_at = 0.0
        self._internals: _Internals | None = None
        self._connector = _Connector()
        self._backoff = Backoff()
        self._silence = Silence(heartbeat)
        self.losses = 0  # connections lost or found silent, for the node's heartbeat

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.is_open

    @property
    def connecting(self) -> bool:
        return self._connector.busy

    def socket(self) -> socketlib.socket | None:
        """The connection's socket, for the node's poll(); None while down."""
        return self._internals.sock() if self.up and self._internals is not None else None

    def pending(self) -> bool:
        """pika has read something it has not handed over yet.  It reads
        whenever it writes (an ack's write may read the next delivery), and
        what it read is no longer in the socket: the loop must not wait on
        the socket for it, but pump at once."""
        return self.up and self._internals is not None and self._internals.pending()

    def connect(self, now: float) -> bool:
        """Up already, or pick up (or start) an attempt on the connector's
        thread, never waiting for it.  True once the link is up."""
        if self.up:
            return True
        if now < self.retry_at:
            return False
        try:
            order = self.urls[self._first:] + self.urls[:self._first]
            made = self._connector.poll(order, self.heartbeat)
            if made is None:
                return False  # still connecting, on its own thread
            connection, self.url = made
            try:
                self._internals = _Internals(connection)
            except PikaUnsupported:
                connection.close()
                raise
            self.connection = connection
            self.generation += 1
            with self.bounded(RPC_TIMEOUT):
                self.on_open()
        except BROKER_ERRORS as e:
            delay = self._backoff.next()
            self.retry_at = now + delay
            where = ", ".join(redact_url(url) for url in self.urls)
            log.warning("RabbitMQ at %s unreachable for the %s connection (%s); retrying in %.1f s",
                        where, self.role, why(e), delay)
            self.drop()
            return False
        self._backoff.reset()
        return True

    @contextmanager
    def bounded(self, seconds: float, on_timeout: Callable[[], None] | None = None):
        """Bound a wait for the broker's answer: past ``seconds`` the socket
        is shut, so the wait ends in a broker error instead of lasting until
        pika notices a silent link.  ``on_timeout`` says why, first."""

        def cut() -> None:
            if on_timeout is not None:
                on_timeout()
            else:
                log.warning("RabbitMQ did not answer in %.0f s; dropping the %s connection", seconds, self.role)
            self.cut()

        # The wait may end with the link dropped; it starts on a link that is up.
        internals = cast(_Internals, self._internals)
        timer = internals.call_later(seconds, cut)
        try:
            yield
        finally:
            internals.remove_timeout(timer)

    def back_off(self) -> None:
        """Wait a growing while before the next attempt (the connection was
        cut because the broker held a wait: trying at once would stall the
        loop again)."""
        self.retry_at = time.monotonic() + self._backoff.next()

    def watch_blocked(self, on_blocked: Callable[[], None], on_unblocked: Callable[[], None]) -> None:
        """Resource alarms, told on the I/O loop, so even during a publish."""
        cast(_Internals, self._internals).watch_blocked(on_blocked, on_unblocked)  # called once up (on_open)

    def pump(self, now: float) -> None:
        """Handle whatever arrived (deliveries, heartbeats, confirms); never
        waits.  A link silent for two heartbeats is replaced."""
        if not self.up:
            return
        try:
            cast(pika.BlockingConnection, self.connection).process_data_events(time_limit=0)  # up: checked above
        except BROKER_ERRORS as e:
            self.lost(e)
            return
        if self.up and self._silence.silent(cast(_Internals, self._internals).bytes_received(), now):
            self.lost(TimeoutError(f"nothing received for {self._silence.limit} s"))

    def cut(self) -> None:
        """Shut the socket: a pending wait then fails at once."""
        sock = self._internals.sock() if self._internals is not None else None
        if sock is not None:
            try:
                sock.shutdown(socketlib.SHUT_RDWR)
            except OSError:
                pass  # already shut

    def lost(self, e: BaseException) -> None:
        log.warning("lost the %s connection to RabbitMQ at %s: %s", self.role, redact_url(self.url), why(e))
        self.losses += 1
        # That broker may be dead: the next attempt starts with another.
        self._first = (self.urls.index(self.url) + 1) % len(self.urls)
        self.drop()

    def drop(self, graceful: bool = False) -> None:
        """Forget the connection.  After a failure the link may be dead or
        silent, and a polite close would wait for the broker's answer: the
        socket is cut first, so closing cannot block the node."""
        if self.connection is not None:
            if not graceful:
                self.cut()
            try:
                if self.connection.is_open:
                    self.connection.close()
            except BROKER_ERRORS:
                pass  # it was going anyway
        self.connection = None
        self._internals = None
        self._silence.reset()

    def close(self) -> None:
        self.drop(graceful=True)


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


class _Connector:
    """Opens a connection on a thread of its own.  The handshake with a broker
    that does not answer (a silent link) would otherwise hold up the node's
    loop for the whole connection timeout.  The thread only builds the
    connection; once it has ended, the loop alone uses it."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._result: tuple[pika.BlockingConnection, str] | BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def poll(self, urls: list[str], heartbeat: int) -> tuple[pika.BlockingConnection, str] | None:
        """Start an attempt if none runs (each URL in turn); a connection
        and its URL once one is made, None meanwhile; the last error if
        none answered."""
        if self._thread is None:
            self._result = None
            self._thread = threading.Thread(target=self._run, args=([(u, _params(u, heartbeat)) for u in urls],),
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

    def _run(self, candidates: list[tuple[str, pika.URLParameters]]) -> None:
        for url, params in candidates:
            try:
                self._result = (pika.BlockingConnection(params), url)
                return
            except BROKER_ERRORS as e:
                self._result = e


def why(e: BaseException) -> str:
    """An exception as one short log line."""
    text = str(e) or type(e).__name__
    return text.replace("\n", " ")[:300]
