"""What the node keeps in Redis, against the real Redis (the tests' own
database): the lease and fencing scripts (CLAIM, RENEW, FENCED_WRITE,
RELEASE, MARK_LOST) through the Store and the node's lease bookkeeping
(``Ownership``, ``Leases``), a failed key let go (RELEASE, keeping its state), the send records, and Redis going away.
Milliseconds each; two owners are two nodes."""

from __future__ import annotations

import socket
import time

import pytest
import redis as redislib

from support import RedisServer, wait_for
from wwnode import states as S
from wwnode.ownership import Leases, Ownership
from wwnode.redis_side.store import Store, Unavailable

pytestmark = pytest.mark.services

LEASE = 5.0  # seconds


class Owner:
    """One node's Redis side: its Store, and the leases it holds (its
    fencing tokens, which the Store's writes are checked against)."""

    def __init__(self, url: str, node: str):
        self.node = node
        self.leases = Leases(LEASE)
        self.store = Store(url, node, qr_ttl=60, lease_ttl=LEASE, dedup_window=600, token_of=self.leases.token_of)
        self.ownership = Ownership(self.store, self.leases, renew_every=0.0)  # renews whenever asked

    def claim(self, key: str) -> bool | None:
        return self.ownership.claim(key)

    def renew(self, now: float, heartbeat: dict) -> list[str] | None:
        """The keys lost, or None when Redis did not answer."""
        renewal = self.ownership.renew(now, lambda: heartbeat)
        return None if renewal is None else renewal.lost

    def release(self, key: str, forget_sends: bool = False) -> None:
        token = self.leases.give_up(key)
        if token is not None:
            self.store.release(key, token, forget_sends)

    def __getattr__(self, name):  # the Store's own calls: set_state, set_qr, begin_send, ...
        return getattr(self.store, name)


@pytest.fixture
def stores(redis_url):
    made: list[Owner] = []

    def make(node: str, url: str = redis_url) -> Owner:
        owner = Owner(url, node)
        made.append(owner)
        return owner

    yield make
    for owner in made:
        owner.store.close()


def owner_token(r, key: str) -> str | None:
    return r.get(f"instances:{key}:owner")


def instance_keys(r, key: str) -> list[str]:
    return sorted(r.scan_iter(match=f"instances:{key}:*"))


