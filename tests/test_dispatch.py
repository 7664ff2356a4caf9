"""Command dispatch: parse, claim, route, park; and when each command is
acknowledged (confirms arrive only when the test says so)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from sessionproc.protocol import EXIT_CANNOT_START
from support import FakeLoad, delivery, node_rig
from wwnode import states as S
from wwnode.admission import Reading
from wwnode.commands import COMMANDS
from wwnode.dispatch import Dispatch


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


def test_a_bad_command_is_answered_and_dead_lettered_then_acked_once_confirmed(rig):
    d = delivery("send_message", {"key": "k", "chat_id": "1@c.us\n", "message": "hi"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.broker.failed() == [(d.tag, "bad_chat_id")]
    assert rig.broker.events("command_failed") == [{"command": "send_message", "reason": "bad_chat_id", "key": "k",
                                                    "detail": "chat_id must look like 5511999999999@c.us, a LID "
                                                              "123456789012345@lid, or a group's "
                                                              "120363000000000000@g.us"}]
    assert d.tag not in rig.broker.acked  # not before the dead letter is safe
    rig.broker.confirm_all()
    assert rig.broker.acked == [d.tag]
    assert rig.counters.get("commands_failed_bad_chat_id") == 1


def test_a_create_claims_the_key_and_starts_it(rig):
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.sessions.get("k").state == S.STARTING and rig.spawner.keys() == ["k"]
    assert rig.ownership.may_run("k") and d.tag in rig.broker.acked


def test_a_create_of_a_key_another_node_runs_is_acked_and_left_alone(rig):
    rig.store.owners["k"] = "node-b:7"
    rig.store.state_hashes["k"] = {"state": S.READY, "node": "node-b"}
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert d.tag not in rig.broker.acked  # held a moment, in case a destroy follows (below)
    rig.dispatch.retry_parked(0.25)
    rig.dispatch.retry_parked(0.5)
    assert not rig.sessions.has("k") and rig.spawner.keys() == [] and d.tag in rig.broker.acked


def test_a_create_waits_while_redis_cannot_say_who_owns_the_key(rig):
    rig.store.up = False
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert not rig.sessions.has("k") and d.tag not in rig.broker.acked
    rig.store.up = True
    rig.dispatch.retry_parked(0.9)
    assert not rig.sessions.has("k")  # not before its second
    rig.dispatch.retry_parked(1.0)
    assert rig.sessions.has("k") and d.tag in rig.broker.acked


def test_a_stopping_node_puts_creates_back(rig):
    rig.dispatch.stop()
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.broker.requeued == [d.tag] and not rig.sessions.has("k")


def test_the_router_carries_out_commands_for_its_own_keys(rig):
    rig.start("k")
    d = delivery("destroy_instance", {"key": "k"})
    rig.dispatch.on_command(d, 1.0)
    assert rig.sessions.get("k").state == S.STOPPING


def test_the_router_hands_a_command_to_its_owner_and_acks_once_confirmed(rig):
    rig.store.owners["k"] = "node-b:3"
    d = delivery("send_message", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi"})
    rig.dispatch.on_command(d, 0.0)
    [forwarded] = rig.broker.forwarded("wa.node.node-b")
    assert forwarded.body == d.body and forwarded.headers["x-queue"] == "send_message"
    assert forwarded.headers["x-routed-by"] == "node-a"
    assert d.tag not in rig.broker.acked
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked


def test_a_forward_whose_delivery_died_with_its_connection_is_not_to_be_published(rig):
    # It waited in the outbox (a paced turn, the publisher's link down)
    # while the command link went: the broker gives the command out again,
    # and a copy as well would be a second, unmarked command.
    rig.store.owners["k"] = "node-b:3"
    d = delivery("send_message", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi", "id": "c1"})
    rig.dispatch.on_command(d, 0.0)
    [forwarded] = rig.broker.forwarded("wa.node.node-b")
    assert not forwarded.stale()
    rig.broker.generation += 1  # the command connection was made anew
    assert forwarded.stale()


def test_a_rerouted_command_keeps_the_queue_it_was_published_to(rig):
    rig.store.owners["k"] = "node-b:3"
    d = delivery("wa.reroute", {"key": "k"}, headers={"x-queue": "destroy_instance"})
    rig.dispatch.on_command(d, 0.0)
    [forwarded] = rig.broker.forwarded("wa.node.node-b")
    assert forwarded.headers["x-queue"] == "destroy_instance"


def test_a_command_for_an_owner_without_a_queue_fails(rig):
    rig.store.owners["k"] = "node-b:3"
    rig.broker.no_queue.add("wa.node.node-b")
    d = delivery("send_message", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi"})
    rig.dispatch.on_command(d, 0.0)
    rig.broker.confirm_all()
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]
    rig.broker.confirm_all()
    assert rig.broker.acked == [d.tag]


def test_a_command_for_a_key_nobody_owns_fails(rig):
    d = delivery("destroy_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]


def test_a_send_a_router_fails_for_want_of_an_owner_gets_the_same_answer_when_delivered_again(rig):
    body = {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi", "id": "c1"}
    d = delivery("send_message", body)
    rig.dispatch.on_command(d, 0.0)
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]
    # Its acknowledgement was lost with a connection; meanwhile the key
    # runs here.  The copy is answered as the first was, not sent.
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    again = dataclasses.replace(delivery("send_message", body), redelivered=True)
    rig.dispatch.on_command(again, 1.0)
    assert rig.broker.failed()[-1] == (again.tag, "unknown_instance") and rec.child.commands("send") == []


def test_a_send_in_flight_when_its_node_lost_the_key_is_not_refused_as_unknown_when_it_comes_back(rig):
    # The soak's sequence: this node (the router too) hands a send to its
    # session, which sends it; the loop stands still past the lease before
    # it reads the answer, so the renewal finds the key lost, the session
    # is dropped and the send put back unanswered.  Its redelivery finds
    # nobody owning the key: it may have gone out, so it fails
    # outcome_unknown (unknown_instance would say it did not) and stays in
    # doubt, and a copy of it meeting the key again is not sent either.
    body = {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi", "id": "c1"}
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    first = delivery("send_message", body)
    rig.dispatch.on_command(first, 1.0)
    assert len(rec.child.commands("send")) == 1
    del rig.store.owners["k"]  # the lease ran out while the loop stood still
    rig.node._renew_leases(30.0)
    assert not rig.sessions.has("k") and rig.broker.requeued == [first.tag]
    again = dataclasses.replace(delivery("send_message", body), redelivered=True)
    rig.dispatch.on_command(again, 31.0)
    assert rig.broker.failed() == [(again.tag, "outcome_unknown")]
    assert rig.store.send_record("k", "c1") == "pending"

    rec, _ = rig.start("k", now=32.0)
    rig.make_ready(rec, now=32.0)
    copy = delivery("wa.node.node-a", body, headers={"x-queue": "send_message", "x-routed-by": "node-b"})
    rig.dispatch.on_command(copy, 33.0)
    assert rig.broker.failed()[-1] == (copy.tag, "outcome_unknown") and rec.child.commands("send") == []


def test_routing_waits_while_redis_cannot_say(rig):
    rig.store.up = False
    d = delivery("destroy_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert not rig.broker.failed() and not rig.broker.published
    rig.store.up = True
    rig.dispatch.retry_parked(1.0)
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]


def test_a_command_in_this_nodes_own_queue_is_carried_out_here(rig):
    rig.start("k")
    rig.make_ready(rig.sessions.get("k"))
    d = delivery("wa.node.node-a", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi"},
                 headers={"x-queue": "send_message"})
    rig.dispatch.on_command(d, 1.0)
    assert rig.sessions.get("k").child.commands("send")[0]["text"] == "hi"


def test_the_command_table_and_the_handlers_must_agree(rig):
    handlers = {queue: (lambda cmd, d, now: None) for queue in COMMANDS}
    Dispatch("node-a", rig.bus, rig.ownership, rig.sessions, handlers, Exception)
    del handlers["send_message"]
    with pytest.raises(ValueError, match="send_message"):
        Dispatch("node-a", rig.bus, rig.ownership, rig.sessions, handlers, Exception)


def test_deliveries_wait_in_the_inbox_for_the_loop(rig):
    d = delivery("create_instance", {"key": "k"})
    rig.node.inbox.append(d)  # what a consumer callback does
    assert not rig.sessions.has("k")
    rig.node._dispatch_commands(0.0)
    assert rig.sessions.has("k") and not rig.node.inbox


def test_a_delivery_from_a_connection_since_lost_is_left_to_its_redelivery(rig):
    d = delivery("create_instance", {"key": "k"})
    rig.node.inbox.append(d)
    rig.broker.generation = 2  # reconnected: the broker puts d back in its queue
    rig.node._dispatch_commands(0.0)
    assert not rig.sessions.has("k") and not rig.node.inbox


# ------------------------------------------- re-create races (issue 11)
def test_a_create_for_a_key_stopping_here_waits_then_starts_like_a_first_create(rig):
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    rig.dispatch.on_command(delivery("destroy_instance", {"key": "k"}), 1.0)
    again = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(again, 1.1)
    assert again.tag not in rig.broker.acked and again.tag not in rig.broker.requeued
    assert len(rig.spawner.children) == 1  # nothing starts before the stop is over
    rig.exit(rec, 0, 2.0)  # stopped: the lease is released
    assert "k" not in rig.store.owners and not rig.sessions.has("k")
    rig.dispatch.retry_parked(2.0)
    # Claimed anew, started, acked: its QR code goes to Redis as the owner's.
    new = rig.sessions.get("k")
    assert new.state == S.STARTING and len(rig.spawner.children) == 2
    assert rig.ownership.may_run("k") and rig.store.owners["k"].startswith("node-a:")
    assert again.tag in rig.broker.acked
    rig.say(new, {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1}, now=2.5)
    assert ("qr", "k", "a,b,c,d,e") in rig.store.writes


def test_a_create_for_a_key_stopping_on_another_node_waits_for_its_lease_then_starts(rig):
    rig.store.owners["k"] = "node-b:4"
    rig.store.state_hashes["k"] = {"state": S.STOPPING, "node": "node-b"}
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    rig.dispatch.retry_parked(5.0)
    assert d.tag not in rig.broker.acked and not rig.broker.failed() and rig.spawner.keys() == []
    del rig.store.owners["k"]  # node-b stopped it and let it go
    rig.dispatch.retry_parked(5.25)
    assert rig.sessions.get("k").state == S.STARTING and rig.ownership.may_run("k")
    assert d.tag in rig.broker.acked


def test_a_create_that_meets_a_lease_let_go_between_its_claim_and_its_look_claims_again(rig):
    # The claim fails against node-b's lease; node-b releases the key (lease
    # and state together) before this node reads the state.
    rig.store.owners["k"] = "node-b:4"
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert d.tag not in rig.broker.acked and not rig.broker.failed() and rig.spawner.keys() == []
    del rig.store.owners["k"]
    rig.dispatch.retry_parked(0.25)
    assert rig.sessions.get("k").state == S.STARTING and d.tag in rig.broker.acked


def test_a_create_that_finds_a_new_owner_before_its_first_state_is_acked_once_it_is_written(rig):
    rig.store.owners["k"] = "node-b:4"
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    rig.store.state_hashes["k"] = {"state": S.STARTING, "node": "node-b"}
    rig.dispatch.retry_parked(0.25)
    rig.dispatch.retry_parked(0.75)  # it runs there: settled
    assert d.tag in rig.broker.acked and rig.spawner.keys() == []


def test_a_create_waits_for_a_stop_elsewhere_only_so_long_then_says_why(rig):
    rig.store.owners["k"] = "node-b:4"
    rig.store.state_hashes["k"] = {"state": S.STOPPED, "node": "node-b"}  # went down, lease kept
    d = delivery("create_instance", {"key": "k", "id": "c1"})
    rig.dispatch.on_command(d, 0.0)
    now = 0.0
    while not rig.broker.failed() and now < 1000:
        now += 0.25
        rig.dispatch.retry_parked(now)
    assert rig.broker.failed() == [(d.tag, "instance_busy")]
    assert now == pytest.approx(rig.dispatch.stop_wait, abs=0.3)
    [event] = rig.broker.events("command_failed")
    assert event["key"] == "k" and "node-b" in event["detail"] and event["command_id"] == "c1"


# ------------------------------- destroy and create back to back
def look_until(rig, until: float, now: float = 0.0, step: float = 0.25) -> float:
    """The loop's looks at parked deliveries, every ``step`` up to ``until``."""
    while now < until:
        now = round(now + step, 2)
        rig.dispatch.retry_parked(now)
    return now


