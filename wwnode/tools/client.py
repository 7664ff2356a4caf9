"""A client of the service that speaks the public contract only, as any program could.

A client of the service, as any program could be: it speaks the public
contract only (the command queues, the ``wa.events`` exchange, the Redis
keys), never the node's internals.  The command line's ``create``,
``send``, ``destroy``, ``qr``, ``events``, ``capacity`` and the demo use it.

Commands are checked with the node's own parser (``wwnode.commands``)
before they are published, so what the node would refuse is refused here,
with the same words, and nothing reaches the broker.

Events are followed through a private queue (exclusive, auto-delete: it
goes with the connection) bound to ``wa.events``.  :meth:`Broker.follow`
binds it *before* the caller publishes, so no event about the command can
slip past.  Publishes wait for the broker's confirm: a command this client
reports as sent is in its queue.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import orjson
import pika
import pika.exceptions
import redis
from pika.adapters.utils.connection_workflow import AMQPConnectorException, AMQPConnectorStackTimeout

from ..amqp.topology import EVENTS_EXCHANGE
from ..commands import Rejected, parse
from ..config import redact_url, split_urls
from ..redis_side.keys import QR, STATE, instance_key
from ..redis_side.conn import connect

CONNECT_TIMEOUT = 5.0


class Unreachable(Exception):
    """RabbitMQ or Redis did not answer; the message says which, where
    (password masked) and why."""


def checked(queue: str, body: dict) -> bytes:
    """The command's body, as the node would accept it; ``Rejected`` (its
    reason and detail) otherwise."""
    data = orjson.dumps(body)
    parse(queue, data)
    return data


class Broker:
    """One connection to RabbitMQ for a command-line client; with several
    URLs (a cluster's members, comma-separated), to the first that answers."""

    def __init__(self, url: str):
        urls = split_urls(url)
        for n, one in enumerate(urls):
            try:
                self._connect(one)
                break
            except Unreachable:
                if n == len(urls) - 1:
                    raise  # none answered: say why the last did not
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.events: deque[dict] = deque()
        self.queue: str | None = None

    def _connect(self, url: str) -> None:
        self.url = url
        params = pika.URLParameters(url)
        params.socket_timeout = CONNECT_TIMEOUT
        # The whole of connecting (TCP, TLS, AMQP's handshake): a server
        # that accepts and never speaks is given up on as soon as a silent
        # Redis is, not after pika's 15 s.
        params.stack_timeout = CONNECT_TIMEOUT
        params.connection_attempts = 1
        params.blocked_connection_timeout = 30
        where = redact_url(url)
        try:
            self.conn = pika.BlockingConnection(params)
        except pika.exceptions.ProbableAuthenticationError:
            raise Unreachable(f"RabbitMQ at {where} refused the user name or password{credentials_hint()}") from None
        except pika.exceptions.ProbableAccessDeniedError:
            raise Unreachable(f"RabbitMQ at {where}: no access to that virtual host{credentials_hint()}") from None
        except pika.exceptions.ConnectionClosedByBroker as e:
            why = "no such virtual host, or no access to it" if e.reply_code == 530 else _why(e)
            hint = credentials_hint() if e.reply_code in (403, 530) else ""
            raise Unreachable(f"RabbitMQ at {where}: {why}{hint}") from None
        except pika.exceptions.AMQPError as e:
            raise Unreachable(f"cannot reach RabbitMQ at {where}: {_why(e)}") from None
        except AMQPConnectorStackTimeout:  # not an AMQPError
            raise Unreachable(f"cannot reach RabbitMQ at {where}: it accepted the connection but gave no AMQP "
                              f"answer within {CONNECT_TIMEOUT:g} s") from None
        except AMQPConnectorException as e:  # nor are pika's other failures to connect
            raise Unreachable(f"cannot reach RabbitMQ at {where}: {type(e).__name__}: {_why(e)}") from None

    def follow(self, names: list[str] | tuple[str, ...] = ("#",)) -> None:
        """Bind a private queue to ``wa.events`` for these event names
        (routing keys; ``#`` is every event).  Call before publishing."""
        self.ch.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
        self.queue = self.ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for name in names:
            self.ch.queue_bind(self.queue, EVENTS_EXCHANGE, routing_key=name)
        self.ch.basic_consume(self.queue, self._on_event, auto_ack=True)

    def _on_event(self, ch, method, props, body: bytes) -> None:
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            event = {"event": method.routing_key, "unreadable": body[:200].decode(errors="replace")}
        self.events.append(event if isinstance(event, dict) else {"event": method.routing_key, "body": event})

    def publish(self, queue: str, body: dict) -> None:
        """Publish a command, checked first; returns once the broker has it.
        The queue is declared as every node declares it, so a command sent
        before any node ran waits there."""
        data = checked(queue, body)
        self.ch.queue_declare(queue, durable=True)
        self.ch.basic_publish("", queue, data, pika.BasicProperties(content_type="application/json",
                                                                    delivery_mode=2))

    def next_event(self, timeout: float) -> dict | None:
        """The next event that came, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.events:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.conn.process_data_events(time_limit=min(left, 0.5))
        return self.events.popleft()

    def purge(self, queue: str) -> int:
        """Drop the messages waiting in a queue (not those a consumer holds);
        how many there were."""
        return self.ch.queue_purge(queue).method.message_count

    def queue_depth(self, queue: str) -> tuple[int, int] | None:
        """(messages ready, consumers) of a queue, by a passive declare;
        None when it does not exist (no node ever declared it)."""
        ch = self.conn.channel()  # a missing queue closes the channel that asked
        try:
            ok = ch.queue_declare(queue, passive=True).method
            return ok.message_count, ok.consumer_count
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code == 404:
                return None
            raise
        finally:
            if ch.is_open:
                ch.close()

    def delete_queue(self, queue: str, if_unused: bool = False, if_empty: bool = False) -> bool:
        """Delete a queue; False when it does not exist or the condition
        does not hold (a consumer reads it, it holds messages)."""
        ch = self.conn.channel()  # a refusal closes the channel that asked
        try:
            ch.queue_delete(queue, if_unused=if_unused, if_empty=if_empty)
            return True
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code in (404, 406):  # not found, precondition failed
                return False
            raise
        finally:
            if ch.is_open:
                ch.close()

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _why(e: Exception) -> str:
    # pika wraps the socket's error (refused, timed out, no such host) in
    # its own exceptions; the innermost says it best.
    while e.args and isinstance(e.args[0], Exception):
        e = getattr(e.args[0], "exception", None) or e.args[0]
    text = str(e) or type(e).__name__
    return text if len(text) < 200 else text[:200] + "..."


def open_redis(url: str, sentinels: str = "", master_name: str = "") -> redis.Redis:
    """A Redis client that has answered a ping (the master the sentinels
    name, with ``sentinels``); ``Unreachable`` otherwise."""
    r = connect(url, sentinels, master_name, socket_timeout=CONNECT_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
                decode_responses=True)
    where = f"the master {master_name} of sentinels {sentinels}" if sentinels else redact_url(url)
    try:
        r.ping()
    except redis.exceptions.AuthenticationError:  # a kind of ConnectionError: first
        # Redis's own words name its protocol (HELLO, AUTH), not the problem.
        if sentinels or urlsplit(url).password:
            why = "refused the user name or password"
        else:
            why = "asks for a password, and the URL gives none"
        raise Unreachable(f"Redis at {where} {why}{credentials_hint()}") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
        raise Unreachable(f"cannot reach Redis at {where}: {_why(e)}") from None
    return r


def credentials_hint(run_dir: str | None = None) -> str:
    """Where the servers the run command started keep their passwords, for
    a client they refused, when that file is here (``WWNODE_RUN``, or
    ``data/run`` of the folder the command runs in); else nothing."""
    path = Path(run_dir or os.environ.get("WWNODE_RUN") or "data/run") / "credentials"
    if not path.is_file():
        return ""
    return f" (the run command's servers take the URLs in {path}: set -a; . {path}; set +a)"


REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def current_qr(r: redis.Redis, key: str) -> str | None:
    """The QR code a session of ``key`` shows now (``instances:{key}:qr_code``)."""
    return cast("str | None", r.get(instance_key(key, QR)))  # the client decodes (connect)


def session_state(r: redis.Redis, key: str) -> dict:
    """The key's state hash (``state``, ``node``, ``since``, ``me``); empty
    when no session of it is known."""
    return r.hgetall(instance_key(key, STATE))


__all__ = ["Broker", "REDIS_DOWN", "Rejected", "Unreachable", "checked", "current_qr", "open_redis",
           "session_state"]
