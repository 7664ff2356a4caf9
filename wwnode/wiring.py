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
from .calls import CallDesk, CallReply
from .amqp.consumer import Consumer
from .amqp.publisher import Publisher
from .amqp.topology import Delivery
from .bus import EventBus
from .children import Spawner
from .config import Config
from .counters import Counters, Tally
from .creategate import CreateGate
from .dispatch import Dispatch
from .drain import Drain
from .failover import Failover
from .groupdesk import GroupUpdates
from .guard import Guard
from .health import Health
from .logfiles import SessionLogs
from .media.request import MediaLimits
from .media.desk import MediaDesk
from .media.inbound import InboundMedia
from .memory import MemoryLimit, tree_pss_mb
from .metrics import Readings
from .metrics_http import Endpoint, serve
from .node import Node
from .ownership import Leases, Ownership
from .pacing import BootPace, usable_cores
from .pairing import Pairing
from .paths import Paths
from .parts import Chore
from .placement import CreatePriority
from .portable import Portable, Restoring
from .queries import QueryDesk
from .procs import Processes
from .restarts import Restarts
from .sendpace import SendPace
from .sends import SendDesk
from .sessiondesk import SessionDesk
from .sessionevents import event_table
from .sessions import Sessions
from .settingsdesk import SettingsDesk
from .snapshots import Snapshots
from .amqp.spool import Spool
from .starts import Starts
from .templates import ProfileTemplates
from .storage import Storage
from .redis_side.store import Store, Unavailable
from .twins import refuse_twins
from .waker import Waker


# Who hears every change of a session's state (``Sessions.set_state``), in
# this order, and why there: the one list of it.  A part absent from this
# node (no blob store: no portable logins, no drain) is skipped.
LISTENERS = (
    ("portable", "first: a session stopped for good still holds its lease's token, under which its login is "
                 "saved (or its snapshots deleted); the Redis writer gives the lease up"),
    ("drain", "beside portable, before the Redis writer: a moved session's login is saved once it is stopped"),
    ("ownership", "the Redis writer (state, lease given up or let go), before any event: a client that sees an "
                  "event finds Redis agreeing"),
    ("pairing", "Redis too (a pairing code removed once the session leaves qr), before any event"),
    ("bus", "state_instance, once Redis agrees"),
    ("sends", "the desks answer the commands the change ends after it is announced (command_failed "
              "session_failed after state_instance failed), or put them back"),
    ("actions", "as the send desk"),
    ("starts", "a start slot freed, a waiting start forgotten: nothing published"),
    ("tally", "the metrics' counts of restarts and failures: nothing published"),
    ("media", "media sends waiting for a key this node will not run next go back to their queue"),
    ("settings", "a key stopped for good or dropped: its settings are read again (Redis, the profile) at its next "
                 "start; nothing published"),
    ("desk", "last: a destroy is acknowledged once its stopped is in Redis and announced, and every other part "
             "has seen it"),
)


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
                        inbox.append, node_queue_ttl=cfg.node_queue_ttl, bytes_limit=cfg.command_bytes_limit)
    # One blob store (one S3 client) for logins and media alike.
    blobs = open_blob_store(cfg.blob_store_url, paths.root, cfg.blob_store_endpoint)
    return assemble(cfg, paths, inbox=inbox, consumer=consumer, publisher=publisher, store=store, leases=leases,
                    spawner=Spawner(cfg.session_module, sessions_dir=paths.sessions if cfg.warm_starts else None),
                    load=LoadReader(Path(cfg.load_cgroup_root or "/sys/fs/cgroup")), processes=Processes(),
                    storage=storage, snapshots=Snapshots(blobs, secret=cfg.snapshot_secret.encode() or None),
                    blobs=blobs, metrics=serve, templates=profile_templates(cfg, paths))


def profile_templates(cfg: Config, paths: Paths) -> ProfileTemplates | None:
    """New profiles copied from a template (``PROFILE_TEMPLATES``; None:
    off), kept in ``PROFILE_TEMPLATE_DIR`` (empty: DATA_DIR/profile-templates)."""
    if not cfg.profile_templates:
        return None
    root = Path(cfg.profile_template_dir).resolve() if cfg.profile_template_dir else paths.root / "profile-templates"
    return ProfileTemplates(root, cfg.chrome_path, cfg.chromedriver_path, paths.logs / "profile-template.log")


