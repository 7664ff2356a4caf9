"""What the node keeps in Redis, and how it survives Redis going away.

Its keys, and what each holds: ``keys.py`` (the tools read them there).

Ownership is a lease with a fencing token.  A claim takes a free key and
bumps its fence; the owner's token is ``{node}:{fence}``.  Every write the
owner makes about a key (QR, state, renewal) runs as a script that first
checks the owner key still holds *its* token, so a node that lost its lease
(paused, cut off) and another node took the key cannot write as owner.
This module and ``leases.py`` (claims, renewals, fences) are the Redis side of it only: which tokens this node holds, and
what follows from a renewal, is ``ownership.py``'s; the store asks it for a
key's token (``token_of``) when it writes.

Redis is not on the node's critical path: a write that fails is kept (the
latest per key and kind) and retried on the next tick, and while Redis is
down the node does not touch it more than once per back-off period.

Redis may be one server, or a master with replicas that Redis Sentinel
watches (``conn.py``: the client follows a failover); what makes a lease
survive a failover is ``leases.py``'s.

How each call reports that Redis cannot answer: writes never do (they are
kept); ``claim`` and ``renew`` return None; ``owner_of`` and
``begin_send``, ``state_of`` and ``heartbeat_of`` raise :class:`Unavailable`; ``find_lost`` lets the redis
error through (the caller, the router's lost scan, just tries later).
"""

from __future__ import annotations

import logging
import time
from typing import Callable


from ..config import redact_url
from .conn import REDIS_ERRORS, connect
from .leases import Leases
from .lua import CLAIM, FENCED_WRITE, HAND_OFF, MARK_LOST, RAISE_FENCE, RELEASE, RENEW

log = logging.getLogger(__name__)

from .keys import (DRAIN_TTL_MS, FENCE, OWNER, PAIRING_CODE, QR, SENT, SETTINGS, STATE, drain_key, instance_key,
                   instances_with, key_of, node_key, owner_node)



class Unavailable(Exception):
    """Redis cannot answer now."""