def test_a_create_taken_before_the_destroy_published_ahead_of_it_restarts_the_key(rig):
    """A client restarts a session: destroy, then create, published back
    to back.  Two queues: the create may be taken first.  It used to be
    acknowledged as "runs already", and the destroy then ended the key."""
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    create = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(create, 1.0)  # taken first
    destroy = delivery("destroy_instance", {"key": "k"})
    rig.dispatch.on_command(destroy, 1.01)
    assert create.tag not in rig.broker.acked and rec.state == S.STOPPING
    rig.exit(rec, 0, 1.5)  # stopped, its lease let go, the destroy done
    assert destroy.tag in rig.broker.acked and not rig.sessions.has("k")
    look_until(rig, 2.0, now=1.0)
    new = rig.sessions.get("k")  # started anew by the create, claimed as any first create
    assert new is not None and new.state == S.STARTING and len(rig.spawner.children) == 2
    assert create.tag in rig.broker.acked and rig.ownership.may_run("k")
    assert [e["state"] for e in rig.broker.events("state_instance")][-3:] == [S.STOPPING, S.STOPPED, S.STARTING]


def test_a_create_of_a_key_stopped_on_another_node_meanwhile_starts_it_here(rig):
    """The same across nodes: the create comes to this node while the key
    runs on node-b, whose router hop brings the destroy a moment later."""
    rig.store.owners["k"] = "node-b:7"
    rig.store.state_hashes["k"] = {"state": S.READY, "node": "node-b"}
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    rig.store.state_hashes["k"] = {"state": S.STOPPING, "node": "node-b"}  # node-b took the destroy
    look_until(rig, 0.25)
    del rig.store.owners["k"], rig.store.state_hashes["k"]  # stopped and let go
    look_until(rig, 0.5, now=0.25)
    assert rig.sessions.get("k").state == S.STARTING and d.tag in rig.broker.acked


