"""The create consumer: started, cancelled or consumed anew as admission and placement say, and its creates settled after.

Part of :class:`~wwnode.amqp.consumer.Consumer` (a base class of it: the
same link and channels).  Its priority (``x-priority``) and prefetch follow
the node's headroom (``placement.py``); ``creategate.py`` calls
``set_accepting_creates`` once after dispatch and once a tick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from .link import BROKER_ERRORS, RPC_TIMEOUT
from .nowait import cancel_without_waiting, consume_without_waiting, qos_without_waiting

if TYPE_CHECKING:  # only for the annotations: consumer.py imports this module
    from pika.adapters.blocking_connection import BlockingChannel

    from .link import Link
    from .topology import Delivery

log = logging.getLogger(__name__)

# A node holds few creates at a time (one, until placement says more): a
# create it holds is one no other node with room can take, and a burst must
# not land on a node past its cap before it had a chance to say it is full
# (``COMMAND_PREFETCH`` is for the other queues).
CREATE_PREFETCH = 1
CREATE_QUEUE = "create_instance"


class CreateConsumer:
    """The create consumer of :class:`Consumer` and the settling of its creates."""

    # What it uses of Consumer, declared for the type checker: annotations
    # only (Consumer's __init__ sets them), and the methods and properties
    # only while type checking, so nothing here shadows what Consumer defines.
    link: Link
    channels: dict[str, BlockingChannel]
    consumer_tags: dict[str, str]
    want_creates: bool
    create_priority: int
    create_prefetch: int
    _creates_to_settle: list[tuple[Delivery, bool]]
    _cancelled: set[str]

    if TYPE_CHECKING:
        @property
        def up(self) -> bool: ...

        def _consume(self, queue: str, exclusive: bool = False) -> None: ...

        def _on_delivery(self, queue: str) -> Callable: ...

        def _ack(self, d: Delivery) -> None: ...

        def _requeue(self, d: Delivery) -> None: ...

    def set_accepting_creates(self, accepting: bool, priority: int | None = None,
                              prefetch: int | None = None) -> None:
        """Admission and placement: cancel or restart the create consumer,
        or consume again under a new priority, or change its prefetch; then
        send the acks of the creates carried out since the last update, and
        put back those without room.  The creates it holds unacked stay
        ours; waiting creates stay in the queue.

        Creates are settled only here, after the update, so the broker sees
        the node's new priority (the sessions those creates started
        counted) or its cancel (full) before a freed place in its prefetch
        lets it hand out the next create: the next create is placed on what
        the node runs now, and one put back for want of room goes to
        another node (``creategate.py``)."""
        self._update_create_consumer(accepting, priority, prefetch)
        settle, self._creates_to_settle = self._creates_to_settle, []
        for d, done in settle:
            if done:
                self._ack(d)
            else:
                self._requeue(d)

    def _update_create_consumer(self, accepting: bool, priority: int | None, prefetch: int | None) -> None:
        self._notice_a_closed_create_channel()
        new_priority = priority is not None and priority != self.create_priority
        if priority is not None:
            self.create_priority = priority
        new_prefetch = prefetch is not None and prefetch != self.create_prefetch
        if new_prefetch and prefetch is not None:
            self.create_prefetch = prefetch
        if accepting == self.want_creates and not (accepting and (new_priority or new_prefetch)):
            return
        self.want_creates = accepting
        if not self.up or CREATE_QUEUE in self._cancelled:
            return  # consumed at the next connect or retry, under the priority and prefetch kept
        channel = self.channels.get(CREATE_QUEUE)
        try:
            if channel is None or not channel.is_open:
                if accepting:  # a channel of its own anew, its prefetch set first: nothing else on it to wait behind
                    with self.link.bounded(RPC_TIMEOUT):
                        self._consume(CREATE_QUEUE)
                return
            # On its channel, nothing waited for (``nowait.py``): the
            # answers come behind whatever the connection carries, big
            # command bodies included.  The new consumer goes out before
            # the old one's cancel: between the two the node has no create
            # consumer, and what arrives then goes to the other nodes,
            # however idle this one is (seen in a loaded test run: two idle
            # nodes split a burst of ten 7/3).  The old consumer's creates
            # stay ours.
            tag = self.consumer_tags.pop(CREATE_QUEUE, None)
            if accepting:
                # The prefetch is taken by the consumers made after it: set
                # for each, as the one kept may have changed meanwhile.
                qos_without_waiting(channel, self.create_prefetch)
                self.consumer_tags[CREATE_QUEUE] = consume_without_waiting(
                    channel, CREATE_QUEUE, self._on_delivery(CREATE_QUEUE), {"x-priority": self.create_priority})
            if tag:
                cancel_without_waiting(channel, tag, lambda: None)
        except BROKER_ERRORS as e:
            self.link.lost(e)

    def _notice_a_closed_create_channel(self) -> None:
        """A consumer not waited for that the broker refused closed its
        channel (a cluster's queue with no live member to serve it): the
        queue is declared and consumed again as a cancelled one is
        (``consumer.py``); the creates it held went back with the channel."""
        channel = self.channels.get(CREATE_QUEUE)
        if not self.up or channel is None or channel.is_open or CREATE_QUEUE not in self.consumer_tags:
            return
        log.warning("the broker closed the create consumer's channel; consuming %s again", CREATE_QUEUE)
        self.consumer_tags.pop(CREATE_QUEUE, None)
        self.channels.pop(CREATE_QUEUE, None)
        self._cancelled.add(CREATE_QUEUE)
