"""The node put together from its real parts (``node.py`` says what each
does).  Tests build a node of their own from fakes instead."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Callable

from .admission import Admission, LoadReader
from .amqp.consumer import Consumer
from .amqp.publisher import Publisher
from .amqp.topology import Delivery
from .bus import EventBus
from .children import Spawner
from .config import Config
from .counters import Counters
from .dispatch import Dispatch
from .health import Health
from .logfiles import SessionLogs
from .memory import MemoryLimit, tree_pss_mb
from .node import Node
from .ownership import Leases, Ownership
from .paths import Paths
from .procs import Processes
from .restarts import Restarts
from .sends import SendDesk
from .sessions import Sessions
from .spool import Spool
from .starts import Starts
from .storage import Storage
from .store import Store, Unavailable
from .twins import refuse_twins


def build(cfg: Config, paths: Paths) -> Node:
    """The node with its real parts; :class:`~twins.TwinRunning` if a live
    node of the same name runs elsewhere."""
    leases = Leases(cfg.lease_ttl)
    store = Store(cfg.redis_url, cfg.node_id, cfg.qr_ttl, cfg.lease_ttl, cfg.send_dedup_window,
                  token_of=leases.token_of, sentinels=cfg.redis_sentinels, master_name=cfg.redis_master_name,
                  replica_wait=cfg.redis_replica_wait)
    # First: a twin on the same DATA_DIR would have its spool read and
    # emptied by the publisher below.
    refuse_twins(store, cfg.node_id, watch=2 * renew_every(cfg) + 1)
    # The publisher's outbox queues again, first, what the last run left
    # unconfirmed in the spool.
    storage = Storage(paths.probe, cfg.heartbeat_interval)
    publisher = Publisher(cfg.rabbit_mq_url, cfg.amqp_heartbeat,
                          Spool(paths.root / "spool" / "events.log", cfg.spool_limit, storage))
    storage.on_recovery(publisher.outbox.rejournal)  # events that went out without their line
    inbox: deque[Delivery] = deque()
    consumer = Consumer(cfg.rabbit_mq_url, cfg.amqp_heartbeat, cfg.command_prefetch, cfg.node_id,
                        inbox.append, node_queue_ttl=cfg.node_queue_ttl)
    return assemble(cfg, paths, inbox=inbox, consumer=consumer, publisher=publisher, store=store, leases=leases,
                    spawner=Spawner(cfg.session_module),
                    load=LoadReader(Path(cfg.load_cgroup_root or "/sys/fs/cgroup")), processes=Processes(),
                    storage=storage)


def assemble(cfg: Config, paths: Paths, *, inbox: deque, consumer, publisher, store, leases: Leases, spawner,
             load, processes, clock=time.monotonic, storage: Storage | None = None,
             measure: Callable[[int, float], float] = tree_pss_mb) -> Node:
    """The node's own parts, wired to the edges given (the real ones, or
    fakes in unit tests: the broker, Redis, the OS, the disk's probe, the
    memory measure)."""
    storage = storage or Storage(paths.probe, cfg.heartbeat_interval)
    ownership = Ownership(store, leases, renew_every=renew_every(cfg))
    counters = Counters()
    bus = EventBus(cfg.node_id, publisher, consumer, counters, dead_letter_max_body=cfg.dead_letter_max_body)
    health = Health(cfg.ping_interval, cfg.ping_timeout, cfg.boot_timeout, counters)
    starts = Starts(cfg, paths, spawner, health)
    restarts = Restarts(cfg.backoff_initial, cfg.backoff_max, cfg.stable_after, cfg.crash_limit, cfg.crash_window,
                        counters)
    sessions = Sessions(cfg, paths, bus, store, starts, health, restarts, counters, ownership.may_run, storage)
    sends = SendDesk(cfg.send_hold, bus, store, sessions, Unavailable)
    chores = (storage, SessionLogs(paths.session_logs, cfg.log_max_bytes, cfg.log_backups, cfg.heartbeat_interval,
                                   storage.failed),
              MemoryLimit(cfg.session_memory_limit, cfg.memory_check_interval, sessions, sends, counters, measure))
    # Redis first: a client that sees the event finds Redis agreeing.
    for listener in (ownership.on_change, bus.on_change, sends.on_change, starts.on_change):
        sessions.subscribe(listener)
    # A create for a key being stopped waits at most for a stop, then for a
    # lease the stopping node kept (going down) to run out.
    dispatch = Dispatch(cfg.node_id, bus, ownership, sessions, {
        "create_instance": sessions.create,
        "destroy_instance": sessions.destroy,
        "send_message": sends.send,
    }, Unavailable, stop_wait=cfg.stop_timeout + cfg.lease_ttl + 10)
    handlers = {**sessions.handlers(), **sends.handlers(), **health.handlers(), **bus.handlers()}
    node = Node(cfg, paths=paths, inbox=inbox, consumer=consumer, publisher=publisher, store=store,
                ownership=ownership, bus=bus, dispatch=dispatch, sessions=sessions, sends=sends, handlers=handlers,
                admission=Admission(cfg.admit_high, cfg.admit_low, cfg.load_window, cfg.max_sessions),
                load=load, processes=processes, counters=counters, storage=storage, chores=chores, clock=clock)
    dispatch.has_room = node.has_room  # the cap and admission, asked at each create
    return node


def renew_every(cfg: Config) -> float:
    """How often leases and the heartbeat are renewed."""
    return min(cfg.heartbeat_interval, cfg.lease_ttl / 3)