def test_a_create_of_a_key_that_stays_running_is_acked_after_the_settle_and_starts_nothing(rig):
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 1.0)
    look_until(rig, 1.25, now=1.0)
    assert d.tag not in rig.broker.acked
    look_until(rig, 1.5, now=1.25)
    assert d.tag in rig.broker.acked and len(rig.spawner.children) == 1 and rec.state == S.READY
    assert not rig.dispatch._parked and not rig.dispatch._settling_since  # nothing kept of it


def test_a_failed_session_lets_its_key_go_to_a_create_on_a_healthy_node(rig):
    rec, _ = rig.start("k")
    rig.exit(rec, EXIT_CANNOT_START, 1.0)
    assert rec.state == S.FAILED and "k" not in rig.store.owners
    rig.store.owners["k"] = "node-b:9"  # a healthy node took it
    rig.store.state_hashes["k"] = {"state": S.STARTING, "node": "node-b"}
    # Commands for the key go to node-b, not to the failed record here.
    d = delivery("destroy_instance", {"key": "k"})
    rig.dispatch.on_command(d, 2.0)
    assert [i.body for i in rig.broker.forwarded("wa.node.node-b")] == [d.body]
    again = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(again, 2.0)
    rig.dispatch.retry_parked(2.5)
    assert again.tag in rig.broker.acked and len(rig.spawner.children) == 1  # runs on node-b


