"""A session's states on a node.  Only ``Sessions.set_state`` changes them;
every change is handed to its listeners as a :class:`Change` (the Redis
writer, the ``state_instance`` announcer, the send desk, counters).
Dependency-free, so the rules can be read and tested alone.

    (new) ──> starting ──> qr ──> ready
                 │  └────────────┘ │            (restored sessions skip qr)
    (new) ──> restarting <─────────┘  crash: wait out the backoff, then starting
                 └──> failed          too many crashes, or cannot start
    any ──> stopping ──> stopped      destroy, node shutdown, or the session ended
    any ──> (dropped)                 the node lost the key's lease: gone, without a word

``NEW`` and ``DROPPED`` are not states a session is seen in: they mark
where a record begins (create, restore) and where one ends without being
stopped (its lease lost).
"""

from __future__ import annotations

from dataclasses import dataclass

NEW = "new"
STARTING = "starting"
QR = "qr"
READY = "ready"
RESTARTING = "restarting"
FAILED = "failed"
STOPPING = "stopping"
STOPPED = "stopped"
DROPPED = "dropped"

# A process is (or should be) running in these.
RUNNING = frozenset({STARTING, QR, READY})
# The session holds the key and accepts commands in these.
ALIVE = frozenset({STARTING, QR, READY, RESTARTING})
# What a session on a node can be seen in (the heartbeat counts these).
VISIBLE = (STARTING, QR, READY, RESTARTING, FAILED, STOPPING)

TRANSITIONS = {
    NEW: {STARTING, RESTARTING},
    STARTING: {QR, READY, RESTARTING, FAILED, STOPPING, DROPPED},
    QR: {READY, RESTARTING, FAILED, STOPPING, DROPPED},
    READY: {RESTARTING, FAILED, STOPPING, DROPPED},
    RESTARTING: {STARTING, FAILED, STOPPING, DROPPED},
    FAILED: {STARTING, STOPPING, DROPPED},
    STOPPING: {STOPPED, DROPPED},
    STOPPED: set(),
    DROPPED: set(),
}


@dataclass(frozen=True)
class Change:
    """One lifecycle change, as listeners see it."""

    key: str
    old: str
    new: str
    me: str | None = None  # the session's own id, once known
    for_good: bool = False  # to STOPPED: destroyed (forget the key), not a node shutdown
    reason: str = ""  # to FAILED: why (crash_loop, cannot_start, ...)
    now: float = 0.0  # when (monotonic)

    @property
    def restored(self) -> bool:
        """A record brought back at a node's start: it never stopped as far
        as clients know, so this change is not announced."""
        return self.old == NEW and self.new == RESTARTING
