"""Leases with a fencing token in Redis: claims, renewals, fences, and the replica wait that makes them last.

Part of :class:`~wwnode.redis_side.store.Store` (a base class of it: the
same connection, scripts and up/down bookkeeping).

Redis may be one server, or a master with replicas that Redis Sentinel
watches (``conn.py``: the client follows a failover).  Replication is
asynchronous: a master that dies may take its newest writes with it, and a
lease or fence that goes back in time could let two nodes run one key.  So
a claim and a renewal count only once a replica has them too (``WAIT``,
at most ``replica_wait`` seconds; a master without a connected replica has
no one to wait for), and a new fence is never below the master's clock in
milliseconds, which is past any fence a lost write can have held (see
docs/ha.md, "High availability").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import redis

from .conn import REDIS_ERRORS
from .keys import FENCE, OWNER, QR, SETTINGS, STATE, instance_key, node_key

if TYPE_CHECKING:  # only for the annotations
    from redis.commands.core import Script

log = logging.getLogger(__name__)

# What ``Store.renew`` says of each lease.
LOST, RENEWED, RECLAIMED = 0, 1, 2


class Leases:
    """Claims, renewals and fences of :class:`Store`; they use its
    connection (``r``), scripts and ``_down``."""

    # What it uses of Store, declared for the type checker: annotations only
    # (Store's __init__ sets them), and ``_down`` only while type checking,
    # so nothing here shadows what Store defines.
    r: redis.Redis
    up: bool
    where: str
    node_id: str
    lease_ms: int
    state_ms: int
    replica_wait_ms: int
    _replicas: int
    _claim: Script
    _renew: Script
    _release_script: Script
    _raise_fence: Script

    if TYPE_CHECKING:
        def _down(self, e: BaseException) -> None: ...

    def claim(self, key: str) -> str | bool | None:
        """Take the key for this node.  Our token (a string): ours now;
        False: another node owns it; None: Redis cannot say now."""
        if not self.up:
            return None
        try:
            pipe = self.r.pipeline(transaction=False)
            self._claim(keys=[instance_key(key, OWNER), instance_key(key, FENCE)],
                        args=[self.node_id, self.lease_ms], client=pipe)
            self._await_replica(pipe)
            (ok, value), *replication = pipe.execute()
            if ok and not self._replicated(replication):
                # A failover now could forget it: give it back, try later.
                log.warning("claim of %s not acknowledged by a replica within %d ms; not taken",
                            key, self.replica_wait_ms)
                self._release_script(keys=[instance_key(key, OWNER), instance_key(key, QR)], args=[value])
                return None
        except REDIS_ERRORS as e:
            self._down(e)
            return None
        return value if ok else False

    def holds(self, key: str, token: str) -> bool:
        """Whether ``token`` holds the key's lease now.  Called from the
        snapshot worker thread (redis-py's client is thread-safe): the
        redis error goes to the caller, and the node's up/down
        bookkeeping is left alone.  While the loop knows Redis down it is
        not asked: the answer would be an error anyway, after a wait that
        the connect timeout does not bound (a server's name that no longer
        resolves can take the resolver 20 s, as a compose stop showed)."""
        if not self.up:
            raise redis.ConnectionError(f"Redis at {self.where} is unreachable (not asked again until it is back)")
        return self.r.get(instance_key(key, OWNER)) == token

    def raise_fence(self, key: str, token: str, floor: int) -> str | None:
        """Make our fence greater than ``floor``: our token (a new one if
        the fence had to grow), None if the lease is not ours or Redis
        cannot say."""
        if not self.up:
            return None
        try:
            return self._raise_fence(keys=[instance_key(key, OWNER), instance_key(key, FENCE)],
                                     args=[token, self.node_id, floor]) or None
        except REDIS_ERRORS as e:
            self._down(e)
            return None

    def renew(self, tokens: dict[str, str], may_reclaim: bool, heartbeat: dict) -> dict[str, int] | None:
        """Extend the leases of ``tokens`` (key -> our token) and write our
        heartbeat.  Per key: RENEWED, RECLAIMED (it had expired and was free:
        taken back, which only ``may_reclaim`` allows) or LOST (another node
        holds it); None if Redis did not answer."""
        if not self.up:
            return None
        keys = list(tokens)
        try:
            # Not a MULTI: inside one, WAIT would not wait.  The script is
            # atomic on its own; the heartbeat's two writes need not be.
            pipe = self.r.pipeline(transaction=False)
            if keys:
                redis_keys = [k for key in keys for k in (instance_key(key, OWNER), instance_key(key, STATE))]
                self._renew(keys=redis_keys, args=[self.lease_ms, self.state_ms, int(may_reclaim),
                                                   *(tokens[k] for k in keys)], client=pipe)
                # The settings live as long as the state: a key whose owner
                # died keeps them for whoever starts it next (a failover).
                for key in keys:
                    pipe.pexpire(instance_key(key, SETTINGS), self.state_ms)
            pipe.hset(node_key(self.node_id), mapping={k: str(v) for k, v in heartbeat.items()})
            pipe.pexpire(node_key(self.node_id), self.lease_ms)
            self._await_replica(pipe)
            results = pipe.execute()
        except REDIS_ERRORS as e:
            self._down(e)
            return None
        if not self._replicated(results[-2:] if self.replica_wait_ms else []):
            # Counted as unanswered: the leases hold until the last renewal
            # a replica has, which a failover keeps.
            log.warning("lease renewal not acknowledged by a replica within %d ms", self.replica_wait_ms)
            return None
        return dict(zip(keys, results[0])) if keys else {}

    # ------------------------------------------------------- replication
    def _await_replica(self, pipe) -> None:
        """After a lease or fence write, in the same pipeline (``WAIT``
        counts the writes of its own connection): wait for one replica to
        have it, then ask how many replicas the master has."""
        if self.replica_wait_ms:
            pipe.execute_command("WAIT", 1 if self._replicas else 0, self.replica_wait_ms)
            pipe.execute_command("ROLE")

    def _replicated(self, replication: list) -> bool:
        """Whether the write a pipeline made would survive a failover: a
        replica acknowledged it, or the master has none connected (none
        could be promoted with less; see docs/ha.md for this limit)."""
        if not replication:
            return True  # not waiting (REDIS_REPLICA_WAIT=0)
        acked, role = replication
        if role[0] != "master":
            return False  # a demoted master: its writes are not the fleet's
        self._replicas = len(role[2])
        return acked >= 1 or self._replicas == 0