def test_a_failed_session_nobody_took_is_still_destroyed_here(rig):
    rec, _ = rig.start("k")
    rig.exit(rec, EXIT_CANNOT_START, 1.0)
    d = delivery("destroy_instance", {"key": "k"})
    rig.dispatch.on_command(d, 2.0)
    assert not rig.sessions.has("k") and d.tag in rig.broker.acked


# ------------------------------------------------- caps under bursts
def test_a_burst_of_40_creates_starts_exactly_the_cap_and_puts_the_rest_back(tmp_path):
    rig = node_rig(tmp_path, max_sessions=3)
    rig.node.gate.sample_load(0.0)
    creates = [delivery("create_instance", {"key": f"k{i}"}) for i in range(40)]
    rig.node.inbox.extend(creates)  # all at once, as a broker with a big prefetch would hand them over
    rig.node._act(0.0)
    assert len(rig.spawner.children) == 3 and rig.sessions.count() == 3
    assert rig.broker.acked == [d.tag for d in creates[:3]]
    assert rig.broker.requeued == [d.tag for d in creates[3:]]  # back in the queue, not failed
    assert not rig.broker.failed() and rig.broker.accepting_creates is False  # consumer cancelled in that turn
    assert sorted(rig.store.owners) == ["k0", "k1", "k2"]  # no lease taken for what waits
    # A destroy frees a place: the create consumer is back the same turn.
    rig.dispatch.on_command(delivery("destroy_instance", {"key": "k0"}), 1.0)
    rig.exit(rig.sessions.get("k0"), 0, 1.5)
    rig.node._act(1.5)
    assert rig.broker.accepting_creates is True
    rig.node.inbox.append(creates[3])
    rig.node._act(1.6)
    assert rig.sessions.has("k3") and rig.sessions.count() == 3 and rig.broker.accepting_creates is False