def assemble(cfg: Config, paths: Paths, *, inbox: deque, consumer, publisher, store, leases: Leases, spawner,
             load, processes, clock=time.monotonic, storage: Storage | None = None,
             measure: Callable[[int, float], float] = tree_pss_mb, snapshots: Snapshots | None = None,
             blobs: BlobStore | None = None, templates: ProfileTemplates | None = None,
             metrics: Callable[[Readings, str], Endpoint | None] = lambda readings, addr: None) -> Node:
    """The node's own parts, wired to the edges given (the real ones, or
    fakes in unit tests: the broker, Redis, the OS, the disk's probe, the
    memory measure, the blob store of media, the metrics endpoint, the
    profile templates: none by default).  Each part is handed what it needs when it is made."""
    storage = storage or Storage(paths.probe, cfg.heartbeat_interval)
    waker = Waker()  # the loop's, handed to the parts whose workers wake it
    ownership = Ownership(store, leases, renew_every=renew_every(cfg))
    counters = Counters()
    tally = Tally(clock)
    bus = EventBus(cfg.node_id, publisher, consumer, counters, dead_letter_max_body=cfg.dead_letter_max_body,
                   tally=tally, lapsed=lambda: ownership.lapsed(clock()))
    health = Health(cfg.ping_interval, cfg.ping_timeout, cfg.boot_timeout, counters)
    admission = Admission(cfg.admit_high, cfg.admit_low, cfg.load_window, cfg.max_sessions)
    pace = BootPace(cfg.start_concurrency, usable_cores(load.cpus()), lambda: admission.cpu, cfg.admit_low)
    restoring = Restoring()  # starts waiting for a saved login (portable logins)
    starts = Starts(cfg, paths, spawner, health, pace, gate=restoring.ready_to_start,
                    template=templates.folder if templates is not None else lambda: None)
    starts.prepare()
    restarts = Restarts(cfg.backoff_initial, cfg.backoff_max, cfg.stable_after, cfg.crash_limit, cfg.crash_window,
                        counters)
    # Every session-event handler and state listener is called through it.
    guard = Guard(counters)
    sessions = Sessions(cfg, paths, bus, store, starts, health, restarts, counters, ownership.may_run, storage,
                        guard=guard, bury=processes.bury, slow_boot=pace.forgive)
    desk = SessionDesk(bus, sessions)
    portable = Portable(snapshots, paths, sessions, leases, store, counters, cfg.profile_snapshot_interval, clock,
                        restoring=restoring, wake=waker.wake) if snapshots is not None else None
    settings = SettingsDesk(cfg.send_seen, paths, store, bus, sessions, Unavailable,
                            save_login=portable.save if portable is not None else None)
    # The settings desk needs the sessions, which tell it of each start and
    # of Redis coming back: the one pair of parts that cannot both be made
    # with what they need.
    sessions.before_start, sessions.on_resync = settings.before_start, settings.resync
    starts.settings = settings
    # Paced sends wait unacknowledged: at most half the prefetch, so the
    # other keys' sends always find room.
    sends = SendDesk(cfg.send_hold, bus, store, sessions, Unavailable, tally, settings=settings,
                     pace=SendPace(lambda key: settings.current(key).pacing),
                     paced_limit=max(1, cfg.command_prefetch // 2))
    actions = ActionDesk(cfg.send_hold, bus, sessions)
    # The per-session settings reject calls (``reject_calls``) and answer the
    # caller (``call_reply``) through it.
    calls = CallDesk(bus, actions, rejects=lambda key, call: settings.current(key).reject_calls,
                     rejected=CallReply(publisher, lambda key: settings.current(key).call_reply).send)
    pairing = Pairing(store, bus, sessions)
    if blobs is None:
        blobs = open_blob_store(cfg.blob_store_url, paths.root, cfg.blob_store_endpoint)
    media = MediaDesk(paths, MediaLimits(cfg.media_max_size, cfg.media_fetch_timeout, cfg.media_allow_private_urls),
                      sends.send, bus, blobs, keep_files=cfg.send_hold + cfg.send_timeout + 60,
                      runs_here=lambda key: sessions.get(key) is not None, wake=waker.wake,
                      copies=consumer.hold_copy)
    inbound = InboundMedia(paths, cfg.media_inline_limit, blobs, bus.emit, wake=waker.wake)
    chores: tuple[Chore, ...] = (
        storage, SessionLogs(paths.session_logs, cfg.log_max_bytes, cfg.log_backups, cfg.heartbeat_interval,
                             storage.failed),
        MemoryLimit(cfg.session_memory_limit, cfg.memory_check_interval, sessions, sends, counters, measure),
        actions,  # held actions that waited too long
        media, inbound)
    drain = None
    if portable is not None:  # portable logins, and with them drains
        drain = Drain(cfg.node_id, store, sessions, ownership, portable, bus, paths, counters,
                      renew_every(cfg), clock)
        chores += (portable, drain)
    failover = Failover(bus, cfg.restore_stagger) if cfg.failover == "auto" else None
    if failover is not None:
        chores += (failover,)
    gate = CreateGate(admission, load, sessions, consumer, cfg.load_interval,
                      placement=CreatePriority(cfg.admit_high, cfg.max_sessions), drain=drain)
    # The metrics' view of the node: the last chore of each turn, it
    # publishes what the turn left for the metrics.
    readings = Readings(tally, sessions, admission, counters, leases, store, consumer, publisher,
                        lambda: gate.accepting, clock, proxies=settings.proxy_hosts)
    # The spawner keeps its fork server running (warmstarts.py); the
    # templates part makes a missing template at the first turn.
    chores += (spawner, *((templates,) if templates is not None else ()), readings)
    listeners = {"portable": portable, "drain": drain, "ownership": ownership, "pairing": pairing, "bus": bus,
                 "sends": sends, "actions": actions, "starts": starts, "tally": tally, "media": media,
                 "settings": settings, "desk": desk}
    placed = {name for name, _why in LISTENERS}
    if set(listeners) != placed:  # each listener has its place, and its reason
        raise ValueError(f"LISTENERS and the listeners built disagree on {sorted(set(listeners) ^ placed)}")
    for name, _why in LISTENERS:
        listener = listeners[name]
        if listener is not None:
            sessions.subscribe(listener)
    # A create for a key being stopped waits at most for a stop, then for a
    # lease the stopping node kept (going down) to run out.
    dispatch = Dispatch(cfg.node_id, bus, ownership, sessions, {
        "create_instance": desk.create,
        "destroy_instance": desk.destroy,
        # Every send, with media or not, goes through the media desk, which
        # keeps a key's sends in order, then to the send desk (``sends.send``).
        "send_message": media.send,
        "message_action": actions.take,
        "check_number": actions.take,
        "update_settings": settings.update,
        "call_action": actions.take,
        "chat_action": actions.take,
        "set_presence": actions.take,
        "query": QueryDesk(cfg.query_max_items, bus, actions).take,
        "group_action": actions.take,
    }, Unavailable, may_create=gate.may_create, stop_wait=cfg.stop_timeout + cfg.lease_ttl + 10,
        moving_out=drain.moving_out if drain else (lambda key: False), refuse={"send_message": sends.refuse},
        # A command for a key lost with its node waits for the failover's
        # new owner as a send waits for a session that restarts.
        failover_wait=cfg.send_hold if failover else 0.0,
        failover_due=failover.due if failover else (lambda key: False))
    handlers = event_table(sessions, sends, health, bus, actions, calls, pairing, inbound, GroupUpdates(bus))
    endpoint = metrics(readings, cfg.metrics_addr)  # /metrics and /healthz, from threads reading ``readings``
    # Which nodes share this one's blob store (a drain moves logins only
    # between them; ``wwnode drain`` reads it), and where its metrics are.
    extra = {"blob_store": blob_identity(cfg.blob_store_url, cfg.blob_store_endpoint)}
    if endpoint is not None:
        extra["metrics_addr"] = f"{endpoint.host}:{endpoint.port}"
    return Node(cfg, paths=paths, inbox=inbox, consumer=consumer, publisher=publisher, store=store,
                ownership=ownership, bus=bus, dispatch=dispatch, sessions=sessions, sends=sends, handlers=handlers,
                guard=guard, gate=gate, admission=admission, processes=processes, counters=counters,
                storage=storage, chores=chores, readings=readings, heartbeat_extra=extra,
                background=tuple(part for part in (inbound, portable, spawner, templates) if part is not None),
                failover=failover, drain=drain, waker=waker, clock=clock)


def renew_every(cfg: Config) -> float:
    """How often leases and the heartbeat are renewed."""
    return min(cfg.heartbeat_interval, cfg.lease_ttl / 3)
