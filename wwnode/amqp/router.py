"""Router election: the node holding the exclusive queue ``wa.router`` consumes the routed queues for the fleet.

Part of :class:`~wwnode.amqp.consumer.Consumer` (a base class of it: the
same link and channels).  The broker grants the lock queue to one
connection at a time; the other nodes try again every ``ROUTER_RETRY``
seconds, and one takes over when the router's connection goes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import pika
import pika.exceptions

from .link import BROKER_ERRORS, RPC_TIMEOUT, why
from .topology import ROUTED_QUEUES, ROUTER_LOCK_QUEUE

if TYPE_CHECKING:  # only for the annotations: consumer.py imports this module
    from pika.adapters.blocking_connection import BlockingChannel

    from .link import Link

log = logging.getLogger(__name__)

ROUTER_RETRY = 3.0  # seconds between a node's tries to become the router


class RouterElection:
    """The router lock and the routed queues of :class:`Consumer`."""

    # What it uses of Consumer, declared for the type checker: annotations
    # only (Consumer's __init__ sets them), and the methods and properties
    # only while type checking, so nothing here shadows what Consumer defines.
    link: Link
    channels: dict[str, BlockingChannel]
    consumer_tags: dict[str, str]
    router_retry_at: float
    _cancelled: set[str]
    _waiting_room: set[str]

    if TYPE_CHECKING:
        @property
        def is_router(self) -> bool: ...

        def _consume(self, queue: str, exclusive: bool = False) -> None: ...

    def _try_router(self, now: float) -> None:
        self.router_retry_at = now + ROUTER_RETRY
        if not self._take_router_lock():
            return
        for queue in ROUTED_QUEUES:
            if queue in self.consumer_tags or queue in self._waiting_room:
                continue
            try:
                with self.link.bounded(RPC_TIMEOUT):
                    self._consume(queue, exclusive=True)
            except pika.exceptions.ChannelClosedByBroker as e:
                # 403: another node is the router.  404: the queue is gone
                # (deleted under us) or not served now: declare it again
                # later, and consume the other routed queues meanwhile.
                self.channels.pop(queue, None)
                if e.reply_code == 404:
                    self._cancelled.add(queue)
                    continue
                if e.reply_code != 403:
                    log.warning("could not consume %s: %s", queue, why(e))
                return
            except BROKER_ERRORS as e:
                self.link.lost(e)
                return
        if self.is_router:
            log.info("this node routes send_message and destroy_instance for the fleet")

    def _take_router_lock(self) -> bool:
        """Declare ``wa.router`` exclusive on a channel of its own: granted,
        this node is the router until its connection goes; 405: another
        node's connection holds it."""
        if ROUTER_LOCK_QUEUE in self.channels:
            return True
        try:
            with self.link.bounded(RPC_TIMEOUT):
                channel = cast(pika.BlockingConnection, self.link.connection).channel()  # up: connected
                channel.queue_declare(ROUTER_LOCK_QUEUE, exclusive=True, auto_delete=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != 405:
                log.warning("could not take the router's lock %s: %s", ROUTER_LOCK_QUEUE, why(e))
            return False
        except BROKER_ERRORS as e:
            self.link.lost(e)
            return False
        self.channels[ROUTER_LOCK_QUEUE] = channel
        return True