def test_the_create_consumer_is_updated_once_a_turn_and_asking_for_room_changes_nothing(tmp_path):
    rig = node_rig(tmp_path, max_sessions=2)
    rig.node.gate.sample_load(0.0)
    updates = []
    set_accepting = rig.broker.set_accepting_creates
    rig.broker.set_accepting_creates = lambda *args: updates.append(args) or set_accepting(*args)
    assert rig.node.gate.may_create() and rig.node.gate.may_create()
    assert updates == [] and rig.node.admission.accepting  # a question: no consumer touched, nothing decided
    rig.node.inbox.extend(delivery("create_instance", {"key": f"k{i}"}) for i in range(4))
    rig.node._act(0.0)
    assert rig.sessions.count() == 2 and len(updates) == 1  # one update, after the four creates
    assert updates[0][0] is False and not rig.node.gate.may_create()
    # A turn where a session ends, a destroy comes and the load is due: still one update, the last word.
    rig.dispatch.on_command(delivery("destroy_instance", {"key": "k0"}), 1.0)
    rig.exit(rig.sessions.get("k0"), 0, 1.5)
    rig.node.inbox.append(delivery("destroy_instance", {"key": "k1"}))
    rig.node._act(rig.cfg.load_interval + 2)
    assert len(updates) == 2 and updates[1][0] is True


def test_a_create_past_admission_goes_back_to_the_queue(tmp_path):
    load = FakeLoad()
    rig = node_rig(tmp_path, load=load)
    load.reading = Reading(95.0, 10.0)
    for i in range(5):
        rig.node.gate.sample_load(i * 1.0)  # the average reaches 90 %
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 5.0)
    assert rig.broker.requeued == [d.tag] and not rig.sessions.has("k") and rig.spawner.keys() == []


