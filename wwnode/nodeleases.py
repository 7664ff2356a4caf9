"""The node's leases and heartbeat: renewed together, keys lost dropped, the sessions of dead nodes reported.

Part of :class:`~wwnode.node.Node` (a base class of it: the same parts).
The heartbeat is the hash ``nodes:{node}`` (docs/architecture.md, "Architecture", lists
its fields); ``ownership.py`` renews the leases with it, and the router
scans for the sessions whose node died (``_report_lost``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

from .redis_side.conn import REDIS_ERRORS

if TYPE_CHECKING:  # only for the annotations: node.py imports this module
    from .admission import Admission
    from .amqp.consumer import Consumer
    from .amqp.publisher import Publisher
    from .bus import EventBus
    from .config import Config
    from .counters import Counters
    from .creategate import CreateGate
    from .node import Drain, Failover
    from .ownership import Ownership
    from .procs import Processes
    from .redis_side.store import Store
    from .sessions import Sessions
    from .storage import Storage
    from .turns import TurnTimes

log = logging.getLogger(__name__)


class NodeLeases:
    """The leases, the heartbeat and the lost scan of :class:`Node`."""

    # What it uses of Node, declared for the type checker: annotations only
    # (Node, a dataclass, sets them), so nothing here shadows its fields.
    cfg: Config
    consumer: Consumer
    publisher: Publisher
    store: Store
    ownership: Ownership
    bus: EventBus
    sessions: Sessions
    gate: CreateGate
    admission: Admission
    processes: Processes
    counters: Counters
    storage: Storage
    turns: TurnTimes
    heartbeat_extra: dict
    failover: Failover | None
    drain: Drain | None
    started: float

    def _renew_leases(self, now: float) -> None:
        renewal = self.ownership.renew(now, self.heartbeat)
        if renewal is None:
            return
        for key in renewal.lost:
            self.counters.bump("leases_lost")
            self._drop(key, now)
        self.bus.settle(renewal.lost)
        if renewal.resync:
            # Redis came back, maybe restarted empty: with the leases taken
            # back, write again what it should hold.
            self.sessions.resync()
        # Sessions restored while Redis was away still need their lease.
        for key in self.sessions.waiting_for_lease():
            self._claim_restored(key, now)

    def _claim_restored(self, key: str, now: float) -> None:
        if self.ownership.claim(key) is False:
            log.warning("session %s is owned by another node now; not restoring it", key)
            self._drop(key, now)

    def _drop(self, key: str, now: float) -> None:
        child = self.sessions.drop(key, now)
        if child is not None:
            self.processes.bury(child)

    def _report_lost(self) -> None:
        """As the router: sessions whose node died or was cut off."""
        try:
            lost = self.ownership.find_lost()
        except REDIS_ERRORS as e:
            log.warning("could not look for lost sessions: %s", e)
            return
        self.counters.bump("lost_scans")
        for item in lost:
            log.warning("session %s was lost with node %s", item["key"], item["node"])
            self.bus.emit("state_instance", {"key": item["key"], "state": "lost", "previous": item["previous"],
                                             "owner": item["node"]})
            self.bus.emit("disconnected_instance", {"key": item["key"], "reason": "node_lost"})
            if self.failover is not None:
                self.failover.lost(item["key"], item["node"])

    def heartbeat(self) -> dict:
        """The node's hash ``nodes:{node}``: who it is, its load, and its
        counters (see docs/architecture.md for the names)."""
        doc = {
            "node": self.cfg.node_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "sessions": self.sessions.count(),
            "accepting": int(self.gate.accepting),
            "create_priority": self.consumer.create_priority,
            "create_prefetch": self.consumer.create_prefetch,
            "router": int(self.consumer.is_router),
            "cpu": round(self.admission.cpu, 1),
            "mem": round(self.admission.mem, 1),
            "started": int(self.started * 1000),
            "ts": int(time.time() * 1000),
            "redis_up": int(self.store.up),
            "redis_outages": self.store.outages,
            "outbox": len(self.publisher.outbox),
            "command_link_losses": self.consumer.losses,
            "consumers_cancelled": self.consumer.cancels,
            "publishing_blocked": self.publisher.blocks,
            "max_sessions": self.cfg.max_sessions,  # 0: no cap (``wwnode capacity`` reads it)
            **self.heartbeat_extra,
        }
        doc.update(self.storage.gauges())
        if self.drain is not None:
            doc.update(self.drain.gauges())
        doc.update({f"sessions_{state}": n for state, n in self.sessions.count_by_state().items()})
        for name in ("crashes", "restarts", "boot_timeouts", "health_kills", "bad_events", "commands_failed",
                     "leases_lost", "internal_errors"):
            doc[name] = self.counters.get(name)
        doc.update(self.counters.snapshot())
        doc.update(self.turns.report())
        return doc
