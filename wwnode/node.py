"""The node: one synchronous loop of named phases over parts with one job
each, wired by ``wiring.build`` and handed in, so tests can hand in fakes.

The parts:

=================  ==========================================================
``Dispatch``       commands: parse, route, claim, carry out here (the desks:
                   ``SessionDesk``, ``SendDesk``, ``ActionDesk``), park
``Sessions``       the session state machine (``Health`` and ``Starts``
                   beside it); every change goes to its listeners
``CreateGate``     whether a create may start a session here; the create
                   consumer kept in step, once after dispatch, once a tick
``Ownership``      leases and fencing tokens, renewal and heartbeat, the
                   Redis writer
``EventBus``       events out; the end of every command (ack, requeue,
                   fail and dead-letter, forward)
``Processes``      the OS: subreaper, reaping, orphans
``Consumer`` /     RabbitMQ (``amqp/``); ``Store``: Redis
``Publisher``
=================  ==========================================================

The parts play the roles ``parts.py`` declares (chores, background work,
listeners, event handlers).  Every part is handed to the node when it is
built; none is patched in afterwards.

The node asks each part for what it needs and hands the answer to the next
(a renewal's lost keys to ``Sessions.drop``).  Desks do act on a session's
record and process (a send written to its pipe, a ping, a kill), but a
session's state changes only in ``Sessions``.

Each turn: handle signals; see to a shutdown; renew leases; connect; wait
(``poll``, at most a quarter second) on the broker's sockets, the sessions'
pipes and the signal pipe, and handle what the sessions wrote; pump the
broker and dispatch the commands it delivered (consumer callbacks only put
them in the inbox); reap ended processes; run the timed rules.  Nothing in
a turn waits on a browser or a session (an exited session whose status is
not there yet is looked at again next turn); the only waits are RabbitMQ's
publisher confirms (a local round trip each, ``PUBLISH_WAIT`` per turn at
most: the rest waits in the outbox) and Redis calls with short timeouts,
skipped entirely while Redis is down.  Connecting to RabbitMQ
happens on a short-lived thread of its own (``amqp.link``).

Signal handlers only record the signal; the loop acts on it.  SIGTERM,
SIGINT or SIGHUP (a closed terminal): stop (consumers first, then the
sessions, ``STOP_TIMEOUT``); a second one: kill the sessions now.  Either
way each session ends ``stopped`` in Redis, its QR code removed, its lease
kept for the node's return.

Exit codes of ``wwnode run``: ``0`` stopped on request; ``1`` an
unexpected error (its traceback is in ``node.log``; the sessions are
killed), but not one a part raises for one session, handling its event or
its change of state: that ends only the session (``guard.py``); ``2`` a
bad setting (nothing was started); ``3`` a live node of the same
``NODE_ID`` runs elsewhere (``twins.py``, checked by ``wiring.build``
before any part is made: nothing was started or read).
"""

from __future__ import annotations

import logging
import select
import signal
import time
from collections import deque
from dataclasses import KW_ONLY, dataclass, field
from typing import Callable, Protocol, cast

from .admission import Admission
from .amqp.consumer import Consumer
from .amqp.publisher import Publisher
from .bus import EventBus
from .config import Config, redact_url
from .counters import Counters
from .creategate import CreateGate
from .dispatch import Dispatch
from .guard import Guard
from .metrics import Readings
from .ownership import Ownership
from .parts import Background, Chore, Handler
from .paths import Paths
from .procs import Processes
from .sends import SendDesk
from .sessions import Sessions
from .storage import Storage
from .stopsignals import STOP_SIGNALS
from .redis_side.store import Store
from .turns import TurnTimes
from .waker import Waker
from .nodeleases import NodeLeases

log = logging.getLogger(__name__)

TURN = 0.25  # longest wait of one loop turn
# Longest a turn waits for publisher confirms; what is left waits in the
# outbox for the next turn (``Publisher.pace``), so leases are renewed and
# the command link pumped however slow the broker's confirms are.
PUBLISH_WAIT = 0.5
EXIT_OK, EXIT_ERROR = 0, 1  # and 2, a bad setting, 3 a twin: ``tools/runnode.py``, before a node exists


class Failover(Protocol):
    def lost(self, key: str, node: str) -> None: ...


class Drain(Protocol):
    def gauges(self) -> dict: ...