def test_a_send_for_a_key_on_the_move_waits_then_goes_to_its_next_owner(rig):
    rig.store.state_hashes["k"] = {"state": "moving", "node": "node-c"}  # between two owners (a drain)
    d = delivery("send_message", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.broker.failed() == [] and rig.broker.forwarded("wa.node.node-b") == []
    rig.dispatch.retry_parked(0.25)
    assert rig.broker.failed() == []  # still moving: it waits again
    rig.store.owners["k"] = "node-b:4"  # node-b took it
    rig.dispatch.retry_parked(0.5)
    [forwarded] = rig.broker.forwarded("wa.node.node-b")
    assert forwarded.body == d.body and rig.broker.failed() == []


def test_a_send_that_meets_the_next_owner_s_claim_between_its_reads_goes_to_it(rig):
    """The owner read finds nobody (a drain handed the key off); before the
    state is read, node-b claims the key and writes ``starting`` over
    ``moving``: the send goes to node-b, not unknown_instance."""
    rig.store.state_hashes["k"] = {"state": "moving", "node": "node-a"}
    read_state = rig.store.state_of

    def claimed_meanwhile(key):
        rig.store.owners[key] = "node-b:5"
        rig.store.state_hashes[key] = {"state": "starting", "node": "node-b"}
        return read_state(key)

    rig.store.state_of = claimed_meanwhile
    d = delivery("send_message", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.broker.failed() == []
    assert [f.body for f in rig.broker.forwarded("wa.node.node-b")] == [d.body]


def test_a_command_in_our_own_queue_for_a_key_that_left_is_routed_again(rig):
    rig.store.owners["k"] = "node-b:4"
    d = delivery("wa.node.node-a", {"key": "k", "chat_id": "5511999999999@c.us", "message": "hi"},
                 {"x-queue": "send_message"})
    rig.dispatch.on_command(d, 0.0)
    assert [f.body for f in rig.broker.forwarded("wa.node.node-b")] == [d.body]
    gone = delivery("wa.node.node-a", {"key": "nobody", "chat_id": "5511999999999@c.us", "message": "hi"},
                    {"x-queue": "send_message"})
    rig.dispatch.on_command(gone, 0.0)
    assert rig.broker.failed() == [(gone.tag, "unknown_instance")]


def send(key: str = "k", cid: str = "s1"):
    return delivery("send_message", {"key": key, "chat_id": "5511999999999@c.us", "message": "hi", "id": cid})


def parked_until(rig, start: float, end: float, step: float = 0.25) -> float:
    """Turns of the parked deliveries from ``start`` to ``end``; ``end``."""
    t = start
    while t < end:
        t = round(t + step, 2)
        rig.dispatch.retry_parked(t)
    return t


def test_a_send_for_a_key_lost_with_its_node_waits_for_the_failover_s_next_owner(tmp_path):
    """FAILOVER=auto: a send published while the key's node was lost (its
    lease ran out, its state outlived it) waits, as a send waits for a
    restart, and goes to the node the failover started the key on."""
    rig = node_rig(tmp_path, failover="auto")
    rig.store.state_hashes["k"] = {"state": "ready", "node": "node-b"}  # node-b's lease ran out: no owner
    before_scan = send(cid="s1")
    rig.dispatch.on_command(before_scan, 0.0)
    rig.store.state_hashes["k"] = {"state": "lost", "node": "node-b"}  # the router's scan found it
    rig.node.failover.lost("k", "node-b")
    after_scan = send(cid="s2")
    rig.dispatch.on_command(after_scan, 1.0)
    # Its create waits its turn in the failover's stagger (a dead node's many
    # keys): the sends wait on, past SEND_HOLD, and the lost state's TTL ran out.
    del rig.store.state_hashes["k"]
    t = parked_until(rig, 1.0, 1.0 + 2 * rig.cfg.send_hold)
    assert rig.broker.failed() == [] and rig.broker.forwarded("wa.node.node-c") == []
    rig.node.failover.tick(t)  # its create goes out
    assert [orjson.loads(i.body) for i in rig.broker.forwarded("create_instance")] == [{"key": "k"}]
    t = parked_until(rig, t, t + rig.cfg.send_hold - 1)
    assert rig.broker.failed() == []
    rig.store.owners["k"] = "node-c:9"  # node-c took the create
    parked_until(rig, t, t + 0.25)
    assert [f.body for f in rig.broker.forwarded("wa.node.node-c")] == [before_scan.body, after_scan.body]
    assert rig.broker.failed() == []


def test_a_send_for_a_lost_key_no_node_takes_fails_after_send_hold(tmp_path):
    rig = node_rig(tmp_path, failover="auto")
    rig.store.state_hashes["k"] = {"state": "lost", "node": "node-b"}
    d = send()
    rig.dispatch.on_command(d, 0.0)
    t = parked_until(rig, 0.0, rig.cfg.send_hold - 0.25)
    assert rig.broker.failed() == []
    parked_until(rig, t, rig.cfg.send_hold)
    assert rig.broker.failed() == [(d.tag, "unknown_instance")]
    assert rig.dispatch._lost_since == {}


def test_a_send_for_a_lost_key_fails_at_once_where_nothing_brings_it_back(tmp_path):
    manual = node_rig(tmp_path / "manual")  # FAILOVER=manual: clients start lost keys themselves
    manual.store.state_hashes["k"] = {"state": "lost", "node": "node-b"}
    d = send()
    manual.dispatch.on_command(d, 0.0)
    assert manual.broker.failed() == [(d.tag, "unknown_instance")]
    auto = node_rig(tmp_path / "auto", failover="auto")
    auto.store.state_hashes["k"] = {"state": "failed", "node": "node-b"}  # let go on purpose: not lost
    failed, destroyed = send("k"), send("gone")
    auto.dispatch.on_command(failed, 0.0)
    auto.dispatch.on_command(destroyed, 0.0)  # no state at all
    assert auto.broker.failed() == [(failed.tag, "unknown_instance"), (destroyed.tag, "unknown_instance")]
