"""``FAILOVER=auto``: the keys of a node that lost its leases are started on
other nodes, from their saved logins, by the fleet itself.

The router finds lost keys (``Store.find_lost``: a state that outlived its
owner's lease, each reported once) and publishes ``state_instance`` ``lost``
for each, as with ``manual``.  With ``auto`` it then publishes, for each, a
``create_instance`` of its own (header ``x-failover-from``: the lost node),
one every ``RESTORE_STAGGER`` seconds, so a dead node's hundred sessions do
not boot at once on the survivors.  Those creates are ordinary: the node
with room takes each (admission and ``MAX_SESSIONS`` hold), restores the
key's newest snapshot, and its ``state_instance`` events (``starting``,
then ``ready``), which name their ``node``, tell where the key went.  A
create waiting for room waits in the queue like any other.

Commands for a lost key (a send published while its node was lost) wait
for its next owner rather than fail ``unknown_instance`` (``dispatch.py``):
while its create is still to be published here (``due``), and then for a
while.

The limit: the creates wait in the router's memory until published; a
router that dies in between leaves those keys reported lost and not
started (a client's create starts them, as with ``manual``).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)


class Bus(Protocol):
    def command(self, queue: str, body: dict, headers: dict) -> None: ...


class Failover:
    def __init__(self, bus: Bus, stagger: float):
        self.bus = bus
        self.stagger = stagger
        self._due: deque[tuple[str, str]] = deque()  # (key, node it was lost with)
        self._keys: set[str] = set()  # the keys in ``_due``
        self._next_at = 0.0

    def lost(self, key: str, node: str) -> None:
        if key not in self._keys:
            self._due.append((key, node))
            self._keys.add(key)

    def due(self, key: str) -> bool:
        """Whether the key was found lost here and its create is still to
        be published."""
        return key in self._keys

    def tick(self, now: float) -> None:
        if not self._due or now < self._next_at:
            return
        key, node = self._due.popleft()
        self._keys.discard(key)
        log.warning("failover: starting %s, lost with %s, on another node", key, node)
        self.bus.command("create_instance", {"key": key}, {"x-failover-from": node})
        self._next_at = now + self.stagger
