"""The create consumer: started, cancelled or consumed anew as admission and placement say, and its creates settled after.

Part of :class:`~wwnode.amqp.consumer.Consumer` (a base class of it: the
same link and channels).  Its priority (``x-priority``) and prefetch follow
the node's headroom (``placement.py``); ``creategate.py`` calls
``set_accepting_creates`` once after dispatch and once a tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .link import BROKER_ERRORS, RPC_TIMEOUT

if TYPE_CHECKING:  # only for the annotations: consumer.py imports this module
    from pika.adapters.blocking_connection import BlockingChannel

    from .link import Link
    from .topology import Delivery

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

    if TYPE_CHECKING:
        @property
        def up(self) -> bool: ...

        def _consume(self, queue: str, exclusive: bool = False) -> None: ...

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
        new_priority = priority is not None and priority != self.create_priority
        if priority is not None:
            self.create_priority = priority
        new_prefetch = prefetch is not None and prefetch != self.create_prefetch
        if new_prefetch and prefetch is not None:
            self.create_prefetch = prefetch
            channel = self.channels.get(CREATE_QUEUE)
            if self.up and channel is not None and channel.is_open:
                try:
                    with self.link.bounded(RPC_TIMEOUT):
                        # For the consumers made from now on: the one below.
                        channel.basic_qos(prefetch_count=prefetch)
                except BROKER_ERRORS as e:
                    self.link.lost(e)
                    return
        if accepting == self.want_creates and not (accepting and (new_priority or new_prefetch)):
            return
        self.want_creates = accepting
        if not self.up:
            return  # consumed at the next connect, under the priority kept
        try:
            with self.link.bounded(RPC_TIMEOUT):
                tag = self.consumer_tags.pop(CREATE_QUEUE, None)
                channel = self.channels.get(CREATE_QUEUE)
                # The new consumer before the old one goes: between a cancel
                # and a consume the node has no create consumer, and what
                # arrives then goes to the other nodes, however idle this
                # one is (seen in a loaded test run: two idle nodes split a
                # burst of ten 7/3).  The old consumer's creates stay ours.
                if accepting:
                    self._consume(CREATE_QUEUE)
                if tag and channel is not None and channel.is_open:
                    channel.basic_cancel(tag)
        except BROKER_ERRORS as e:
            self.link.lost(e)
