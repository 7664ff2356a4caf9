"""Where a create goes: the broker places it, by consumer priority and
prefetch.

Every accepting node consumes ``create_instance`` with a consumer priority
(``x-priority``) and a prefetch that both follow its headroom.  RabbitMQ
hands each message to the consumer of the highest priority that can take
one (that holds fewer unacknowledged creates than its prefetch), to a lower
one only while every higher one is full, and in turn among equals.  So a
create goes to the node with the most headroom among those accepting, with
no scheduler of ours: a node that is full cancels its consumer (admission),
a node that has just started comes in at the top.  In a burst every node
is full for the moment it takes to start a session: the prefetch is what
shares a burst by headroom, a node with more room holding more creates at
once (``prefetch = 1 + bucket // 2``, 1 to 5, and never more than the free
``MAX_SESSIONS`` slots).

The priority, from the node's own figures:

- headroom, in percent: the smaller of how far the busier load reading
  (CPU or RAM, smoothed, as admission reads them) is under ``ADMIT_HIGH``
  (as a share of it), and, when ``MAX_SESSIONS`` is set, the share of its
  slots still free;
- put in ten buckets of ten points (0 to 9).  A reading crosses into
  another bucket only ``MARGIN`` points past the edge, so a load that
  hovers at an edge does not make the node subscribe again at every
  reading;
- within a bucket, fewer sessions first:
  ``priority = bucket * SPAN - min(sessions, SPAN - 1)``.

So two idle nodes share a burst in turn, one session each; a node that
already runs many gets creates only once the others have as many, or
while they are busy; a node whose machine is loaded gets them after
nodes with more room, whatever their session counts.

Pure: figures in, a number out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUCKET_WIDTH = 10.0  # headroom points per bucket
TOP_BUCKET = 9  # 90 to 100 % headroom
MARGIN = 2.0  # points past a bucket's edge before the bucket changes
SPAN = 1000  # priorities a bucket spans: sessions tell nodes of one bucket apart


def headroom(sessions: int, cpu: float, mem: float, admit_high: float, max_sessions: int = 0) -> float:
    """Percent of room left, 0 to 100 (see the module docstring)."""
    room = 100.0 * (admit_high - max(cpu, mem)) / admit_high
    if max_sessions > 0:
        room = min(room, 100.0 * (max_sessions - sessions) / max_sessions)
    return max(0.0, min(100.0, room))


def bucket_of(room: float, previous: int | None = None) -> int:
    """The headroom bucket of ``room``; ``previous`` is kept while ``room``
    is within ``MARGIN`` of it."""
    bucket = min(int(room // BUCKET_WIDTH), TOP_BUCKET)
    if previous is not None and bucket != previous:
        low = previous * BUCKET_WIDTH - MARGIN
        high = (previous + 1) * BUCKET_WIDTH + MARGIN
        if previous == TOP_BUCKET:
            high = float("inf")
        if low <= room < high:
            return previous
    return bucket


def priority_of(bucket: int, sessions: int) -> int:
    return bucket * SPAN - min(max(sessions, 0), SPAN - 1)


def prefetch_of(bucket: int, free_slots: int | None = None) -> int:
    """Creates the node may hold at once: more with more room, never more
    than its free slots (but one: a full node cancels its consumer)."""
    prefetch = 1 + bucket // 2
    if free_slots is not None:
        prefetch = min(prefetch, free_slots)
    return max(1, prefetch)


@dataclass
class CreatePriority:
    """The node's create priority and prefetch now; keeps its bucket
    between readings (the margin)."""

    admit_high: float
    max_sessions: int = 0
    _bucket: int | None = field(default=None, init=False)

    def __call__(self, sessions: int, cpu: float, mem: float) -> tuple[int, int]:
        room = headroom(sessions, cpu, mem, self.admit_high, self.max_sessions)
        self._bucket = bucket_of(room, self._bucket)
        free = max(0, self.max_sessions - sessions) if self.max_sessions > 0 else None
        return priority_of(self._bucket, sessions), prefetch_of(self._bucket, free)
