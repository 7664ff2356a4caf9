"""The bytes of command bodies a node holds at once (``COMMAND_BYTES_LIMIT``).

How many bytes of command bodies a node holds at once
(``COMMAND_BYTES_LIMIT``), and which of its consumers wait for room.

RabbitMQ bounds what it hands a consumer by count (the prefetch,
``COMMAND_PREFETCH``: 50), never by size: fifty sends with 120 MiB of base64
each are 6 GB, all the node's at once, held from the moment they arrive
until each is done (a send's delivery is acknowledged once WhatsApp took
it).  A delivery is the node's from the consumer's callback to its ack or
its requeue (``Consumer``); this counts its body's bytes in that time.

A delivery that would take the count past the limit is put back at once
(requeued: RabbitMQ puts it back where it was in its queue), and its queue
waits: its consumer is cancelled, so the broker hands out nothing more
from it (what it had handed out already is put back too, as it arrives),
and consumed anew once the body put back first fits.  That one comes
first again, then the rest, in their order: a key's commands keep theirs.
When nothing is held, a delivery is taken whatever its size: a body larger
than the limit is still carried out, alone.  So the node holds at most the
limit, or one body when that is larger.

A body is not the only copy of itself: a send's base64 ``media.data`` is
parsed into a text as large as the body, which waits for its worker and is
decoded there (``media/desk.py``).  It is counted with its body while it
lives (``copy``): uncounted, the node held up to twice the limit.

``create_instance`` is left out: its prefetch is one to a few
(``placement.py``), and a create waiting for room goes back to its queue
by the rules of admission, not these.

Pure: no pika; ``Consumer`` asks it and acts.
"""

from __future__ import annotations

from typing import Collection, Hashable


class HeldBodies:
    def __init__(self, limit: int):
        self.limit = limit  # bytes; 0: no limit
        self.held = 0  # bytes of the bodies held now
        self._sizes: dict[Hashable, int] = {}  # delivery -> its body's bytes
        self._copies: dict[Hashable, int] = {}  # delivery -> bytes of its parsed copy (``copy``)
        self.waiting: dict[str, int] = {}  # queue -> bytes of the body it put back first

    def fits(self, size: int) -> bool:
        """Whether a body of ``size`` bytes may be held now."""
        return not self.limit or not self.held or self.held + size <= self.limit

    def take(self, queue: str, delivery: Hashable, size: int) -> bool:
        """A delivery arrived: True if it is held (counted), False if it
        must be put back (its queue then waits, ``waiting``)."""
        if queue not in self.waiting and self.fits(size):
            self._sizes[delivery] = size
            self.held += size
            return True
        self.waiting.setdefault(queue, size)
        return False

    def copy(self, delivery: Hashable, size: int) -> None:
        """A held delivery's body has a parsed copy of ``size`` bytes (0: it
        is gone), counted with it until either goes.  A delivery not held
        (a create, one of an earlier connection) is not counted: nothing
        would release it."""
        if delivery not in self._sizes:
            return
        self.held += size - self._copies.pop(delivery, 0)
        if size:
            self._copies[delivery] = size

    def release(self, delivery: Hashable) -> None:
        """A delivery was acknowledged or put back: it is held no more."""
        self.held -= self._sizes.pop(delivery, 0) + self._copies.pop(delivery, 0)

    def ready(self, skip: Collection[str] = ()) -> list[str]:
        """Queues that waited and whose body put back first fits now; no
        longer waiting.  ``skip``: queues that wait on whatever room there is
        (their consumer's cancel is not answered yet)."""
        ready = [queue for queue, size in self.waiting.items() if queue not in skip and self.fits(size)]
        for queue in ready:
            del self.waiting[queue]
        return ready

    def clear(self) -> None:
        """A new connection: what the old one delivered is the broker's again."""
        self.held = 0
        self._sizes.clear()
        self._copies.clear()
        self.waiting.clear()
