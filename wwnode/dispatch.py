"""Command dispatch: from a delivery to the part that carries it out.

Each delivery is parsed (``commands.parse``, with the command table), then:

- a create (not routed): carried out here if the key runs here already,
  else claimed in Redis first (one owner per key; a key another node owns
  is acknowledged and left alone);
- a routed command, as the fleet's router (``send_message``,
  ``destroy_instance``, ``wa.reroute``): carried out here for a key of
  ours, handed to the owner's queue (one hop), or failed
  ``unknown_instance`` when nobody owns the key;
- anything else (our own queue ``wa.node.{node}``): carried out here.

When Redis cannot say who owns a key, the delivery is *parked* and tried
again a second later rather than risk running a key twice.  Once the node
stops, creates are put back for another node.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Protocol

from .amqp.topology import ROUTED_QUEUES, Delivery, node_queue_name
from .commands import COMMANDS, Command, Rejected, parse

log = logging.getLogger(__name__)

PARK = 1.0  # seconds a parked delivery waits before it is tried again

Handler = Callable[[Command, Delivery, float], None]


class Bus(Protocol):
    def ack(self, d: Delivery) -> None: ...
    def requeue(self, d: Delivery) -> None: ...
    def fail(self, d: Delivery, reason: str, detail: str, key: str | None, command_id: str | None) -> None: ...
    def forward(self, d: Delivery, queue: str, on_unroutable: Callable[[], None]) -> None: ...


class Ownership(Protocol):
    def claim(self, key: str) -> bool | None: ...
    def release(self, key: str) -> None: ...
    def owner_of(self, key: str) -> str | None: ...


class Dispatch:
    def __init__(self, node_id: str, bus: Bus, ownership: Ownership, runs_here: Callable[[str], bool],
                 handlers: Mapping[str, Handler], unavailable: type[Exception]):
        missing = set(COMMANDS) ^ set(handlers)
        if missing:
            raise ValueError(f"the command table and the node's handlers disagree on {sorted(missing)}")
        self.node_id = node_id
        self.bus = bus
        self.ownership = ownership
        self.runs_here = runs_here  # whether a session of the key is on this node
        self.handlers = handlers  # queue -> what carries it out here
        self.unavailable = unavailable  # what owner_of raises when Redis cannot answer
        self.stopping = False
        self._parked: list[tuple[float, Delivery]] = []

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
        elif d.queue in ROUTED_QUEUES:
            self._route(cmd, d, now)
        else:
            self._carry_out(cmd, d, now)

    def _carry_out(self, cmd: Command, d: Delivery, now: float) -> None:
        """On this node."""
        self.handlers[cmd.name](cmd, d, now)

    def _route(self, cmd: Command, d: Delivery, now: float) -> None:
        """As the router: carry out a command for a key of ours, hand it to
        its owner's queue (one hop), or fail it when nobody owns the key."""
        if self.runs_here(cmd.key):
            self._carry_out(cmd, d, now)
            return
        try:
            owner = self.ownership.owner_of(cmd.key)
        except self.unavailable:
            self._park(d, now)  # Redis cannot say now: wait
            return
        if owner is None or owner == self.node_id:
            self.bus.fail(d, "unknown_instance", f"no node runs {cmd.key}", cmd.key, cmd.command_id)
            return
        self.bus.forward(d, node_queue_name(owner), on_unroutable=lambda: self.bus.fail(
            d, "unknown_instance", f"owner {owner} of {cmd.key} has no queue", cmd.key, cmd.command_id))

    def _create(self, cmd: Command, d: Delivery, now: float) -> None:
        if self.runs_here(cmd.key):
            self._carry_out(cmd, d, now)
            return
        claimed = self.ownership.claim(cmd.key)
        if claimed is None:
            # Redis cannot say who owns the key: wait for it rather than
            # risk running the key twice.
            self._park(d, now)
            return
        if not claimed:
            log.info("create %s: owned by another node; nothing to do", cmd.key)
            self.bus.ack(d)
            return
        self._carry_out(cmd, d, now)
        if not self.runs_here(cmd.key):  # refused (storage_error): a retry may go to another node
            self.ownership.release(cmd.key)

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
