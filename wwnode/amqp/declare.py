"""The shared topology declared queue by queue, a queue no cluster member serves set aside and tried again.

Declaring the shared topology on a cluster where a queue may, for a
while, exist and not be served.

On a RabbitMQ cluster a queue can be known to every member and served by
none: a quorum queue between leaders (seen for over a minute on a loaded
machine when a member died just after the queue was made), a classic
queue whose member is down.  The broker answers a declaration of such a
queue with 404 ("home node ... is down or inaccessible") and closes the
channel.  Failing the whole connection for it would stop every other
queue too: no create consumed, no event published, for as long as that one
queue is out.  So each such queue is noted and skipped, the rest is
declared on a fresh channel, and the caller tries the skipped ones again
later (``consumer.py``).  A 404 to a declaration that is not passive can
only mean this: a queue that does not exist is created.
"""

from __future__ import annotations

import pika.exceptions

from .topology import SHARED_QUEUES, declare_events

NOT_SERVED = 404  # the broker's answer to declaring a queue that exists but has no live home now


def declare_served(connection) -> frozenset[str]:
    """Declare the shared queues, the events exchange and its bindings;
    returns the queues the broker cannot serve now (the others are
    declared; the caller says so in its log).  Any other refusal is
    raised."""
    unserved = set()
    ch = connection.channel()
    for queue in SHARED_QUEUES:
        try:
            ch.queue_declare(queue, durable=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != NOT_SERVED:
                raise
            unserved.add(queue)
            ch = connection.channel()  # the refusal closed the last one
    declare_events(ch, frozenset(unserved))
    ch.close()
    return frozenset(unserved)
