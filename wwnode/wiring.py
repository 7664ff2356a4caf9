"""The node put together from its real parts (``node.py`` says what each
does).  Tests build a node of their own from fakes instead."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Callable

from .actions import ActionDesk
from .admission import Admission, LoadReader
from .blobstore import BlobStore, open_blob_store
from .blobstore import identity as blob_identity
from .amqp.consumer import Consumer
from .amqp.publisher import Publisher
from .amqp.topology import Delivery
from .bus import EventBus
from .children import Spawner
from .config import Config
from .counters import Counters
from .dispatch import Dispatch
from .drain import Drain
from .failover import Failover
from .groupdesk import GroupUpdates
from .guard import Guard
from .health import Health
from .logfiles import SessionLogs
from .media import MediaLimits
from .mediadesk import MediaDesk
from .mediain import InboundMedia
from .memory import MemoryLimit, tree_pss_mb
from .metrics import Readings, Tally
from .metrics_http import serve
from .node import Node
from .ownership import Leases, Ownership
from .pacing import BootPace, usable_cores
from .pairing import Pairing
from .paths import Paths
from .placement import CreatePriority
from .queries import QueryDesk
from .portable import Portable
from .procs import Processes
from .restarts import Restarts
from .sends import SendDesk
from .sessionevents import event_table
from .sessions import Sessions
from .snapshots import Snapshots
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
    node = assemble(cfg, paths, inbox=inbox, consumer=consumer, publisher=publisher, store=store, leases=leases,
                    spawner=Spawner(cfg.session_module),
                    load=LoadReader(Path(cfg.load_cgroup_root or "/sys/fs/cgroup")), processes=Processes(),
                    storage=storage,
                    snapshots=Snapshots(open_blob_store(cfg.blob_store_url, paths.root, cfg.blob_store_endpoint),
                                        secret=cfg.snapshot_secret.encode() or None))
    # Which nodes share this one's blob store (a drain moves logins only
    # between them; ``wwnode drain`` reads it).
    node.heartbeat_extra["blob_store"] = blob_identity(cfg.blob_store_url, cfg.blob_store_endpoint)
    # /metrics and /healthz, from threads that read what the loop publishes.
    endpoint = serve(node.readings, cfg.metrics_addr)
    if endpoint is not None:
        node.heartbeat_extra["metrics_addr"] = f"{endpoint.host}:{endpoint.port}"
    return node


def assemble(cfg: Config, paths: Paths, *, inbox: deque, consumer, publisher, store, leases: Leases, spawner,
             load, processes, clock=time.monotonic, storage: Storage | None = None,
             measure: Callable[[int, float], float] = tree_pss_mb, snapshots: Snapshots | None = None,
             blobs: BlobStore | None = None) -> Node:
    """The node's own parts, wired to the edges given (the real ones, or
    fakes in unit tests: the broker, Redis, the OS, the disk's probe, the
    memory measure, the blob store of media)."""
    storage = storage or Storage(paths.probe, cfg.heartbeat_interval)
    ownership = Ownership(store, leases, renew_every=renew_every(cfg))
    counters = Counters()
    tally = Tally(clock)
    bus = EventBus(cfg.node_id, publisher, consumer, counters, dead_letter_max_body=cfg.dead_letter_max_body,
                   tally=tally)
    health = Health(cfg.ping_interval, cfg.ping_timeout, cfg.boot_timeout, counters)
    admission = Admission(cfg.admit_high, cfg.admit_low, cfg.load_window, cfg.max_sessions)
    pace = BootPace(cfg.start_concurrency, usable_cores(load.cpus()), lambda: admission.cpu, cfg.admit_low)
    starts = Starts(cfg, paths, spawner, health, pace)
    starts.prepare()
    restarts = Restarts(cfg.backoff_initial, cfg.backoff_max, cfg.stable_after, cfg.crash_limit, cfg.crash_window,
                        counters)
    # Every session-event handler and state listener is called through it.
    guard = Guard(counters)
    sessions = Sessions(cfg, paths, bus, store, starts, health, restarts, counters, ownership.may_run, storage,
                        guard=guard, bury=processes.bury, slow_boot=pace.forgive)
    sends = SendDesk(cfg.send_hold, bus, store, sessions, Unavailable, tally)
    actions = ActionDesk(cfg.send_hold, bus, sessions)
    pairing = Pairing(store, bus, sessions)
    if blobs is None:
        blobs = open_blob_store(cfg.blob_store_url, paths.root, cfg.blob_store_endpoint)
    media = MediaDesk(paths, MediaLimits(cfg.media_max_size, cfg.media_fetch_timeout, cfg.media_allow_private_urls),
                      sends.send, bus, blobs, keep_files=cfg.send_hold + cfg.send_timeout + 60,
                      runs_here=lambda key: sessions.get(key) is not None)
    inbound = InboundMedia(paths, cfg.media_inline_limit, blobs, bus.emit)
    # The metrics' view of the node (the last chore of each turn).
    readings = Readings(tally, sessions, admission, counters, leases, store, consumer, publisher, clock)
    chores = (storage, SessionLogs(paths.session_logs, cfg.log_max_bytes, cfg.log_backups, cfg.heartbeat_interval,
                                   storage.failed),
              MemoryLimit(cfg.session_memory_limit, cfg.memory_check_interval, sessions, sends, counters, measure),
              actions,  # held actions that waited too long
              media, inbound)
    # Portable logins (when the node has a blob store) first: a session
    # stopped for good still holds its lease's token then.
    portable = None
    if snapshots is not None:
        portable = Portable(snapshots, paths, sessions, leases, store, counters, cfg.profile_snapshot_interval,
                            clock)
        sessions.subscribe(portable.on_change)
        starts.gate = portable.ready_to_start
        chores += (portable,)
    drain = None
    if portable is not None:
        drain = Drain(cfg.node_id, store, sessions, ownership, portable, bus, paths, counters,
                      renew_every(cfg), clock)
        sessions.subscribe(drain.on_change)
        chores += (drain,)
    failover = Failover(bus, cfg.restore_stagger) if cfg.failover == "auto" else None
    if failover is not None:
        chores += (failover,)
    chores += (readings,)  # last: it publishes what the turn left for the metrics
    # Redis first: a client that sees the event finds Redis agreeing.
    for listener in (ownership.on_change, pairing.on_change, bus.on_change, sends.on_change, actions.on_change,
                     starts.on_change, tally.on_change, media.on_change):
        sessions.subscribe(listener)
    # A create for a key being stopped waits at most for a stop, then for a
    # lease the stopping node kept (going down) to run out.
    dispatch = Dispatch(cfg.node_id, bus, ownership, sessions, {
        "create_instance": sessions.create,
        "destroy_instance": sessions.destroy,
        "send_message": media.send,
        "message_action": actions.take,
        "check_number": actions.take,
        "query": QueryDesk(cfg.query_max_items, bus, actions).take,
        "group_action": actions.take,
    }, Unavailable, stop_wait=cfg.stop_timeout + cfg.lease_ttl + 10,
        moving_out=drain.moving_out if drain else (lambda key: False), refuse={"send_message": sends.refuse})
    handlers = event_table(sessions.handlers(), sends.handlers(), health.handlers(), bus.handlers(),
                           actions.handlers(), pairing.handlers(), inbound.handlers(), GroupUpdates(bus).handlers())
    node = Node(cfg, paths=paths, inbox=inbox, consumer=consumer, publisher=publisher, store=store,
                ownership=ownership, bus=bus, dispatch=dispatch, sessions=sessions, sends=sends, handlers=handlers,
                guard=guard, admission=admission,
                load=load, processes=processes, counters=counters, storage=storage, chores=chores, clock=clock,
                placement=CreatePriority(cfg.admit_high, cfg.max_sessions),
                background=(inbound, portable) if portable else (inbound,), failover=failover, drain=drain)
    dispatch.has_room = node.has_room  # the cap and admission, asked at each create
    # The session a create started counts before its ack frees the create
    # slot (placement.py).
    consumer.before_create_ack = node.has_room
    node.readings = readings  # for the metrics endpoint (``build``) and tests
    media.wake = node.wake  # a fetched media file is handed on at once
    inbound.wake = node.wake  # a stored inbound file's message goes out at once
    if portable is not None:
        portable.wake = node.wake  # a start waiting for its restore check goes at once
    return node


def renew_every(cfg: Config) -> float:
    """How often leases and the heartbeat are renewed."""
    return min(cfg.heartbeat_interval, cfg.lease_ttl / 3)
