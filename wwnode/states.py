"""What a session is on a node: its states, its record, a change of state.
Only ``Sessions.set_state`` changes a state; every change is handed to its
listeners as a :class:`Change` (who they are, and in what order, is one list
with its reasons: ``wiring.LISTENERS``).  Dependency-free, so the rules can
be read and tested alone.

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .children import Child

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
    logout: bool = False  # to STOPPED: the link is gone (destroy with logout, or the phone unlinked it)
    moving: bool = False  # to STOPPING/STOPPED: moved to another node (a drain), its lease kept until handed off

    @property
    def restored(self) -> bool:
        """A record brought back at a node's start: it never stopped as far
        as clients know, so this change is not announced."""
        return self.old == NEW and self.new == RESTARTING


@dataclass
class SessionRecord:
    """What the node knows of one session (``SessionRecord``, not
    ``Session``: that name is the session process's own, in sessionproc)."""

    key: str
    state: str = NEW
    child: Child | None = None
    linked: bool = False  # its profile holds a link: restarts need no QR
    me: str | None = None
    qr: str | None = None  # the QR code shown now
    started_at: float | None = None
    restart_at: float | None = None
    # Stopping
    stop_deadline: float | None = None
    stop_for_good: bool = False  # destroy (vs. node shutdown): forget the key
    logout: bool = False
    moving: bool = False  # stopped to be started on another node (a drain)
    recycle: str = ""  # restarting on purpose (why: memory_limit): its process was asked to stop
    # How the session process said it ended: (event, reason, detail)
    end_event: tuple[str, str, str | None] | None = None