def test_a_claim_takes_a_free_key_once_and_bumps_the_fence(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    clock_ms = int(redis_client.time()[0]) * 1000
    assert a.claim("k") is True
    first = owner_token(redis_client, "k")
    fence = int(first.split(":")[1])
    # The first fence is the server's clock in ms: past any a failover lost.
    assert first.startswith("node-a:") and clock_ms <= fence <= clock_ms + 60_000
    assert 0 < redis_client.pttl("instances:k:owner") <= LEASE * 1000
    assert redis_client.pttl("instances:k:fence") > 3600 * 1000  # outlives every lease
    assert b.claim("k") is False
    assert b.owner_of("k") == "node-a" and a.owner_of("k") == "node-a"
    assert owner_token(redis_client, "k") == first  # a refused claim changes nothing
    assert a.claim("k") is True  # the owner may claim again: a new token
    second = int(owner_token(redis_client, "k").split(":")[1])
    assert owner_token(redis_client, "k").startswith("node-a:") and second > fence
    assert a.owner_of("nobody-has-it") is None


def test_a_fence_lost_in_a_failover_is_still_passed_by_the_next_claim(stores, redis_client):
    """A promoted replica may lack the newest fence (async replication):
    here the fence counter forgotten altogether, as by a master that died
    before sending it on.  The next claim's fence is still higher than any
    handed out before (the clock floor), and a counter ahead of the clock
    keeps counting up."""
    a = stores("node-a")
    assert a.claim("k") is True
    before = int(owner_token(redis_client, "k").split(":")[1])
    a.release("k")
    redis_client.delete("instances:k:fence")
    # A failover takes seconds: at least the server's next millisecond.
    wait_for(lambda: (lambda t: t[0] * 1000 + t[1] // 1000)(redis_client.time()) > before, what="a later ms")
    assert a.claim("k") is True
    assert int(owner_token(redis_client, "k").split(":")[1]) > before
    a.release("k")
    redis_client.set("instances:k:fence", str(before + 10**9))
    assert a.claim("k") is True
    assert int(owner_token(redis_client, "k").split(":")[1]) == before + 10**9 + 1


def test_a_node_that_lost_its_lease_cannot_write_as_owner(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    a.claim("k")
    a.set_state("k", "ready", "5511@c.us")
    a.set_qr("k", "qr-of-a")
    assert redis_client.hgetall("instances:k:state") == {
        "state": "ready", "node": "node-a", "since": redis_client.hget("instances:k:state", "since"), "me": "5511@c.us"}
    assert redis_client.get("instances:k:qr_code") == "qr-of-a"
    assert 0 < redis_client.pttl("instances:k:qr_code") <= 60_000
    assert redis_client.pttl("instances:k:state") > LEASE * 1000  # outlives the lease: lost keys are found

    redis_client.delete("instances:k:owner")  # a's lease ran out (it was paused, say)...
    assert b.claim("k") is True  # ...and b took the key
    b.set_state("k", "starting")
    a.set_state("k", "ready", "5511@c.us")  # a, resumed, still thinks it owns k
    a.set_qr("k", "stale-qr")
    a.clear_qr("k")
    assert redis_client.hget("instances:k:state", "node") == "node-b"
    assert redis_client.hget("instances:k:state", "state") == "starting"
    assert redis_client.get("instances:k:qr_code") == "qr-of-a"  # neither replaced nor deleted by a


def test_renew_extends_leases_writes_the_heartbeat_and_reports_lost_keys(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    now = time.monotonic()
    for key in ("k1", "k2"):
        a.claim(key)
        a.set_state(key, "ready")
    assert a.renew(now, {"node": "node-a", "sessions": 2}) == []
    for key in ("k1", "k2"):
        redis_client.pexpire(f"instances:{key}:owner", 100)
    assert a.renew(now + 1, {"node": "node-a", "sessions": 2}) == []
    assert redis_client.pttl("instances:k1:owner") > 1000  # extended again
    assert redis_client.hgetall("nodes:node-a") == {"node": "node-a", "sessions": "2"}
    assert 0 < redis_client.pttl("nodes:node-a") <= LEASE * 1000

    redis_client.delete("instances:k2:owner")
    b.claim("k2")
    assert a.renew(now + 2, {"node": "node-a", "sessions": 2}) == ["k2"]
    assert owner_token(redis_client, "k2").startswith("node-b:")
    assert a.renew(now + 3, {"node": "node-a", "sessions": 1}) == []  # reported once: k2 is no longer a's


def test_a_lease_redis_forgot_is_taken_back_only_while_the_node_knows_it_holds(stores, redis_client):
    a = stores("node-a")
    now = time.monotonic()
    a.claim("k1")
    a.claim("k2")
    assert a.renew(now, {"node": "node-a"}) == []
    token = owner_token(redis_client, "k1")
    redis_client.delete("instances:k1:owner")  # Redis restarted empty, or was flushed
    assert a.renew(now + LEASE / 2, {"node": "node-a"}) == []  # within the lease: taken back
    assert owner_token(redis_client, "k1") == token
    redis_client.delete("instances:k2:owner")
    # Past the lease since the last renewal (the node was paused): another
    # node may run k2 by now, even though nobody holds it in Redis.
    assert a.renew(now + LEASE / 2 + LEASE + 1, {"node": "node-a"}) == ["k2"]
    assert owner_token(redis_client, "k2") is None


def test_release_removes_every_key_of_a_session_but_only_its_owners(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    a.claim("k")
    a.set_state("k", "ready")
    a.set_qr("k", "qr")
    assert a.begin_send("k", "c1") is None
    assert len(instance_keys(redis_client, "k")) == 5  # owner, fence, state, qr, sent
    a.release("k")
    assert instance_keys(redis_client, "k") == ["instances:k:sent"]  # runs out by itself
    a.claim("k")
    a.release("k", forget_sends=True)  # logged out
    assert instance_keys(redis_client, "k") == []

    a.claim("k2")
    redis_client.delete("instances:k2:owner")
    b.claim("k2")
    b.set_state("k2", "ready")
    a.release("k2")  # a had lost k2: b's keys stay
    assert owner_token(redis_client, "k2").startswith("node-b:")
    assert redis_client.hget("instances:k2:state", "node") == "node-b"


def test_the_router_finds_a_dead_owners_keys_once(stores, redis_client):
    a, router = stores("node-a"), stores("node-b")
    for key in ("dead", "alive"):
        a.claim(key)
        a.set_state(key, "ready")
    redis_client.delete("instances:dead:owner")  # node-a died: its lease ran out
    assert router.find_lost() == [{"key": "dead", "node": "node-a", "previous": "ready"}]
    assert redis_client.hget("instances:dead:state", "state") == "lost"
    assert redis_client.pttl("instances:dead:state") <= LEASE * 1000  # the mark goes after a while
    assert router.find_lost() == []  # reported once
    assert redis_client.hget("instances:alive:state", "state") == "ready"


def test_a_failed_key_is_let_go_keeping_its_state_and_sends_and_is_not_lost(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    a.claim("k")
    a.set_qr("k", "qr")
    assert a.begin_send("k", "c1") is None
    a.ownership.on_change(S.Change("k", S.STARTING, S.FAILED, reason="cannot_start"))
    assert owner_token(redis_client, "k") is None and redis_client.get("instances:k:qr_code") is None
    assert redis_client.hgetall("instances:k:state")["state"] == "failed"
    assert redis_client.hget("instances:k:sent", "c1") == "pending"
    assert b.find_lost() == []  # let go on purpose: not lost
    assert b.claim("k") and b.state_of("k")["state"] == "failed"  # free for a healthy node


def test_a_send_with_an_id_is_recorded_as_pending_then_done(stores, redis_client):
    a = stores("node-a")
    assert a.begin_send("k", "c1") is None  # first time: go on
    assert a.begin_send("k", "c1") == "pending"  # a redelivery while its outcome is unknown
    a.end_send("k", "c1", "true_5511@c.us_ABC")
    assert a.begin_send("k", "c1") == "done:true_5511@c.us_ABC"
    assert 0 < redis_client.pttl("instances:k:sent") <= 600_000
    assert a.begin_send("k", "c2") is None
    a.end_send("k", "c2", None)  # failed for good: a retry may try again
    assert a.begin_send("k", "c2") is None


def test_while_redis_is_away_the_store_says_so_and_keeps_writes(stores, tmp_path):
    server = RedisServer(tmp_path)
    try:
        a = stores("node-a", server.url)
        r = redislib.Redis.from_url(server.url, decode_responses=True)
        assert a.claim("k") is True
        assert a.renew(time.monotonic(), {"node": "node-a"}) == []  # the leases hold for LEASE from now
        server.stop()
        a.set_state("k", "ready")  # kept for later, not raised
        assert a.claim("other") is None  # cannot say
        with pytest.raises(Unavailable):
            a.owner_of("k")
        with pytest.raises(Unavailable):
            a.begin_send("k", "c1")
        assert a.renew(time.monotonic(), {"node": "node-a"}) is None  # away, within the lease: wait
        assert a.retry(time.monotonic() + 60) is False  # still away
        server.start()  # back, and empty
        assert a.retry(time.monotonic() + 120) is True
        assert r.get("instances:k:owner") is None  # the kept write was fenced: no lease, no write
        assert r.hgetall("instances:k:state") == {}
        assert a.renew(time.monotonic() + 120, {"node": "node-a"}) == ["k"]  # too long away: lost
        r.close()
    finally:
        server.stop()



def test_while_redis_is_known_away_a_lease_check_and_the_heartbeats_removal_ask_nothing(stores, tmp_path):
    """A node stopping beside a Redis that went away (a compose stop takes
    every service at once) does not ask it again from the snapshot worker
    or on its way out: an address that no longer resolves costs the
    resolver's own timeout, which the connect timeout does not bound.
    Here a listener that never answers stands for it, and shows it was not
    even connected to."""
    silent = socket.create_server(("127.0.0.1", 0))
    silent.setblocking(False)
    try:
        a = stores("node-a", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        assert a.claim("k") is None  # the claim finds it away (a connect, then no answer): known down now
        a.store.r.connection_pool.disconnect()
        while True:  # what that claim left in the listener's backlog
            try:
                silent.accept()[0].close()
            except BlockingIOError:
                break
        with pytest.raises(redislib.ConnectionError, match="unreachable"):
            a.store.holds("k", "node-a:1")
        a.store.drop_node()
        with pytest.raises(BlockingIOError):
            silent.accept()  # nobody connected
    finally:
        silent.close()

def test_a_hand_off_keeps_fence_and_sends_and_says_moving(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    a.claim("k")
    a.set_state("k", "stopped", "5511@c.us")
    assert a.begin_send("k", "s1") is None
    a.end_send("k", "s1", "MSG1")
    a.ownership.hand_off("k")
    assert owner_token(redis_client, "k") is None
    assert redis_client.hget("instances:k:state", "state") == "moving"
    assert redis_client.hget("instances:k:state", "node") == "node-a"
    assert a.find_lost() == []  # on the move: not lost
    fence_a = int(redis_client.get("instances:k:fence"))
    assert b.claim("k") is True
    token_b = owner_token(redis_client, "k")
    assert token_b.startswith("node-b:") and int(token_b.split(":")[1]) > fence_a  # the fence went on
    assert b.begin_send("k", "s1") == "done:MSG1"  # the send records moved with the key
    a.ownership.hand_off("k")  # not a's any more: nothing happens
    assert owner_token(redis_client, "k") == token_b


def test_a_fence_is_raised_past_a_restored_snapshot_only_by_its_owner(stores, redis_client):
    a, b = stores("node-a"), stores("node-b")
    a.claim("k")
    token = a.leases.token_of("k")
    fence = int(token.rsplit(":", 1)[1])
    assert a.store.raise_fence("k", token, 0) == token  # already past it: unchanged
    new = a.store.raise_fence("k", token, fence + 6)
    assert new == f"node-a:{fence + 7}" and owner_token(redis_client, "k") == new
    assert redis_client.get("instances:k:fence") == str(fence + 7)
    assert b.store.raise_fence("k", "node-b:1", fence + 20) is None  # not b's lease
    assert owner_token(redis_client, "k") == new
    assert a.store.holds("k", new) and not a.store.holds("k", token)
