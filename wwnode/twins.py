"""Two nodes under one ``NODE_ID`` (a cloned machine, a copied ``.env``;
the default is the host name) would share a queue, a heartbeat and every
lease: the second would take the first's keys over and kill its linked
sessions.  So a node looks, before it touches anything, for a *live* node of
its name, and refuses to start while there is one.

What the last node of our name left is its heartbeat hash ``nodes:{node}``
(host, pid, start time, refreshed every renewal, gone ``LEASE_TTL`` after
the last).  It is a live twin when:

- it names this host and a process that still runs a node (not ours: the
  node that wrote it and this one can be the same pid only after a restart,
  in a container where the node is always pid 1);
- it names another host and is refreshed while we watch (two renewals):
  a heartbeat left by a node that died stays, unchanged, until it expires.

:func:`find_twin` touches neither Redis nor the OS itself: what it reads,
how it tells a pid runs a node, and time (``sleep``, ``clock``) are handed
in.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Protocol

import psutil

from .redis_side.store import Unavailable

log = logging.getLogger(__name__)


class Store(Protocol):
    def heartbeat_of(self, node: str) -> dict: ...


EXIT_TWIN = 3  # ``wwnode run``'s exit code when a twin runs


class TwinRunning(Exception):
    """A live node of this node's name runs elsewhere: this one must not start."""

    def __init__(self, node_id: str, heartbeat: dict):
        super().__init__(f"node {node_id} is already running ({describe(heartbeat)}); not starting a second "
                         f"one: give this node another NODE_ID")
        self.heartbeat = heartbeat


def refuse_twins(store: Store, node_id: str, watch: float) -> None:
    """Raise :class:`TwinRunning` if a live node named ``node_id`` other
    than this process runs.  When Redis cannot say, the node starts, and
    says it could not check."""
    try:
        twin = find_twin(lambda: store.heartbeat_of(node_id), socket.gethostname(), os.getpid(), watch)
    except Unavailable as e:
        log.warning("could not look for another node named %s (Redis: %s); starting", node_id, e)
        return
    if twin is not None:
        raise TwinRunning(node_id, twin)


# A node upgraded in place may still see one of the release before: both
# spellings of the command line's module are a node.
NODE_MODULES = ("wwnode.tools.cli", "wwnode.cli")


def runs_a_node(pid: int) -> bool:
    """Whether ``pid`` runs ``wwnode run`` (the ``wwnode`` script,
    ``python -m wwnode run``, ``python -m wwnode.tools.cli run``, or
    ``python -m wwnode.cli run`` for a node of a release from before the
    command line moved to ``wwnode/tools/``) on this host."""
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return "run" in cmdline and any(arg in NODE_MODULES or os.path.basename(arg) == "wwnode" for arg in cmdline)


def find_twin(read: Callable[[], dict], host: str, pid: int, watch: float, *,
              is_node: Callable[[int], bool] | None = None, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> dict | None:
    """The heartbeat of a live node of our name, or None.  ``read`` returns
    the heartbeat hash (empty when there is none); ``watch``: how long a
    heartbeat from another host is watched for a renewal; ``is_node``:
    whether a pid of this host runs a node (:func:`runs_a_node`)."""
    seen = read()
    if not seen:
        return None
    if seen.get("host") == host:
        other = int(seen.get("pid") or 0)
        return seen if other and other != pid and (is_node or runs_a_node)(other) else None
    deadline = clock() + watch
    while clock() < deadline:
        sleep(min(0.5, watch))
        now = read()
        if not now:
            return None  # it expired: its node is gone
        if now.get("ts") != seen.get("ts") or now.get("started") != seen.get("started"):
            return now  # renewed while we watched: alive
    return None


def describe(heartbeat: dict) -> str:
    started = int(heartbeat.get("started") or 0) / 1000
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if started else "an unknown time"
    return f"host {heartbeat.get('host', '?')}, pid {heartbeat.get('pid', '?')}, started {when}"