class Store(Leases):
    """This node's Redis: fenced writes kept while Redis is away, claims,
    renewals, the send records, and the fleet's lost keys."""

    def __init__(self, url: str, node_id: str, qr_ttl: int, lease_ttl: float, dedup_window: float = 86400.0,
                 token_of: Callable[[str], str | None] = lambda key: None, sentinels: str = "",
                 master_name: str = "", replica_wait: float = 0.5):
        self.url = url
        self.node_id = node_id
        self.qr_ms = qr_ttl * 1000
        self.lease_ttl = lease_ttl
        self.lease_ms = int(lease_ttl * 1000)
        # Long enough to outlive both the lease and a router failover (about
        # two AMQP heartbeats), so a dead owner's keys are always reported.
        self.state_ms = 4 * self.lease_ms + 60_000
        self.dedup_ms = int(dedup_window * 1000)
        self.r = connect(url, sentinels, master_name, socket_timeout=2, socket_connect_timeout=2,
                         health_check_interval=10, decode_responses=True)
        self.where = f"the master {master_name} of sentinels {sentinels}" if sentinels else redact_url(url)
        self.replica_wait_ms = int(replica_wait * 1000)
        self._replicas = 1  # connected to the master, as last seen (at first: maybe some)
        self._claim = self.r.register_script(CLAIM)
        self._renew = self.r.register_script(RENEW)
        self._write = self.r.register_script(FENCED_WRITE)
        self._release_script = self.r.register_script(RELEASE)
        self._mark_lost = self.r.register_script(MARK_LOST)
        self._raise_fence = self.r.register_script(RAISE_FENCE)
        self._hand_off = self.r.register_script(HAND_OFF)
        self.token_of = token_of  # our fencing token for a key, None if not ours
        self.outages = 0  # times Redis became unreachable (a counter for the heartbeat)
        self._pending: dict[tuple[str, str], Callable[[], object]] = {}
        self.up = True
        self._retry_at = 0.0
        self._delay = 0.5
        # Sentinel promotes a replica within seconds: look for it often.
        self._max_delay = 1.0 if sentinels else 5.0

    # --------------------------------------------------------- plumbing
    def _write_or_keep(self, key: str, kind: str, op: Callable[[], object]) -> bool:
        """Run a write now, or keep it (latest wins) for when Redis is back."""
        self._pending.pop((key, kind), None)
        if self.up:
            try:
                op()
                return True
            except REDIS_ERRORS as e:
                self._down(e)
        self._pending[(key, kind)] = op
        return False

    def _down(self, e: BaseException) -> None:
        if self.up:
            log.warning("Redis at %s unreachable: %s", self.where, e)
            self.outages += 1
        self.up = False
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self._max_delay)

    def retry(self, now: float) -> bool:
        """Called every tick: after a failure, try Redis again in a while.
        True when Redis has just come back (it may have lost what it held:
        the caller writes it again)."""
        if self.up or now < self._retry_at:
            return False
        try:
            self.r.ping()
        except REDIS_ERRORS as e:
            self._down(e)
            return False
        log.info("Redis is back; writing %d kept changes", len(self._pending))
        self.up, self._delay = True, 0.5
        pending, self._pending = self._pending, {}
        for (key, kind), op in pending.items():
            self._write_or_keep(key, kind, op)
        return True

    def _fenced(self, key: str, target: str, ttl_ms: int, kind: str, *values: str) -> None:
        token = self.token_of(key)
        if token is None:
            return  # not ours (any more): nothing to write
        if not self._write(keys=[instance_key(key, OWNER), target], args=[token, ttl_ms, kind, *values]):
            log.warning("write for %s refused: this node no longer owns it", key)

    # ------------------------------------------------------------ writes
    def set_qr(self, key: str, qr: str) -> None:
        self._write_or_keep(key, "qr", lambda: self._fenced(key, instance_key(key, QR), self.qr_ms, "set", qr))

    def clear_qr(self, key: str) -> None:
        self._write_or_keep(key, "qr", lambda: self._fenced(key, instance_key(key, QR), 0, "del"))

    def set_pairing_code(self, key: str, code: str) -> None:
        self._write_or_keep(key, "pairing_code", lambda: self._fenced(
            key, instance_key(key, PAIRING_CODE), self.qr_ms, "set", code))

    def clear_pairing_code(self, key: str) -> None:
        self._write_or_keep(key, "pairing_code", lambda: self._fenced(key, instance_key(key, PAIRING_CODE), 0, "del"))

    def set_state(self, key: str, state: str, me: str | None = None) -> None:
        fields = ["state", state, "node", self.node_id, "since", str(int(time.time() * 1000)), "me", me or ""]
        self._write_or_keep(key, "state",
                            lambda: self._fenced(key, instance_key(key, STATE), self.state_ms, "hset", *fields))

    def set_settings(self, key: str, stored: str) -> None:
        """The session's settings (JSON), as its owner keeps them."""
        self._write_or_keep(key, "settings", lambda: self._fenced(
            key, instance_key(key, SETTINGS), self.state_ms, "set", stored))

    def settings_of(self, key: str) -> str | None:
        """The key's settings as its last owner wrote them (None: none);
        Unavailable if Redis cannot say."""
        return self._read(lambda: self.r.get(instance_key(key, SETTINGS)))

    def release(self, key: str, token: str, forget_sends: bool = False) -> None:
        """The session is gone from this node: none of its keys stay (the
        lease included, if it still holds ``token``) but the send records,
        which run out by themselves: a send delivered again after its key
        was destroyed and created anew must get the answer it got the
        first time, not go out a second time.  ``forget_sends``: they go
        too (the account was logged out: its sends are history)."""
        for kind in ("qr", "state", "pairing_code", "settings"):
            self._pending.pop((key, kind), None)
        parts = (OWNER, QR, STATE, FENCE, PAIRING_CODE, SETTINGS) + ((SENT,) if forget_sends else ())
        self._write_or_keep(key, "release", lambda: self._release_script(
            keys=[instance_key(key, part) for part in parts], args=[token]))

    def hand_off(self, key: str, token: str) -> None:
        """The session moved off this node (a drain): the lease given up,
        the fence and send records kept, the state ``moving``."""
        self._pending.pop((key, "qr"), None)
        self._pending.pop((key, "state"), None)
        since = str(int(time.time() * 1000))
        self._write_or_keep(key, "release", lambda: self._hand_off(
            keys=[instance_key(key, OWNER), instance_key(key, QR), instance_key(key, STATE)],
            args=[token, self.node_id, self.state_ms, since]))

    def drain_requested(self) -> bool | None:
        """Whether ``nodes:{node}:drain`` asks this node to drain (its TTL
        renewed while it does); None if Redis cannot say."""
        if not self.up:
            return None
        try:
            pipe = self.r.pipeline()
            pipe.exists(drain_key(self.node_id))
            pipe.pexpire(drain_key(self.node_id), DRAIN_TTL_MS)
            found, _ = pipe.execute()
        except REDIS_ERRORS as e:
            self._down(e)
            return None
        return bool(found)

    def let_go(self, key: str, token: str) -> None:
        """The session failed for good here: free the key at once (a
        create on a healthy node may take it), keeping its ``failed`` state
        and its send records."""
        self._pending.pop((key, "qr"), None)
        self._pending.pop((key, "pairing_code"), None)
        self._write_or_keep(key, "release", lambda: self._release_script(
            keys=[instance_key(key, part) for part in (OWNER, QR, PAIRING_CODE)], args=[token]))

    # ------------------------------------------------- sends with an id
    def begin_send(self, key: str, command_id: str) -> str | None:
        """Mark a send carrying a client's command id as under way.  None:
        first time (or a new try of one that failed), go on; ``pending``:
        an earlier attempt's outcome is not known (it may have gone out);
        ``done:<message id>``: it went out."""
        if not self.up:
            raise Unavailable("Redis is unreachable")
        try:
            pipe = self.r.pipeline()
            pipe.hsetnx(instance_key(key, SENT), command_id, "pending")
            pipe.hget(instance_key(key, SENT), command_id)
            pipe.pexpire(instance_key(key, SENT), self.dedup_ms)
            created, value, _ = pipe.execute()
            if not created and value.startswith("failed:"):
                # Failed for good before: a client's new try, go on.
                self.r.hset(instance_key(key, SENT), command_id, "pending")
                created = True
        except REDIS_ERRORS as e:
            self._down(e)
            raise Unavailable(str(e)) from e
        return None if created else value

    def send_record(self, key: str, command_id: str) -> str | None:
        """What :meth:`begin_send` would find, without marking anything;
        Unavailable if Redis cannot say."""
        return self._read(lambda: self.r.hget(instance_key(key, SENT), command_id))

    def end_send(self, key: str, command_id: str, message_id: str | None, failed: str | None = None) -> None:
        """Record the outcome, kept for the window: sent (``done:<message
        id>``), failed for good (``failed:<reason>``: the same delivery
        coming again gets the same answer, while a client's new publish
        with that id tries again), or neither: forgotten (it surely did not
        go out, and whoever gets it next sends it)."""
        if message_id is not None:
            value = f"done:{message_id}"
        elif failed is not None:
            value = f"failed:{failed}"
        else:
            forget = lambda: self.r.hdel(instance_key(key, SENT), command_id)  # noqa: E731
            self._write_or_keep(key, f"sent:{command_id}", forget)
            return

        def op() -> None:
            pipe = self.r.pipeline()
            pipe.hset(instance_key(key, SENT), command_id, value)
            pipe.pexpire(instance_key(key, SENT), self.dedup_ms)
            pipe.execute()
        self._write_or_keep(key, f"sent:{command_id}", op)

    def owner_of(self, key: str) -> str | None:
        """The node that owns the key now (None: nobody); Unavailable if
        Redis cannot say."""
        return owner_node(self._read(lambda: self.r.get(instance_key(key, OWNER))))

    def state_of(self, key: str) -> dict:
        """The key's state hash as its owner wrote it (``state``, ``node``,
        ``since``, ``me``; empty if none); Unavailable if Redis cannot say."""
        return self._read(lambda: self.r.hgetall(instance_key(key, STATE)))

    def heartbeat_of(self, node: str) -> dict:
        """A node's heartbeat hash (empty if none is fresh); Unavailable if
        Redis cannot say."""
        return self._read(lambda: self.r.hgetall(node_key(node)))

    def _read(self, op: Callable[[], object]):
        if not self.up:
            raise Unavailable("Redis is unreachable")
        try:
            return op()
        except REDIS_ERRORS as e:
            self._down(e)
            raise Unavailable(str(e)) from e

    def drop_node(self) -> None:
        if not self.up:  # not asked: see ``holds``
            log.warning("Redis unreachable: this node's heartbeat is left to expire (within %.0f s)", self.lease_ttl)
            return
        try:
            self.r.delete(node_key(self.node_id))
        except REDIS_ERRORS as e:
            log.warning("could not remove this node's heartbeat: %s", e)

    # -------------------------------------------------------- the fleet
    def find_lost(self) -> list[dict]:
        """Sessions whose owner's lease ran out without the owner letting
        go (it died, or was cut off): their state hash outlives the lease.
        Each is marked ``lost`` as it is found, so it is reported once."""
        names = list(self.r.scan_iter(match=instances_with(STATE), count=500))
        if not names:
            return []
        # One round trip for all of them.  One per key cost the router's loop
        # a turn that grew with the sessions (docs/decisions.md, "Lost keys
        # found in one Redis round trip").
        pipe = self.r.pipeline(transaction=False)
        keys = [key_of(name, STATE) for name in names]
        for key, name in zip(keys, names):
            self._mark_lost(keys=[instance_key(key, OWNER), name], args=[self.lease_ms], client=pipe)
        lost = []
        for key, found in zip(keys, pipe.execute()):
            if found:
                lost.append({"key": key, "node": found[0], "previous": found[1]})
        return lost

    def close(self) -> None:
        self.r.close()
