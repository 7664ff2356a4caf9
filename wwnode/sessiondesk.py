"""The session desk: ``create_instance`` and ``destroy_instance`` carried out
on this node, and their deliveries ended.

``Sessions`` is the state machine: it says what a command came to (or
refuses it, ``Rejected``) and never touches a delivery.  Here:

- a create is acknowledged once ``Sessions.create`` has started the key's
  session, found it running, or seen it fail at once (the failure is its
  own event, ``state_instance`` ``failed``); a create refused
  (``storage_error``: no folder could be made) fails with that reason.  What
  it came to goes back to ``Dispatch``, which gives the key's claim back
  when no session of the key runs here.  The consumer sends a create's ack
  only once the create consumer counts the new session (``creategate.py``);
- a destroy of a session here is acknowledged when the session is
  ``stopped`` (a listener of the sessions, as the send desk answers a send
  once it is sent), and put back in its queue when the node loses the key
  first (``dropped``: routed again, to the key's new owner); one for a key
  with no session here fails ``unknown_instance``.
"""

from __future__ import annotations

import logging
from typing import Protocol

from . import states as S
from .amqp.topology import Delivery
from .commands import Command, Rejected

log = logging.getLogger(__name__)


class Bus(Protocol):
    def ack(self, d: Delivery) -> None: ...
    def requeue(self, d: Delivery) -> None: ...
    def fail(self, d: Delivery, reason: str, detail: str, key: str | None, command_id: str | None) -> None: ...


class Sessions(Protocol):
    def create(self, cmd: Command, now: float) -> bool: ...
    def destroy(self, cmd: Command, now: float) -> None: ...
    def has(self, key: str) -> bool: ...


class SessionDesk:
    def __init__(self, bus: Bus, sessions: Sessions):
        self.bus = bus
        self.sessions = sessions
        self._destroys: dict[str, list[Delivery]] = {}  # key -> destroys acknowledged once it is stopped

    def create(self, cmd: Command, d: Delivery, now: float) -> bool:
        """The handler of ``create_instance`` once ``Dispatch`` claimed the
        key: whether a session of the key runs here now."""
        try:
            runs = self.sessions.create(cmd, now)
        except Rejected as r:
            self.bus.fail(d, r.reason, r.detail, r.key, r.command_id)
            return False
        self.bus.ack(d)
        return runs

    def destroy(self, cmd: Command, d: Delivery, now: float) -> None:
        """The handler of ``destroy_instance``."""
        if not self.sessions.has(cmd.key):
            self.bus.fail(d, "unknown_instance", f"no session {cmd.key} on this node", cmd.key, cmd.command_id)
            return
        # Kept first: a session with no process is stopped within the call.
        self._destroys.setdefault(cmd.key, []).append(d)
        self.sessions.destroy(cmd, now)

    # ------------------------------------------------- a listener of Sessions
    def on_change(self, change: S.Change) -> None:
        """Listens last: a destroy is acknowledged after its ``stopped`` is
        in Redis and announced."""
        if change.new == S.STOPPED:
            for d in self._destroys.pop(change.key, ()):
                self.bus.ack(d)
        elif change.new == S.DROPPED:
            for d in self._destroys.pop(change.key, ()):
                self.bus.requeue(d)  # routed again, to the new owner
