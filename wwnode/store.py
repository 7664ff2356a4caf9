"""What the node keeps in Redis, and how it survives Redis going away.

Keys (every one has a TTL or is deleted when its session goes):

=============================  ==========================================
``instances:{key}:qr_code``    the QR string shown now (TTL ``QR_TTL``)
``instances:{key}:owner``      node id of the owner; a lease, renewed
``instances:{key}:state``      hash: state, node, since (ms), me; same TTL
``nodes:{node}``               hash: the node's heartbeat (see Node)
=============================  ==========================================

Redis is not on the node's critical path: a write that fails is kept (the
latest per key and kind) and retried on the next tick, and while Redis is
down the node does not touch it more than once per back-off period, so the
loop never waits on it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import redis

from .config import redact_url

log = logging.getLogger(__name__)

REDIS_ERRORS = (redis.RedisError, OSError)


def qr_key(key: str) -> str:
    return f"instances:{key}:qr_code"


def owner_key(key: str) -> str:
    return f"instances:{key}:owner"


def state_key(key: str) -> str:
    return f"instances:{key}:state"


def node_key(node: str) -> str:
    return f"nodes:{node}"


class Store:
    def __init__(self, url: str, node_id: str, qr_ttl: int, lease_ttl: float):
        self.url = url
        self.node_id = node_id
        self.qr_ttl = qr_ttl
        self.lease_ms = int(lease_ttl * 1000)
        self.r = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10, decode_responses=True
        )
        self._pending: dict[tuple[str, str], Callable[[], None]] = {}
        self.up = True
        self._retry_at = 0.0
        self._delay = 0.5

    # --------------------------------------------------------- plumbing
    def _do(self, key: str, kind: str, op: Callable[[], None]) -> bool:
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
            log.warning("Redis at %s unreachable: %s", redact_url(self.url), e)
        self.up = False
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, 10.0)

    def retry(self, now: float) -> None:
        """Called every tick: after a failure, try Redis again in a while."""
        if self.up or now < self._retry_at:
            return
        try:
            self.r.ping()
        except REDIS_ERRORS as e:
            self._down(e)
            return
        log.info("Redis is back; writing %d kept changes", len(self._pending))
        self.up, self._delay = True, 0.5
        pending, self._pending = self._pending, {}
        for (key, kind), op in pending.items():
            self._do(key, kind, op)

    # ------------------------------------------------------------ writes
    def set_qr(self, key: str, qr: str) -> None:
        self._do(key, "qr", lambda: self.r.set(qr_key(key), qr, ex=self.qr_ttl))

    def clear_qr(self, key: str) -> None:
        self._do(key, "qr", lambda: self.r.delete(qr_key(key)))

    def set_state(self, key: str, state: str, me: str | None = None) -> None:
        fields = {"state": state, "node": self.node_id, "since": str(int(time.time() * 1000)), "me": me or ""}

        def op():
            pipe = self.r.pipeline()
            pipe.hset(state_key(key), mapping=fields)
            pipe.pexpire(state_key(key), self.lease_ms)
            pipe.execute()

        self._do(key, "state", op)

    def forget(self, key: str) -> None:
        """The session is gone from this node: none of its keys stay."""
        for kind in ("qr", "state", "owner"):
            self._pending.pop((key, kind), None)
        self._do(key, "all", lambda: self._release(key))

    def _release(self, key: str) -> None:
        pipe = self.r.pipeline()
        pipe.delete(qr_key(key), state_key(key))
        pipe.execute()
        # Only our own claim is released.
        if self.r.get(owner_key(key)) == self.node_id:
            self.r.delete(owner_key(key))

    # ----------------------------------------------------------- leases
    def claim(self, key: str) -> bool | None:
        """Take the key for this node.  True: ours (now or already); False:
        another node owns it; None: Redis cannot say now."""
        if not self.up:
            return None
        try:
            if self.r.set(owner_key(key), self.node_id, nx=True, px=self.lease_ms):
                return True
            owner = self.r.get(owner_key(key))
            if owner == self.node_id:
                self.r.pexpire(owner_key(key), self.lease_ms)
                return True
            if owner is None:  # expired between the two calls
                return bool(self.r.set(owner_key(key), self.node_id, nx=True, px=self.lease_ms))
            return False
        except REDIS_ERRORS as e:
            self._down(e)
            return None

    def renew(self, keys: list[str], heartbeat: dict) -> None:
        """Extend this node's leases and state keys; write its heartbeat."""
        if not self.up:
            return
        try:
            pipe = self.r.pipeline()
            for key in keys:
                pipe.set(owner_key(key), self.node_id, px=self.lease_ms)
                pipe.pexpire(state_key(key), self.lease_ms)
            pipe.hset(node_key(self.node_id), mapping={k: str(v) for k, v in heartbeat.items()})
            pipe.pexpire(node_key(self.node_id), self.lease_ms)
            pipe.execute()
        except REDIS_ERRORS as e:
            self._down(e)

    def drop_node(self) -> None:
        try:
            self.r.delete(node_key(self.node_id))
        except REDIS_ERRORS as e:
            log.warning("could not remove this node's heartbeat: %s", e)

    def close(self) -> None:
        self.r.close()
