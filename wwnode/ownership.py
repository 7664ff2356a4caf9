"""Which keys this node owns: its leases, their fencing tokens, the renewal
cycle, and what the node writes to Redis as an owner.

:class:`Leases` is the bookkeeping alone (pure: no Redis, time handed in).
:class:`Ownership` runs it against the store: claims, renewals with the
heartbeat, releases, and the Redis writer that follows every session's
state change.  What follows from a renewal (sessions to drop, states to
write again) it returns to the node, which carries it out: this module
never touches a session.

The rules:

- a lease holds until ``valid_until``: the start of the last renewal that
  succeeded plus ``LEASE_TTL``.  Past it with Redis still away, another
  node may run our keys: they are all lost;
- a lease found expired and free is taken back only while our own clock
  says it has not run out: a node that was paused longer than the lease
  gives its keys up even when nobody took them;
- a lease taken back, or Redis coming back, means Redis may have lost what
  we wrote: ``needs_resync`` until the node has written its sessions again;
- a key may run here only while its lease is held (``may_run``);
- a session that failed for good lets its key go at once (its ``failed``
  state stays for clients to read), so a create on a healthy node can take
  it; a node going down keeps its leases and writes ``stopped``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

from . import states as S
from .redis_side.leases import LOST, RECLAIMED

log = logging.getLogger(__name__)


class Store(Protocol):
    def claim(self, key: str) -> str | bool | None: ...
    def renew(self, tokens: dict[str, str], may_reclaim: bool, heartbeat: dict) -> dict[str, int] | None: ...
    def release(self, key: str, token: str, forget_sends: bool = False) -> None: ...
    def let_go(self, key: str, token: str) -> None: ...
    def state_of(self, key: str) -> dict: ...
    def set_state(self, key: str, state: str, me: str | None = None) -> None: ...
    def owner_of(self, key: str) -> str | None: ...
    def find_lost(self) -> list[dict]: ...
    def hand_off(self, key: str, token: str) -> None: ...


class Leases:
    """The leases this node holds: key -> fencing token."""

    def __init__(self, lease_ttl: float):
        self.lease_ttl = lease_ttl
        self._tokens: dict[str, str] = {}
        self.valid_until = 0.0  # monotonic
        self.needs_resync = False

    def token_of(self, key: str) -> str | None:
        return self._tokens.get(key)

    def holds(self, key: str) -> bool:
        return key in self._tokens

    def tokens(self) -> dict[str, str]:
        return dict(self._tokens)

    def hold(self, key: str, token: str) -> None:
        self._tokens[key] = token

    def give_up(self, key: str) -> str | None:
        return self._tokens.pop(key, None)

    def renewed(self, now: float, statuses: dict[str, int]) -> list[str]:
        """A renewal that Redis answered at ``now``: the keys it says we lost."""
        self.valid_until = now + self.lease_ttl
        lost = []
        for key, status in statuses.items():
            if status == LOST:
                lost.append(key)
                self._tokens.pop(key, None)
            elif status == RECLAIMED:
                log.warning("lease of %s had expired; taken back", key)
                self.needs_resync = True  # Redis lost it: restarted, or a flush
        return lost

    def run_out(self, now: float) -> list[str]:
        """Redis has not answered for a whole lease: every key is lost."""
        if not self._tokens or now <= self.valid_until:
            return []
        lost, self._tokens = list(self._tokens), {}
        return lost


@dataclass
class Renewal:
    """What a renewal asks the node to do."""

    lost: list[str] = field(default_factory=list)  # drop these sessions: not ours any more
    resync: bool = False  # write every session's state (and QR) to Redis again


class Ownership:
    def __init__(self, store: Store, leases: Leases, renew_every: float):
        self.store = store
        self.leases = leases
        self.renew_every = renew_every
        self._next_renew = 0.0

    # ------------------------------------------------------------- keys
    def claim(self, key: str) -> bool | None:
        """True: ours now; False: another node owns it; None: Redis cannot say."""
        token = self.store.claim(key)
        if isinstance(token, str):
            self.leases.hold(key, token)
            return True
        return token

    def release(self, key: str) -> None:
        """Give up a key claimed for a create that did not start here."""
        token = self.leases.give_up(key)
        if token is not None:
            self.store.release(key, token)

    def hand_off(self, key: str) -> None:
        """A session moved off this node: give the lease up, keeping the
        fence (the next owner's is greater) and the send records, and
        leave the state ``moving`` so commands wait for the next owner."""
        token = self.leases.give_up(key)
        if token is not None:
            self.store.hand_off(key, token)

    def may_run(self, key: str) -> bool:
        """Whether a session of this key may start here: its lease is ours.
        A restored session waits for its lease."""
        return self.leases.holds(key)

    def owner_of(self, key: str) -> str | None:
        return self.store.owner_of(key)

    def find_lost(self) -> list[dict]:
        return self.store.find_lost()

    def state_of(self, key: str) -> dict:
        """What the key's owner last wrote of it (Unavailable if Redis
        cannot say)."""
        return self.store.state_of(key)

    # ---------------------------------------------------------- renewal
    def redis_back(self) -> None:
        """Redis answers again, maybe restarted empty: renew at once, then
        write back what it should hold."""
        self.leases.needs_resync = True
        self._next_renew = 0.0

    def lapsed(self, now: float) -> bool:
        """Keys are held and the last renewal's lease has run out: a
        renewal is overdue (the node was paused, or Redis is away)."""
        return bool(self.leases.tokens()) and now > self.leases.valid_until

    def renew(self, now: float, heartbeat: Callable[[], dict]) -> Renewal | None:
        """When due: extend the leases and write the heartbeat (built only
        then).  None when nothing is to be done (not due, or Redis away
        within the lease)."""
        if now < self._next_renew:
            return None
        self._next_renew = now + self.renew_every
        statuses = self.store.renew(self.leases.tokens(), now < self.leases.valid_until, heartbeat())
        if statuses is None:
            lost = self.leases.run_out(now)
            if not lost:
                return None
            # Redis has been out of reach for a whole lease: another node
            # may run our keys by now, so ours must stop.
            log.error("leases could not be renewed for %.0f s; stopping this node's sessions",
                      self.leases.lease_ttl)
            return Renewal(lost=lost)
        renewal = Renewal(lost=self.leases.renewed(now, statuses), resync=self.leases.needs_resync)
        self.leases.needs_resync = False
        return renewal

    # ------------------------------------------------------ Redis writer
    def on_change(self, change: S.Change) -> None:
        """A session's state changed: what Redis holds about it follows.
        (Listeners run Redis first: a client that sees the event finds
        Redis agreeing.)"""
        if change.new == S.DROPPED:
            return  # not ours any more: nothing to write as owner
        if change.new == S.STOPPED and change.moving:
            self.store.set_state(change.key, change.new, change.me)
            return  # the lease is kept until the key is handed off (``hand_off``)
        if change.new == S.STOPPED and change.for_good:
            token = self.leases.give_up(change.key)
            if token is not None:
                self.store.release(change.key, token, forget_sends=change.logout)
            return
        # Going down, the node writes ``stopped`` and keeps the lease (and
        # the record of sends done), for this node to take up again when it
        # is back, or to run out and be reported lost if it is not.
        self.store.set_state(change.key, change.new, change.me)
        if change.new == S.FAILED:
            token = self.leases.give_up(change.key)
            if token is not None:
                self.store.let_go(change.key, token)
