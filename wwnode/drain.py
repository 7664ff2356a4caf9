"""Draining a node: it stops taking creates and moves its sessions, one at
a time, to other nodes, without a QR code.

Asked through Redis: ``wwnode drain NODE_ID`` sets ``nodes:{node}:drain``
(``wwnode undrain`` deletes it; it lasts a day unless the node, while it
drains, renews it), which the node reads every heartbeat.  It needs a
blob store every node shares (``BLOB_STORE_URL``), where the logins go.

One move:

1. the session is stopped cleanly (its page closed, its browser gone),
   its lease kept; its state says ``stopping`` then ``stopped``;
2. its login is saved (``portable.py``), under the lease's fence;
3. the key is handed off in one step (``Store.hand_off``): the lease
   given up, the fence and the send records kept, the state ``moving``;
   ``state_instance`` ``moving`` is published, the local folder removed;
4. a ``create_instance`` for the key is published (header
   ``x-moved-from``); a node with room takes it (not this one: it takes
   no creates), restores the login and is ``ready`` without a QR code.

Commands for the key meanwhile wait (``dispatch.py``): here while it is
stopped and saved, at the router while the state says ``moving``, then
they go to the next owner, where sends wait for ``ready`` as for any
linked session.  A send with an ``id`` is still done at most once: the
records moved with the key.  A save that fails is tried again every few
seconds (the lease is still held: nothing else changes meanwhile).

Only ``ready`` sessions are moved; one showing a QR code or starting is
moved once it is ready (or ends).  Progress is in the heartbeat:
``draining``, ``drain_left`` (sessions still here), ``drain_moving`` (the
key in transit), ``sessions_moved``.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

from . import states as S
from .counters import Counters
from .paths import Paths

log = logging.getLogger(__name__)

RETRY = 3.0  # seconds before a failed save of a moving session is tried again


class Store(Protocol):
    def drain_requested(self) -> bool | None: ...


class Sessions(Protocol):
    def children(self) -> list: ...
    def count(self) -> int: ...
    def move_out(self, key: str, now: float) -> None: ...


class Drain:
    def __init__(self, node_id: str, store: Store, sessions: Sessions, ownership, portable, bus, paths: Paths,
                 counters: Counters, check_every: float, clock: Callable[[], float] = time.monotonic):
        self.node_id = node_id
        self.store = store
        self.sessions = sessions
        self.ownership = ownership
        self.portable = portable
        self.bus = bus
        self.paths = paths
        self.counters = counters
        self.check_every = check_every
        self.clock = clock
        self.draining = False
        self._next_check = 0.0
        self._moving: str | None = None  # the key in transit
        self._retry_at: float | None = None

    def moving_out(self, key: str) -> bool:
        return key == self._moving

    def gauges(self) -> dict:
        return {"draining": int(self.draining), "drain_left": self.sessions.count() if self.draining else 0,
                "drain_moving": self._moving or ""}

    # ------------------------------------------------- a listener of Sessions
    def on_change(self, change: S.Change) -> None:
        if change.key == self._moving and change.new == S.STOPPED:
            self.portable.save(change.key, "move", then=self._saved)
        elif change.key == self._moving and change.new == S.DROPPED:
            self._moving = None  # not ours any more: nothing to hand off

    # ---------------------------------------------------------------- tick
    def tick(self, now: float) -> None:
        if now >= self._next_check:
            self._next_check = now + self.check_every
            asked = self.store.drain_requested()
            if asked is not None and asked != self.draining:
                self.draining = asked
                log.warning("drain: %s", f"moving this node's {self.sessions.count()} sessions to other nodes"
                            if asked else "taking creates again")
        if self._moving is not None:
            if self._retry_at is not None and now >= self._retry_at:
                self._retry_at = None
                self.portable.save(self._moving, "move", then=self._saved)
            return
        if not self.draining:
            return
        ready = sorted(rec.key for rec, _ in self.sessions.children() if rec.state == S.READY)
        if ready:
            self._moving = ready[0]
            log.info("drain: moving %s", self._moving)
            self.sessions.move_out(self._moving, now)

    def _saved(self, key: str, ok: bool) -> None:
        if key != self._moving:
            return
        if not ok:
            log.error("drain: the login of %s could not be saved; trying again in %.0f s", key, RETRY)
            self._retry_at = self.clock() + RETRY
            return
        self.ownership.hand_off(key)
        self.bus.emit("state_instance", {"key": key, "state": "moving", "previous": S.STOPPED})
        self.bus.command("create_instance", {"key": key}, {"x-moved-from": self.node_id})
        self.paths.delete_session(key)
        self.counters.bump("sessions_moved")
        log.info("drain: %s handed off", key)
        self._moving = None
