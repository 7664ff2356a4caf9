"""The node: one synchronous loop that owns everything.

Each turn of the loop waits (``poll``, at most a quarter second) on the
command connection's socket, the sessions' pipes and a signal pipe, then:
pumps RabbitMQ (commands arrive as callbacks, which only hand them to the
supervisor), reads what sessions said, writes what they are owed, reaps
ended processes, and runs the timed rules (``Supervisor.tick``, admission,
leases, heartbeat).  Nothing in a turn waits on a browser or a session;
the only waits are RabbitMQ's publisher confirms (a local round trip) and
Redis calls with short timeouts, skipped entirely while Redis is down.
Connecting to RabbitMQ, whose handshake can hang on a silent link, happens
on a short-lived thread of its own (``broker._Connector``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import time
import uuid

import orjson
import psutil

from .admission import Admission, LoadReader
from .broker import (DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, ROUTED_QUEUES, Consumer, Delivery, Outgoing, Publisher,
                     node_queue_name)
from .commands import Rejected, parse
from .config import Config, redact_url
from .paths import Paths
from .spool import Spool
from .store import REDIS_ERRORS, Store, Unavailable
from .supervisor import Supervisor

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
TURN = 0.25  # longest wait of one loop turn


class Node:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.paths = Paths(cfg.data_dir)
        self.paths.ensure()
        self.spool = Spool(self.paths.root / "spool" / "events.log", cfg.spool_limit)
        self.publisher = Publisher(cfg.rabbit_mq_url, cfg.amqp_heartbeat, self.spool)
        for routing_key, body in self.spool.recover():
            self.publisher.outbox.append(Outgoing(EVENTS_EXCHANGE, routing_key, body,
                                                  seq=self.spool.add(routing_key, body)))
        self.consumer = Consumer(cfg.rabbit_mq_url, cfg.amqp_heartbeat, cfg.command_prefetch, cfg.node_id,
                                 self._on_command, node_queue_ttl=cfg.node_queue_ttl)
        self.store = Store(cfg.redis_url, cfg.node_id, cfg.qr_ttl, cfg.lease_ttl, cfg.send_dedup_window)
        self.supervisor = Supervisor(cfg, self.paths, self, self.store)
        self.supervisor.may_run = lambda key: key in self.store.tokens
        self.admission = Admission(cfg.admit_high, cfg.admit_low, cfg.load_window, cfg.max_sessions)
        self.load = LoadReader()
        self.stopping = False
        self.started = time.time()
        self._parked: list[tuple[float, Delivery]] = []  # creates waiting for Redis
        self._next_load = 0.0
        self._next_renew = 0.0
        self._next_lost_scan = 0.0
        self.leases_lost = 0  # keys given up because their lease was lost
        self._wake_r, self._wake_w = os.pipe()

    # =========================================================== the Bus
    def emit(self, name: str, body: dict, on_confirmed=None) -> None:
        doc = {**body, "event": name, "node": self.cfg.node_id, "ts": int(time.time() * 1000), "id": uuid.uuid4().hex}
        self.publisher.publish(Outgoing(EVENTS_EXCHANGE, name, orjson.dumps(doc), on_confirmed=on_confirmed))

    def ack(self, d: Delivery) -> None:
        self.consumer.ack(d)

    def requeue(self, d: Delivery) -> None:
        self.consumer.requeue(d)

    def fail(self, d: Delivery, reason: str, detail: str, key: str | None, command_id: str | None) -> None:
        """Failed for good: tell the client, keep the command in the dead
        letter queue, then take it off its queue."""
        body = {"command": d.command, "reason": reason, "detail": detail}
        if key is not None:
            body["key"] = key
        if command_id is not None:
            body["command_id"] = command_id
        log.info("command %s failed: %s (%s)", d.command, reason, detail)
        self.emit("command_failed", body)
        headers = {"x-queue": d.command, "x-reason": reason, "x-detail": detail[:1000], "x-node": self.cfg.node_id}
        self.publisher.publish(Outgoing("", DEAD_LETTER_QUEUE, d.body, headers, mandatory=True,
                                        on_confirmed=lambda: self.consumer.ack(d)))

    # ========================================================== commands
    def _on_command(self, d: Delivery) -> None:
        now = time.monotonic()
        try:
            cmd = parse(d.command, d.body)
        except Rejected as r:
            self.fail(d, r.reason, r.detail, r.key, r.command_id)
            return
        if cmd.name == "create_instance":
            if self.stopping:
                self.consumer.requeue(d)
                return
            self._create(cmd, d, now)
        elif d.queue in ROUTED_QUEUES:
            self._route(cmd, d, now)
        else:
            self._here(cmd, d, now)

    def _here(self, cmd, d: Delivery, now: float) -> None:
        if cmd.name == "destroy_instance":
            self.supervisor.destroy(cmd, d, now)
        else:
            self.supervisor.send(cmd, d, now)

    def _route(self, cmd, d: Delivery, now: float) -> None:
        """As the router: carry out a command for a key of ours, hand it to
        its owner's queue (one hop), or fail it when nobody owns the key."""
        if cmd.key in self.supervisor.sessions:
            self._here(cmd, d, now)
            return
        try:
            owner = self.store.owner_of(cmd.key)
        except Unavailable:
            self._parked.append((now + 1.0, d))  # Redis cannot say now: wait
            return
        if owner is None or owner == self.cfg.node_id:
            self.fail(d, "unknown_instance", f"no node runs {cmd.key}", cmd.key, cmd.command_id)
            return
        headers = {**d.headers, "x-queue": d.command, "x-routed-by": self.cfg.node_id}
        self.publisher.publish(Outgoing(
            "", node_queue_name(owner), d.body, headers, mandatory=True,
            on_confirmed=lambda: self.consumer.ack(d),
            on_unroutable=lambda: self.fail(d, "unknown_instance", f"owner {owner} of {cmd.key} has no queue",
                                            cmd.key, cmd.command_id)))

    def _create(self, cmd, d: Delivery, now: float) -> None:
        if cmd.key in self.supervisor.sessions:
            self.supervisor.create(cmd, d, now)
            return
        claimed = self.store.claim(cmd.key)
        if claimed is None:
            # Redis cannot say who owns the key: wait for it rather than
            # risk running the key twice.
            self._parked.append((now + 1.0, d))
            return
        if not claimed:
            log.info("create %s: owned by another node; nothing to do", cmd.key)
            self.ack(d)
            return
        self.supervisor.create(cmd, d, now)

    def _retry_parked(self, now: float) -> None:
        due = [d for t, d in self._parked if t <= now]
        self._parked = [(t, d) for t, d in self._parked if t > now]
        for d in due:
            self._on_command(d)

    # ============================================================== loop
    def run(self) -> int:
        self._install_signals()
        _become_subreaper()
        kill_orphans(self.paths)
        now = time.monotonic()
        log.info("node %s starting: RabbitMQ %s, Redis %s, page %s, data %s", self.cfg.node_id,
                 redact_url(self.cfg.rabbit_mq_url), redact_url(self.cfg.redis_url), self.cfg.wa_url, self.paths.root)
        for key in self.supervisor.restore(now):
            if self.store.claim(key) is False:
                log.warning("session %s is owned by another node now; not restoring it", key)
                self.supervisor.drop(key, now)
        self._sample_load(now)  # before consuming: a full node takes no create at all
        shutdown_deadline = None
        while True:
            now = time.monotonic()
            if self.stopping and shutdown_deadline is None:
                shutdown_deadline = self._begin_shutdown(now)
            if self.stopping and not self.supervisor.sessions:
                break
            if shutdown_deadline is not None and now > shutdown_deadline:
                log.error("sessions did not stop in time; killing them")
                for _, child in self.supervisor.children():
                    child.kill()
                shutdown_deadline = now + 5
            # Leases first: a node back from a pause must learn what it lost
            # before it reads a word its sessions said meanwhile.
            self._leases(now)
            if not self.stopping:
                self.consumer.connect(now)
            self.publisher.connect(now)
            self._wait_and_handle_io(now)
            now = time.monotonic()
            self.consumer.pump(now)
            self.publisher.pump(now)
            self.publisher.drain()
            self._reap(now)
            self.supervisor.tick(now)
            if self.store.retry(now):
                self._next_renew = 0.0  # Redis is back: renew at once
            self._retry_parked(now)
            self._timed(now)
        self.publisher.drain()
        self.store.drop_node()
        self.consumer.close()
        self.publisher.close()
        self.store.close()
        log.info("node %s stopped", self.cfg.node_id)
        return 0

    def _wait_and_handle_io(self, now: float) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        sock = self.consumer.socket() if self.consumer.up else None
        if sock is not None:
            poller.register(sock.fileno(), select.POLLIN)
        psock = self.publisher.socket() if self.publisher.up else None
        if psock is not None:
            poller.register(psock.fileno(), select.POLLIN)
        by_fd = {}
        for s, child in self.supervisor.children():
            if not child.eof:
                poller.register(child.stdout_fd, select.POLLIN)
                by_fd[child.stdout_fd] = (s, child)
            if child.wants_write:
                poller.register(child.stdin_fd, select.POLLOUT)
                by_fd[child.stdin_fd] = (s, child)
        if self.consumer.connecting or self.publisher.connecting:
            timeout = 0.02  # a connection is being made: pick it up soon
        else:
            timeout = TURN if sock is not None or not self.consumer.up else 0.05
        for fd, mask in poller.poll(timeout * 1000):
            if fd == self._wake_r:
                os.read(self._wake_r, 512)
            elif fd in by_fd:
                s, child = by_fd[fd]
                if fd == child.stdout_fd:
                    events = child.read_events()
                    if events:
                        self.supervisor.on_events(s, events, time.monotonic())
                elif s.child is child:
                    child.flush()

    def _reap(self, now: float) -> None:
        for s, child in self.supervisor.children():
            code = child.poll()
            if code is None and not child.eof:
                continue
            if code is None:
                try:
                    code = child.popen.wait(timeout=0.5)  # its stdout closed: it is exiting
                except subprocess.TimeoutExpired:
                    continue  # check again next turn
            events = child.read_events()  # what it said last
            if events:
                self.supervisor.on_events(s, events, now)
            if s.child is child:
                self.supervisor.on_exit(s, code, now)
        for child in list(self.supervisor.graveyard):
            if child.poll() is not None:
                child.close()
                self.supervisor.graveyard.remove(child)
        _reap_orphans({child.pid for _, child in self.supervisor.children()})

    def _timed(self, now: float) -> None:
        if now >= self._next_load:
            self._sample_load(now)
        if self.consumer.is_router and now >= self._next_lost_scan and self.store.up:
            self._next_lost_scan = now + self.cfg.heartbeat_interval
            self._report_lost()

    def _leases(self, now: float) -> None:
        if now < self._next_renew:
            return
        self._next_renew = now + min(self.cfg.heartbeat_interval, self.cfg.lease_ttl / 3)
        lost = self.store.renew(now, self.heartbeat())
        if lost is None:
            if self.store.tokens and now > self.store.leases_valid_until:
                # Redis has been out of reach for a whole lease: another node
                # may run our keys by now, so ours must stop.
                log.error("leases could not be renewed for %.0f s; stopping this node's sessions",
                          self.cfg.lease_ttl)
                lost = list(self.store.tokens)
                self.store.tokens.clear()
            else:
                return
        for key in lost:
            self.leases_lost += 1
            self.supervisor.drop(key, now)
        if self.store.forgotten:
            # Redis came back, maybe restarted empty: with the leases taken
            # back, write again what it should hold.
            self.store.forgotten = False
            self.supervisor.resync()
        # Sessions restored while Redis was away still need their lease.
        for key, s in list(self.supervisor.sessions.items()):
            if key not in self.store.tokens and s.child is None:
                if self.store.claim(key) is False:
                    log.warning("session %s is owned by another node now; not restoring it", key)
                    self.supervisor.drop(key, now)

    def _report_lost(self) -> None:
        """As the router: sessions whose node died or was cut off."""
        try:
            lost = self.store.find_lost()
        except REDIS_ERRORS as e:
            log.warning("could not look for lost sessions: %s", e)
            return
        for item in lost:
            log.warning("session %s was lost with node %s", item["key"], item["node"])
            self.emit("state_instance", {"key": item["key"], "state": "lost", "previous": item["previous"],
                                         "owner": item["node"]})
            self.emit("disconnected_instance", {"key": item["key"], "reason": "node_lost"})

    def _sample_load(self, now: float) -> None:
        self._next_load = now + self.cfg.load_interval
        was = self.admission.accepting
        accepting = self.admission.update(self.load.read(), self.supervisor.count())
        if accepting != was:
            log.warning("admission: %s", "taking new sessions again" if accepting
                        else f"no new sessions: {self.admission.reason}")
        self.consumer.set_accepting_creates(accepting and not self.stopping)

    def heartbeat(self) -> dict:
        return {
            "node": self.cfg.node_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "sessions": self.supervisor.count(),
            "accepting": int(self.admission.accepting and not self.stopping),
            "router": int(self.consumer.is_router),
            "cpu": round(self.admission.cpu, 1),
            "mem": round(self.admission.mem, 1),
            "started": int(self.started * 1000),
            "ts": int(time.time() * 1000),
            # Counters since the node started, so faults are seen without
            # reading its log.
            "command_link_losses": self.consumer.losses,
            "consumers_cancelled": self.consumer.cancels,
            "publishing_blocked": self.publisher.blocks,
            "leases_lost": self.leases_lost,
        }

    # ========================================================== shutdown
    def _install_signals(self) -> None:
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)

        def on_signal(signum, frame):
            if not self.stopping:
                log.info("got %s: stopping", signal.Signals(signum).name)
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _begin_shutdown(self, now: float) -> float:
        # First stop taking work: cancelled consumers leave what they had
        # unacked to be redelivered (to us next time, or to another node).
        self.consumer.close()
        self._parked.clear()  # unacked with the closed connection: redelivered
        self.supervisor.shutdown(now)
        return now + self.cfg.stop_timeout + 5


def _become_subreaper() -> None:
    """Adopt the orphans of our sessions (Chrome's helpers) so they are
    reaped here, not left as zombies where PID 1 does not reap."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    except OSError as e:
        log.debug("no subreaper: %s", e)


def _reap_orphans(session_pids: set[int]) -> None:
    """Collect adopted orphans that ended.  Our sessions' own exit statuses
    are left for their Popen objects: we only peek (WNOWAIT) at them."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in session_pids:
            return
        try:
            os.waitpid(info.si_pid, os.WNOHANG)
        except ChildProcessError:
            return


def kill_orphans(paths: Paths) -> int:
    """Kill browsers and session processes left on our profiles by an
    earlier node that died without its children (they should die with it;
    this is the belt to those braces)."""
    marker = str(paths.sessions) + os.sep
    killed = 0
    for proc in psutil.process_iter(["cmdline", "pid"]):
        if proc.info["pid"] == os.getpid():
            continue
        cmdline = proc.info["cmdline"] or []
        if any(marker in arg for arg in cmdline):
            try:
                proc.kill()
                killed += 1
            except psutil.Error:
                pass
    if killed:
        log.warning("killed %d processes left over on this node's profiles", killed)
    return killed
