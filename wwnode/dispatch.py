"""Command dispatch: from a delivery to the part that carries it out.

Each delivery is parsed (``commands.parse``, with the command table), then:

- a create (not routed): put back in its queue when the node has no room
  (``CreateGate.may_create``, asked at this very moment, so no burst passes
  the cap; the consumer puts it back only once the node has cancelled its
  create consumer, and the create waits for a node with room); else
  claimed in Redis first (one owner per key) and carried out by the session
  desk, which says whether the key's session runs here: if not, the claim
  is given back.  A key
  being stopped, here or on another node (its state says ``stopping`` or
  ``stopped`` while the lease is still held), *waits* for the stop and is
  then claimed and started like any first create; past ``stop_wait``
  seconds it fails ``instance_busy`` rather than wait for ever.  A key
  that runs already, here or on another node, *settles* first: the create
  is held ``settle`` seconds and looked at again, and acknowledged only if
  the key still runs (see ``_settled``: a destroy published just before it
  may come after it);
- a routed command, as the fleet's router (``send_message``,
  ``destroy_instance``, ``wa.reroute``): carried out here for a key of
  ours, handed to the owner's queue (one hop), or failed
  ``unknown_instance`` when nobody owns the key (a session that failed
  here and let its key go is still ours to destroy);
- anything else (our own queue ``wa.node.{node}``): carried out here, or,
  for a key that left this node meanwhile (moved by a drain), routed again;
- a command for a key being moved (a drain: stopped here, its login being
  saved, or waiting for its next owner, the state ``moving``) *waits*,
  looked at again every quarter second, and goes to the next owner;
- so does, with ``FAILOVER=auto``, a command for a key whose node was lost
  (its state outlived its owner's lease: ``lost``, or still what the lost
  node last wrote until the router's scan finds it), which the failover
  starts on another node: while the router's failover has the key's create
  still to publish, and ``failover_wait`` seconds after, as a send waits
  for a session that restarts.  A key no node takes by then is unknown.

When Redis cannot say who owns a key, the delivery is *parked* and tried
again a second later rather than risk running a key twice.  Once the node
stops, creates are put back for another node.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Protocol

from .amqp.topology import ROUTED_QUEUES, Delivery, node_queue_name
from .commands import COMMANDS, Command, Rejected, parse
from .states import FAILED, STOPPED, STOPPING

MOVING = "moving"  # the state a key has in Redis between two owners (a drain)

log = logging.getLogger(__name__)

PARK = 1.0  # seconds a parked delivery waits before it is tried again
STOP_POLL = 0.25  # seconds between looks at a key being stopped
# Seconds a create of a key that runs is held before it counts as done: a
# destroy published just before it comes through another queue (and, in a
# fleet, the router's hop), a few milliseconds behind it at most when the
# broker and nodes are well.
CREATE_SETTLE = 0.5

# A create's handler says whether a session of the key runs here now
# (``SessionDesk.create``): the claim is given back when none does.  The
# others return None.
Handler = Callable[[Command, Delivery, float], bool | None]
Refuse = Callable[[Command, Delivery, str, str], None]  # (command, delivery, reason, detail)


class Bus(Protocol):
    def ack(self, d: Delivery) -> None: ...
    def requeue(self, d: Delivery) -> None: ...
    def fail(self, d: Delivery, reason: str, detail: str, key: str | None, command_id: str | None) -> None: ...
    def forward(self, d: Delivery, queue: str, on_unroutable: Callable[[], None]) -> None: ...


class Ownership(Protocol):
    def claim(self, key: str) -> bool | None: ...
    def release(self, key: str) -> None: ...
    def owner_of(self, key: str) -> str | None: ...
    def state_of(self, key: str) -> dict: ...


class Sessions(Protocol):
    def runs(self, key: str) -> bool: ...  # a session of the key is here and holds it
    def has(self, key: str) -> bool: ...  # any record of the key here (a failed one too)
    def is_stopping(self, key: str) -> bool: ...


class Dispatch:
    def __init__(self, node_id: str, bus: Bus, ownership: Ownership, sessions: Sessions,
                 handlers: Mapping[str, Handler], unavailable: type[Exception], *,
                 may_create: Callable[[], bool] = lambda: True, stop_wait: float = 60.0,
                 settle: float = CREATE_SETTLE,
                 moving_out: Callable[[str], bool] = lambda key: False,
                 refuse: Mapping[str, Refuse] | None = None,
                 failover_wait: float = 0.0, failover_due: Callable[[str], bool] = lambda key: False):
        missing = set(COMMANDS) ^ set(handlers)
        if missing:
            raise ValueError(f"the command table and the node's handlers disagree on {sorted(missing)}")
        self.node_id = node_id
        self.bus = bus
        self.ownership = ownership
        self.sessions = sessions
        self.handlers = handlers  # queue -> what carries it out here
        self.unavailable = unavailable  # what owner_of raises when Redis cannot answer
        # Whether a new session may start here now (the cap, admission:
        # ``CreateGate.may_create``, a question with no side effect).
        self.may_create = may_create
        self.stop_wait = stop_wait  # longest wait of a create for a key being stopped
        self.settle = settle  # how long a create of a key that runs is held (``_settled``)
        self.moving_out = moving_out  # whether this node is moving the key to another (a drain)
        # How a command that no node can carry out is failed, by queue (the
        # send desk records a send's failure: ``sends.py``); else ``bus.fail``.
        self.refuse = dict(refuse or {})
        # FAILOVER=auto (0: manual, nothing brings a lost key back): how long
        # a command for a lost key waits for its next owner once the
        # failover's create is out; and whether that create is still to be
        # published (``Failover.due``: the wait has not begun).
        self.failover_wait = failover_wait
        self.failover_due = failover_due
        self.stopping = False
        self._parked: list[tuple[float, Delivery]] = []
        self._waiting_since: dict[tuple[int, int], float] = {}  # creates waiting for a stop
        self._settling_since: dict[tuple[int, int], float] = {}  # creates of a key that runs, held
        self._lost_since: dict[tuple[int, int], float] = {}  # commands waiting for a lost key's next owner

    def on_command(self, d: Delivery, now: float) -> None:
        try:
            cmd = parse(d.command_queue, d.body)
        except Rejected as r:
            self.bus.fail(d, r.reason, r.detail, r.key, r.command_id)
            return
        if not COMMANDS[cmd.name].routed:
            if self.stopping:
                self.bus.requeue(d)
                return
            self._create(cmd, d, now)
        elif d.queue in ROUTED_QUEUES or not self.sessions.has(cmd.key) or self.moving_out(cmd.key):
            self._route(cmd, d, now)
        else:
            self._carry_out(cmd, d, now)

    def _carry_out(self, cmd: Command, d: Delivery, now: float) -> bool | None:
        """On this node; what the handler says (a create: whether it started)."""
        return self.handlers[cmd.name](cmd, d, now)

    def _route(self, cmd: Command, d: Delivery, now: float) -> None:
        """As the router: carry out a command for a key of ours, hand it to
        its owner's queue (one hop), or fail it when nobody owns the key;
        one for a key on the move waits for its next owner."""
        # Waiting for a lost key's next owner since (``_failing_over``): kept
        # only while it waits on, so no way out of here leaves it behind.
        lost_since = self._lost_since.pop((d.generation, d.tag), None)
        if self.moving_out(cmd.key):
            self._parked.append((now + STOP_POLL, d))
            return
        if self.sessions.runs(cmd.key):
            self._carry_out(cmd, d, now)
            return
        try:
            owner = self.ownership.owner_of(cmd.key)
        except self.unavailable:
            self._park(d, now)  # Redis cannot say now: wait
            return
        if owner is None and self.sessions.has(cmd.key):
            self._carry_out(cmd, d, now)  # failed here, let go, taken by nobody
            return
        if owner is None and self._waits_for_next_owner(cmd.key, d, now, lost_since):
            return
        if owner is None:
            # The owner was read before the state, and a next owner may have
            # claimed the key in between: its claim (the owner first, then
            # its state over ``moving``) is seen by a second read of the
            # owner after the state (a send at the end of a drain was
            # refused unknown_instance as the key started on its new node).
            try:
                owner = self.ownership.owner_of(cmd.key)
            except self.unavailable:
                self._park(d, now)
                return
        if owner is None or owner == self.node_id:
            self._unknown(cmd, d, f"no node runs {cmd.key}")
            return
        self.bus.forward(d, node_queue_name(owner), on_unroutable=lambda: self._unknown(
            cmd, d, f"owner {owner} of {cmd.key} has no queue"))

    def _unknown(self, cmd: Command, d: Delivery, detail: str) -> None:
        refuse = self.refuse.get(cmd.name)
        if refuse is not None:
            refuse(cmd, d, "unknown_instance", detail)
        else:
            self.bus.fail(d, "unknown_instance", detail, cmd.key, cmd.command_id)

    def _waits_for_next_owner(self, key: str, d: Delivery, now: float, lost_since: float | None) -> bool:
        """A key between two owners: the delivery waits (True).  Moved by a
        drain (``moving``: the state outlives the move by a few leases, and
        a key no node takes by then is unknown again), or lost with its node
        and being started elsewhere by the failover (``_failing_over``)."""
        try:
            state = self.ownership.state_of(key)
        except self.unavailable:
            self._park(d, now)
            return True
        if state.get("state") != MOVING and not self._failing_over(key, state, d, now, lost_since):
            return False
        self._parked.append((now + STOP_POLL, d))
        return True

    def _failing_over(self, key: str, state: dict, d: Delivery, now: float, since: float | None) -> bool:
        """Whether the failover (``FAILOVER=auto``) is to bring this key
        back, and the delivery waits for it: a state with no owner (the
        lease ran out: ``lost``, or what the lost node last wrote, until the
        router's scan finds it) but for ``failed`` (let go on purpose), or a
        key the router's failover still has to start.  The wait counts from
        when the failover's create is out (or from the first look: ``since``),
        and ends after ``failover_wait`` seconds: no node took the key."""
        if not self.failover_wait:
            return False
        due = self.failover_due(key)
        if since is None:
            if not due and state.get("state") in (None, FAILED):
                return False  # destroyed, or failed for good: nothing brings it back
            log.info("%s for %s: its node was lost; it waits for the failover to start it elsewhere",
                     d.command_queue, key)
        if due or since is None:
            since = now  # (its create still to go out: the wait has not begun)
        elif now - since >= self.failover_wait:
            log.info("%s for %s: no node took it within %g s of its failover", d.command_queue, key,
                     self.failover_wait)
            return False
        self._lost_since[(d.generation, d.tag)] = since
        return True

    def _create(self, cmd: Command, d: Delivery, now: float) -> None:
        if self.sessions.is_stopping(cmd.key):
            self._wait_for_stop(cmd, d, now, f"{cmd.key} is being stopped on this node")
            return
        if self.sessions.runs(cmd.key):
            if self._settled(cmd, d, now):
                self._forget(d)
                self._carry_out(cmd, d, now)  # still running: acknowledged
            return
        if not self.may_create():
            log.info("create %s: no room on this node; back to the queue", cmd.key)
            self._forget(d)
            self.bus.requeue(d)
            return
        claimed = self.ownership.claim(cmd.key)
        if claimed is None:
            # Redis cannot say who owns the key: wait for it rather than
            # risk running the key twice.
            self._park(d, now)
            return
        if not claimed:
            self._owned_elsewhere(cmd, d, now)
            return
        self._forget(d)
        if not self._carry_out(cmd, d, now):
            # Not started (refused: storage_error; or failed at once), though
            # a record of the key may stay here (one that failed before):
            # the claim goes back, so a retry may go to another node.
            self.ownership.release(cmd.key)

    def _owned_elsewhere(self, cmd: Command, d: Delivery, now: float) -> None:
        """Another node holds the key's lease: it runs there (nothing to
        do), or it is being stopped there (wait for the lease to go)."""
        try:
            state = self.ownership.state_of(cmd.key)
        except self.unavailable:
            self._park(d, now)
            return
        node = state.get("node") or "another node"
        if state.get("state") in (STOPPING, STOPPED):
            self._wait_for_stop(cmd, d, now, f"{cmd.key} is being stopped on {node}")
            return
        if not state:
            # No state between the failed claim and this look: the owner
            # let the key go in that instant (a release takes the state
            # with the lease), or has claimed it and not yet written its
            # first state.  Look again shortly: the claim will succeed, or
            # the state will say the key runs there.
            self._wait_for_stop(cmd, d, now, f"{cmd.key} is changing hands")
            return
        if not self._settled(cmd, d, now):
            return
        log.info("create %s: runs on %s; nothing to do", cmd.key, node)
        self._forget(d)
        self.bus.ack(d)

    def _settled(self, cmd: Command, d: Delivery, now: float) -> bool:
        """Whether a create of a key that runs has been held ``settle``
        seconds; if not, it is looked at again shortly.

        Create and destroy come through different queues, and nothing
        orders two queues: a client restarting a session publishes a
        destroy, then a create, and the create may well be taken first (in
        a fleet the destroy has the router's hop to make too).  Counted as
        done at once, the create changed nothing and the destroy that
        followed it ended the key.  Held, it meets the destroy: the key is
        then stopping, the create waits for the stop and starts the key
        again.  The price: a create of a key that runs is acknowledged
        ``settle`` seconds late, holding one of the node's create slots
        meanwhile; and a create published just *before* a destroy also ends
        with the key running (docs/guarantees.md says so, "Order")."""
        ident = (d.generation, d.tag)
        since = self._settling_since.setdefault(ident, now)
        if now - since >= self.settle:
            return True
        if since == now:
            log.info("create %s: runs already; looked at again in %g s in case a destroy follows", cmd.key,
                     self.settle)
        self._parked.append((min(since + self.settle, now + STOP_POLL), d))
        return False

    def _forget(self, d: Delivery) -> None:
        """A create leaves: what it waited for is no longer counted."""
        self._waiting_since.pop((d.generation, d.tag), None)
        self._settling_since.pop((d.generation, d.tag), None)

    def _wait_for_stop(self, cmd: Command, d: Delivery, now: float, why: str) -> None:
        """Held (not acknowledged) and tried again shortly, until the stop
        is over or ``stop_wait`` has passed."""
        since = self._waiting_since.setdefault((d.generation, d.tag), now)
        if now - since >= self.stop_wait:
            self._forget(d)
            self.bus.fail(d, "instance_busy", f"{why} for more than {self.stop_wait:.0f} s", cmd.key,
                          cmd.command_id)
            return
        if since == now:
            log.info("create %s: %s; it waits for the stop", cmd.key, why)
        self._parked.append((now + STOP_POLL, d))

    # ------------------------------------------------------------ parked
    def _park(self, d: Delivery, now: float) -> None:
        self._parked.append((now + PARK, d))

    def retry_parked(self, now: float) -> None:
        due = [d for t, d in self._parked if t <= now]
        self._parked = [(t, d) for t, d in self._parked if t > now]
        for d in due:
            self.on_command(d, now)

    def stop(self) -> None:
        """The node stops: no more creates; what is parked was unacked
        with the closed connection, and is redelivered elsewhere."""
        self.stopping = True
        self._parked.clear()
        self._waiting_since.clear()
        self._settling_since.clear()
        self._lost_since.clear()
