"""Command dispatch: parse, claim, route, park; and when each command is
acknowledged (confirms arrive only when the test says so)."""

from __future__ import annotations

import pytest

from support import delivery, node_rig
from wwnode import states as S
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
                                                    "detail": "chat_id must look like 5511999999999@c.us"}]
    assert d.tag not in rig.broker.acked  # not before the dead letter is safe
    rig.broker.confirm_all()
    assert rig.broker.acked == [d.tag]
    assert rig.counters.get("commands_failed_bad_chat_id") == 1


def test_a_create_claims_the_key_and_starts_it(rig):
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
    assert rig.sessions.get("k").state == S.STARTING and rig.spawner.keys() == ["k"]
    assert rig.ownership.may_run("k") and d.tag in rig.broker.acked


def test_a_create_of_a_key_another_node_owns_is_acked_and_left_alone(rig):
    rig.store.owners["k"] = "node-b:7"
    d = delivery("create_instance", {"key": "k"})
    rig.dispatch.on_command(d, 0.0)
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
    Dispatch("node-a", rig.bus, rig.ownership, rig.sessions.has, handlers, Exception)
    del handlers["send_message"]
    with pytest.raises(ValueError, match="send_message"):
        Dispatch("node-a", rig.bus, rig.ownership, rig.sessions.has, handlers, Exception)


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
