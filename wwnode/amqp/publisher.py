"""Events, routed commands and dead letters out, confirmed, and the outbox that keeps them meanwhile.

The event side: events, routed commands and dead letters out, in order,
each confirmed by the broker before it leaves the outbox.

What cannot be published now waits in the ``Outbox`` for the connection to
come back.  Events also wait on disk, in the spool, so a node restarted
meanwhile still publishes them: the outbox owns the spool, reads back at
start what an earlier run left there, and drops the oldest event when too
many wait.  A spool that cannot be written (a full disk) holds nothing up:
the event is published all the same (see ``spool.py``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable, Iterator, cast

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from .spool import Spool
from .link import BROKER_ERRORS, Link
from .declare import declare_served
from .topology import EVENTS_EXCHANGE, Outgoing

log = logging.getLogger(__name__)

# Refusals (nacks) of one message in a row before the connection is made
# anew (see drain).
NACKS_BEFORE_RECONNECT = 5


class Outbox:
    """What waits to be published, oldest first, and its copy on disk.

    Only events (messages to ``wa.events``) go to the spool: a routed
    command or a dead letter is still unacked in its queue, so the broker
    keeps it if the node dies.  Made with a spool, the outbox starts with
    the events an earlier run queued and the broker never confirmed."""

    def __init__(self, spool: Spool | None = None):
        self.spool = spool
        self._items: deque[Outgoing] = deque()
        if spool is not None:
            for routing_key, body in spool.recover():
                self.put(Outgoing(EVENTS_EXCHANGE, routing_key, body))

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Outgoing]:
        return iter(self._items)

    def put(self, item: Outgoing) -> None:
        if self.spool is not None and item.exchange == EVENTS_EXCHANGE:
            item.seq = self.spool.add(item.routing_key, item.body)
            if self.spool.over_limit:
                self._drop_oldest_event()
        self._items.append(item)

    def first(self) -> Outgoing:
        return self._items[0]

    def done(self) -> Outgoing:
        """The first item is out (confirmed, or refused for good): forget it."""
        item = self._items.popleft()
        if item.seq is not None and self.spool is not None:  # only a spool numbers items
            self.spool.confirmed(item.seq)
        return item

    def rejournal(self) -> None:
        """The disk takes writes again (``Storage.on_recovery``): if events
        went out to wait without their line in the spool, write it afresh."""
        if self.spool is not None and not self.spool.complete:
            self.spool.rewrite([(i.seq, i.routing_key, i.body) for i in self._items if i.seq is not None])

    def _drop_oldest_event(self) -> None:
        spool = cast(Spool, self.spool)  # put calls it when its spool is over its limit
        for i, old in enumerate(self._items):
            if old.seq is not None:
                del self._items[i]
                spool.dropped(old.seq)
                log.error("more than %d events wait for RabbitMQ; dropped the oldest (%s)",
                          spool.limit, old.routing_key)
                return


class Publisher:
    def __init__(self, url: str, heartbeat: int, spool: Spool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.link = Link(url, heartbeat, "event", self._open_channel)
        self.outbox = Outbox(spool)
        self.channel: BlockingChannel | None = None
        # A confirm from a healthy broker takes milliseconds; waiting for one
        # blocks the node's loop, so the wait is short.
        self.confirm_timeout = min(2.0, float(heartbeat))
        self.blocked = False
        self._nacks = 0  # refusals in a row
        self.blocks = 0  # times the broker blocked publishing, for the heartbeat
        self.clock = clock
        self._until: float | None = None  # no confirm is waited for from then on (``pace``)

    @property
    def up(self) -> bool:
        return self.link.up and self.channel is not None

    @property
    def connecting(self) -> bool:
        return self.link.connecting

    def socket(self):
        return self.link.socket()

    def connect(self, now: float) -> bool:
        return self.link.connect(now) and self.up

    def _open_channel(self) -> None:
        self.channel = None
        unserved = declare_served(self.link.connection)
        if unserved:
            # Events still reach the exchange and every queue served; an
            # old event queue not served misses them until it is back.
            log.warning("RabbitMQ cannot serve %s now (no live member holds it); publishing events all the same",
                        ", ".join(sorted(unserved)))
        channel = cast(pika.BlockingConnection, self.link.connection).channel()  # on_open: the link is up
        channel.confirm_delivery()
        self.link.watch_blocked(self._on_blocked, self._on_unblocked)
        self.blocked = False
        self.channel = channel

    def publish(self, item: Outgoing) -> None:
        self.outbox.put(item)
        self.drain()

    def pace(self, seconds: float | None) -> None:
        """Wait for confirms for at most ``seconds`` from now on (None: as
        long as it takes), in ``publish`` and ``drain`` alike; what is left
        waits in the outbox, in order, for a later ``drain``.  The node's
        loop paces each of its turns: every publish waits for its confirm,
        and a backlog of them could hold one turn past the node's leases,
        which it renews between turns (docs/decisions.md, "Confirms waited
        for half a second a turn")."""
        self._until = None if seconds is None else self.clock() + seconds

    def behind(self) -> bool:
        """Something waits that could be published now (a paced turn left
        it): the loop goes round again without waiting for input."""
        return bool(self.outbox) and self.up and not self.blocked

    def drain(self) -> None:
        """Publish what waits, one by one, each confirmed before the next:
        an ack may follow a confirm, and events keep their order."""
        while self.outbox and self.up and not self.blocked:
            if self._until is not None and self.clock() >= self._until:
                return  # the rest goes at the next turn (``pace``)
            item = self.outbox.first()
            if item.stale is not None and item.stale():
                self.outbox.done()  # its command is back in its queue: a copy now would be a second one
                continue
            props = pika.BasicProperties(
                content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent, headers=item.headers
            )
            # Waiting for the confirm blocks the node's loop, so it is
            # bounded: past it the link is cut, and the item waits for the
            # next connection.
            try:
                with self.link.bounded(self.confirm_timeout, self._confirm_stalled):
                    channel = cast(BlockingChannel, self.channel)  # up: it has one
                    channel.basic_publish(item.exchange, item.routing_key, item.body, props, mandatory=item.mandatory)
            except pika.exceptions.UnroutableError:
                self.outbox.done()
                if item.on_unroutable is not None:
                    item.on_unroutable()
                else:
                    log.error("%s had no queue to go to", item.routing_key)
                continue
            except pika.exceptions.NackError:
                self._nacks += 1
                if self._nacks >= NACKS_BEFORE_RECONNECT:
                    # A channel opened while a quorum queue's leader was
                    # being replaced can go on refusing after the new one
                    # is elected (RabbitMQ 3.10): a new connection does not.
                    self._nacks = 0
                    self.link.lost(RuntimeError(f"broker refused {item.routing_key} {NACKS_BEFORE_RECONNECT} times"))
                else:
                    log.warning("broker refused %s; will retry", item.routing_key)
                return
            except BROKER_ERRORS as e:
                self.link.lost(e)
                return
            self._nacks = 0
            self.outbox.done()
            if item.on_confirmed is not None:
                item.on_confirmed()

    def _confirm_stalled(self) -> None:
        log.warning("no publisher confirm in %.0f s%s; replacing the connection", self.confirm_timeout,
                    " (RabbitMQ blocks publishing)" if self.blocked else "")
        # Not at once: while an alarm lasts, each try stalls the loop again.
        self.link.back_off()

    def pump(self, now: float) -> None:
        if self.up:
            self.link.pump(now)

    def _on_blocked(self) -> None:
        log.warning("RabbitMQ blocks publishing (a resource alarm); events wait")
        self.blocked = True
        self.blocks += 1

    def _on_unblocked(self) -> None:
        log.warning("RabbitMQ takes events again")
        self.blocked = False

    def close(self) -> None:
        self.link.close()