@dataclass(eq=False)
class Node(NodeLeases):
    cfg: Config
    _: KW_ONLY
    paths: Paths
    inbox: deque  # deliveries the consumer handed over
    consumer: Consumer
    publisher: Publisher
    store: Store
    ownership: Ownership
    bus: EventBus
    dispatch: Dispatch
    sessions: Sessions
    sends: SendDesk
    handlers: dict[str, Handler]  # session event name -> its one handler (``sessionevents.event_table``)
    guard: Guard  # every handler is called through it: a bug in one ends its session only
    gate: CreateGate  # whether a create may start a session here; the create consumer kept in step
    admission: Admission  # the load figures, for the heartbeat (the gate decides on them)
    processes: Processes
    counters: Counters
    storage: Storage  # whether DATA_DIR takes writes
    turns: TurnTimes = field(default_factory=TurnTimes)  # the loop's own speed, for the heartbeat
    chores: tuple[Chore, ...] = ()  # timed upkeep, each ``tick(now)`` once a turn, in order
    readings: Readings | None = None  # the metrics' view of the node (the last chore; ``metrics_http`` reads it)
    heartbeat_extra: dict = field(default_factory=dict)  # where the metrics are served (``wiring.build``)
    background: tuple[Background, ...] = ()  # work on threads a stop waits for: saving logins, storing inbound media
    failover: Failover | None = None  # FAILOVER=auto: what starts lost keys elsewhere (``lost(key, node)``)
    drain: Drain | None = None  # ``wwnode drain``: its ``gauges()``
    waker: Waker = field(default_factory=Waker)  # cuts the loop's wait short: workers with a result, signals
    clock: Callable[[], float] = time.monotonic
    stopping: bool = field(default=False, init=False)
    started: float = field(default_factory=time.time, init=False)
    _signals: list[int] = field(default_factory=list, init=False)  # received, not yet acted on
    _shutdown_deadline: float | None = field(default=None, init=False)
    _next_lost_scan: float = field(default=0.0, init=False)

    # ============================================================== loop
    def run(self, asked: list[int] | None = None) -> int:
        """Run until stopped; the exit code (see the module docstring).
        ``asked``: where stop signals were recorded while the node was
        being built (``stopsignals.record_early``); the node takes that list
        over, so one that comes before its own handlers is not lost."""
        if asked is not None:
            self._signals = asked
        try:
            self._start()
            while self._turn():
                pass
            self._finish()
            return EXIT_OK
        except Exception:
            log.critical("node %s: unexpected error; killing its sessions and exiting", self.cfg.node_id,
                         exc_info=True)
            self._kill_sessions()
            return EXIT_ERROR

    def _start(self) -> None:
        self._install_signals()
        self.processes.become_subreaper()
        self.processes.kill_orphans(self.paths.sessions, self.cfg.session_module)
        now = self.clock()
        log.info("node %s starting: RabbitMQ %s, Redis %s, page %s, data %s", self.cfg.node_id,
                 redact_url(self.cfg.rabbit_mq_url), redact_url(self.cfg.redis_url), self.cfg.wa_url, self.paths.root)
        for key in self.sessions.restore(now):
            self._claim_restored(key, now)
        self.gate.sample_load(now)  # before consuming: a full node takes no create at all

    def _turn(self) -> bool:
        """One turn of the loop; False once the node has stopped."""
        self.turns.begin()
        self.publisher.pace(PUBLISH_WAIT)
        now = self.clock()
        self._handle_signals(now)
        if self.stopping and not self._see_to_shutdown(now):
            return False

        # Leases first: a node back from a pause must learn what it lost
        # before it reads a word its sessions said meanwhile.
        self._renew_leases(now)
        if not self.stopping:
            self.consumer.connect(now)
        self.publisher.connect(now)
        self._wait_and_handle_io()
        now = self.clock()
        self.consumer.pump(now)
        self.publisher.pump(now)
        self.publisher.drain()
        self._act(now)
        self.turns.end()
        return True

    def _act(self, now: float) -> None:
        """A turn's work on what came in, the time handed in: the commands,
        the sessions that ended, the timed rules, then the turn's one update
        of the create consumer, after all that may change the room (a create
        started, a destroy, an exit, the load read, a parked create carried
        out).  Only then are the creates acknowledged (``creategate.py``)."""
        self._dispatch_commands(now)
        self._reap(now)
        self._tick(now)
        self.gate.update_create_consumer(now)

    def _finish(self) -> None:
        for part in self.background:
            part.close()
        self.publisher.pace(None)  # the last events go out, however long their confirms take
        self.publisher.drain()
        self.store.drop_node()
        self.consumer.close()
        self.publisher.close()
        self.store.close()
        log.info("node %s stopped", self.cfg.node_id)

    # ============================================================ phases
    def _handle_signals(self, now: float) -> None:
        signals, self._signals = self._signals, []
        for signum in signals:
            name = signal.Signals(signum).name
            if not self.stopping:
                log.info("got %s: stopping", name)
                self.stopping = True
                self.gate.close()
            elif self._shutdown_deadline is not None and self._shutdown_deadline > now:
                log.warning("got %s again: killing the sessions now", name)
                self._shutdown_deadline = now

    def _see_to_shutdown(self, now: float) -> bool:
        """While stopping: False once every session is gone."""
        if self._shutdown_deadline is None:
            # First stop taking work: cancelled consumers leave what they had
            # unacked to be redelivered (to us next time, or to another node).
            self.consumer.close()
            self.inbox.clear()  # unacked with the closed connection: redelivered
            self.dispatch.stop()
            self.sessions.shutdown(now)
            self._shutdown_deadline = now + self.cfg.stop_timeout + 5
        if not self.sessions:
            if not any(part.busy() for part in self.background):
                return False
            if now >= self._shutdown_deadline:
                log.error("work on threads (saving logins, storing inbound media) did not end in time; "
                          "stopping without it")
                return False
            return True
        if now >= self._shutdown_deadline:
            log.error("sessions did not stop in time; killing them")
            self._kill_sessions()
            self._shutdown_deadline = now + 5
        return True

    def _wait_and_handle_io(self) -> None:
        poller = select.poll()
        poller.register(self.waker.read_fd, select.POLLIN)
        sock = self.consumer.socket() if self.consumer.up else None
        if sock is not None:
            poller.register(sock.fileno(), select.POLLIN)
        psock = self.publisher.socket() if self.publisher.up else None
        if psock is not None:
            poller.register(psock.fileno(), select.POLLIN)
        by_fd = {}
        for rec, child in self.sessions.children():
            if not child.eof:
                poller.register(child.stdout_fd, select.POLLIN)
                by_fd[child.stdout_fd] = (rec, child)
            if child.wants_write:
                stdin_fd = cast(int, child.stdin_fd)  # wants_write: it is open
                poller.register(stdin_fd, select.POLLOUT)
                by_fd[stdin_fd] = (rec, child)
        if self.publisher.behind() or self.consumer.pending():
            # The last turn left publishes waiting, or an ack's write read
            # deliveries the socket no longer shows: on with them.
            timeout = 0.0
        elif self.consumer.connecting or self.publisher.connecting:
            timeout = 0.02  # a connection is being made: pick it up soon
        else:
            timeout = TURN if sock is not None or not self.consumer.up else 0.05
        polled = time.perf_counter()
        ready = poller.poll(timeout * 1000)
        self.turns.waited(time.perf_counter() - polled)
        # A pause (SIGSTOP, a frozen VM) lands here, in the wait, far more
        # often than anywhere else: a node back from one past its lease
        # renews before it reads a word its sessions said meanwhile, and
        # drops what it lost, so it says nothing of a key run elsewhere now.
        if ready and self.ownership.lapsed(self.clock()):
            self._renew_leases(self.clock())
        for fd, _mask in ready:
            if fd == self.waker.read_fd:
                self.waker.clear()
            elif fd in by_fd:
                rec, child = by_fd[fd]
                if fd == child.stdout_fd:
                    self._session_output(rec, child, self.clock())
                elif rec.child is child:
                    child.flush()

    def _session_output(self, rec, child, now: float) -> None:
        """What a session wrote: each event to the part that acts on it; a
        line outside the protocol ends the session, and so does a part that
        raises on an event (``guard.py``): nothing more the session wrote is
        acted on then."""
        for event in child.read_events():
            handler = self.handlers.get(event["event"])
            if handler is None:
                log.debug("session %s: %s", rec.key, event)
            elif rec.child is child:
                if not self.guard.call(rec.key, f"the event {event['event']}", handler, rec, event, now):
                    self.sessions.contain(rec, now)
        if child.bad_output is not None and not child.killed and rec.child is child:
            self.sessions.bad_output(rec, child.bad_output, now)
        self.sessions.start_waiting(now)  # a session done booting frees a slot

    def _dispatch_commands(self, now: float) -> None:
        """The commands the broker delivered; the creates among them are
        acknowledged at the turn's update of the create consumer."""
        while self.inbox:
            d = self.inbox.popleft()
            if d.generation == self.consumer.generation:  # else its connection is gone: redelivered
                self.dispatch.on_command(d, now)

    def _reap(self, now: float) -> None:
        for rec, child in self.sessions.children():
            code = child.poll()
            if code is None:
                continue  # running, or its status is not there yet: next turn
            self._session_output(rec, child, now)  # what it said last
            if rec.child is child:
                self.sessions.on_exit(rec, code, now)
        self.processes.reap({child.pid for _, child in self.sessions.children()})

    def _tick(self, now: float) -> None:
        self.sessions.tick(now)
        self.sends.tick(now)
        if self.store.retry(now):
            self.ownership.redis_back()
        self.dispatch.retry_parked(now)
        for chore in self.chores:
            chore.tick(now)
        # A restore check collected just now (portable.py) opens its start's
        # gate: the start goes this turn, not at the next one.
        self.sessions.start_waiting(now)
        if self.consumer.is_router and now >= self._next_lost_scan and self.store.up:
            self._next_lost_scan = now + self.cfg.heartbeat_interval
            self._report_lost()

    # ====================================================== timed rules
    def _kill_sessions(self) -> None:
        for _, child in self.sessions.children():
            child.kill()

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self.waker.write_fd)  # a signal also wakes the poll

        def on_signal(signum, frame):  # only record it: the loop acts
            self._signals.append(signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, on_signal)
