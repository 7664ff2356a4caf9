"""Leases and fencing tokens: the renewal cycle, what follows from it for
the node's sessions, and the Redis writer that follows state changes."""

from __future__ import annotations

import pytest

from support import FakeStore, node_rig
from wwnode import states as S
from wwnode.ownership import Leases, Ownership
from wwnode.redis_side.leases import LOST, RECLAIMED, RENEWED


def test_leases_lose_a_key_another_node_took_and_resync_after_a_reclaim():
    leases = Leases(lease_ttl=15)
    leases.hold("a", "n:1")
    leases.hold("b", "n:2")
    assert leases.renewed(100.0, {"a": LOST, "b": RENEWED}) == ["a"]
    assert not leases.holds("a") and leases.token_of("b") == "n:2" and leases.valid_until == 115.0
    assert not leases.needs_resync
    leases.renewed(101.0, {"b": RECLAIMED})
    assert leases.needs_resync and leases.holds("b")


def test_leases_run_out_only_after_a_whole_lease_without_renewal():
    leases = Leases(lease_ttl=15)
    leases.hold("a", "n:1")
    leases.renewed(100.0, {"a": RENEWED})
    assert leases.run_out(115.0) == []
    assert leases.run_out(115.1) == ["a"] and not leases.holds("a")


@pytest.fixture
def owner():
    store = FakeStore("node-a")
    return Ownership(store, Leases(lease_ttl=15), renew_every=5), store


def test_a_claim_holds_the_key_and_lets_it_run(owner):
    own, store = owner
    assert not own.may_run("k")
    assert own.claim("k") is True and own.may_run("k")
    store.owners["x"] = "node-b:1"
    assert own.claim("x") is False and not own.may_run("x")
    store.up = False
    assert own.claim("y") is None and not own.may_run("y")


def test_renewal_is_timed_and_writes_the_heartbeat(owner):
    own, store = owner
    own.claim("k")
    assert own.renew(0.0, lambda: {"sessions": 1}).lost == []
    assert own.renew(4.9, lambda: {"sessions": 1}) is None  # not due
    assert len(store.heartbeats) == 1
    own.renew(5.0, lambda: {"sessions": 2})
    assert store.heartbeats[-1] == {"sessions": 2}


def test_a_key_another_node_took_is_lost(owner):
    own, store = owner
    own.claim("k")
    store.owners["k"] = "node-b:9"
    assert own.renew(0.0, dict).lost == ["k"] and not own.may_run("k")


def test_redis_away_for_a_whole_lease_loses_every_key(owner):
    own, store = owner
    own.claim("k")
    own.renew(0.0, dict)
    store.up = False
    assert own.renew(5.0, dict) is None and own.may_run("k")  # within the lease: wait
    assert own.renew(15.1, dict).lost == ["k"] and not own.may_run("k")


def test_a_paused_node_does_not_take_back_an_expired_lease(owner):
    own, store = owner
    own.claim("k")
    own.renew(0.0, dict)
    del store.owners["k"]  # expired while the node was paused past its lease
    assert own.renew(20.0, dict).lost == ["k"]


def test_redis_back_renews_at_once_and_asks_for_a_resync(owner):
    own, store = owner
    own.claim("k")
    own.renew(0.0, dict)
    del store.owners["k"]  # Redis restarted empty
    own.redis_back()
    renewal = own.renew(1.0, dict)
    assert renewal.lost == [] and renewal.resync and store.owners["k"].startswith("node-a:")
    assert not own.renew(6.0, dict).resync  # once


def test_the_redis_writer_follows_state_changes(owner):
    own, store = owner
    own.claim("k")
    own.on_change(S.Change("k", S.NEW, S.STARTING))
    own.on_change(S.Change("k", S.STOPPING, S.STOPPED, for_good=False))  # node shutdown: lease kept
    assert own.may_run("k") and store.states("k") == [S.STARTING, S.STOPPED]
    own.on_change(S.Change("k", S.READY, S.DROPPED))
    assert store.writes == [("state", "k", S.STARTING), ("state", "k", S.STOPPED)]  # dropped: nothing written
    own.on_change(S.Change("k", S.STOPPING, S.STOPPED, for_good=True))
    assert ("release", "k") in store.writes and not own.may_run("k") and "k" not in store.owners


def test_the_node_drops_lost_keys_and_writes_states_again_after_a_reclaim(tmp_path):
    rig = node_rig(tmp_path)
    kept, _ = rig.start("kept")
    lost, _ = rig.start("lost")
    lost_child = lost.child
    rig.node._renew_leases(0.0)
    rig.store.owners["lost"] = "node-b:5"
    del rig.store.owners["kept"]  # Redis lost it: taken back, then written again
    writes = len(rig.store.writes)
    rig.node._renew_leases(5.0)
    assert not rig.sessions.has("lost") and lost_child.killed and rig.processes.buried == [lost_child]
    assert rig.sessions.has("kept") and ("state", "kept", S.STARTING) in rig.store.writes[writes:]


def test_restored_sessions_claim_their_lease_when_redis_answers(tmp_path):
    rig = node_rig(tmp_path)
    for key in ("mine", "theirs"):
        rig.node.paths.mark_wanted(key)
    rig.store.up = False
    for key in rig.sessions.restore(0.0):  # as the node's start does
        rig.node._claim_restored(key, 0.0)
    assert rig.sessions.waiting_for_lease() == ["mine", "theirs"]
    rig.store.up = True
    rig.store.owners["theirs"] = "node-b:2"
    rig.node._renew_leases(1.0)
    assert rig.ownership.may_run("mine") and rig.sessions.has("mine")
    assert not rig.sessions.has("theirs")  # another node runs it now


@pytest.mark.parametrize("reason", ["cannot_start", "crash_loop", "incompatible_page"])
def test_a_session_that_failed_lets_its_key_go_at_once(owner, reason):
    own, store = owner
    own.claim("k")
    own.on_change(S.Change("k", S.RESTARTING, S.FAILED, reason=reason))
    # Its state stays for clients to read; the lease is free for a healthy node.
    assert store.states("k") == [S.FAILED] and ("let_go", "k") in store.writes
    assert "k" not in store.owners and not own.may_run("k")
