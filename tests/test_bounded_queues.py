"""Queues nobody may read stay bounded (PROTOCOL v1.1, "Bounded queues"):
the policy on the four old event queues and ``wa.dead_letter``, and dead
letters cut to ``DEAD_LETTER_MAX_BODY``.  The single-machine deploy's own
policy is checked in test_deploy.py."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from support import TEST_VHOST, node_rig, rabbitmqctl, wait_for
from wwnode.amqp.topology import BOUNDED_POLICY_NAME, BOUNDED_QUEUES, COMMAND_QUEUES, Delivery, bounded_policy

PROTOCOL_DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"  # its "Bounded queues"
SHORT_TTL = f"{BOUNDED_POLICY_NAME}-short-ttl"


def dead_letters(broker) -> list:
    return [i for i in broker.published if i.routing_key == "wa.dead_letter"]


def test_a_dead_letter_over_the_limit_is_kept_cut_with_its_size(tmp_path):
    rig = node_rig(tmp_path, dead_letter_max_body=1024)
    big = Delivery("create_instance", 1, 1, False, b"x" * 10_000, {})
    small = Delivery("create_instance", 2, 1, False, b"y" * 1024, {})
    for d in (big, small):
        rig.dispatch.on_command(d, 0.0)
    cut, whole = dead_letters(rig.broker)
    assert (cut.body, cut.headers["x-original-size"], cut.headers["x-reason"]) == (b"x" * 1024, 10_000, "not_json")
    assert whole.body == b"y" * 1024 and "x-original-size" not in whole.headers
    assert [e["reason"] for e in rig.broker.events("command_failed")] == ["not_json", "not_json"]
    rig.broker.confirm_all()
    assert rig.broker.acked == [1, 2]


def test_the_policy_names_the_bounded_queues_only():
    pattern, definition = bounded_policy(100, 60)
    assert all(re.search(pattern, q) for q in BOUNDED_QUEUES)
    assert not any(re.search(pattern, q) for q in COMMAND_QUEUES + ("wa.node.n1", "wa.reroute", "x_message_instance"))
    assert json.loads(definition) == {"max-length": 100, "message-ttl": 60_000}
    with pytest.raises(ValueError):
        bounded_policy(0, 60)


def test_the_docs_show_the_policy_for_a_broker_of_ones_own():
    pattern, definition = bounded_policy(100_000, 7 * 24 * 3600)
    line = shlex.join(["rabbitmqctl", "set_policy", "-p", "/", "--apply-to", "queues", BOUNDED_POLICY_NAME,
                       pattern, definition])
    assert line in PROTOCOL_DOC.read_text()


@pytest.mark.services
def test_a_10_mb_rejected_body_is_dead_lettered_cut(fake_nodes, rabbit):
    fake_nodes("node-dl")
    body = b"\xff" * (10 * 1024 * 1024)  # not even UTF-8
    rabbit.publish("send_message", body)
    rabbit.expect("command_failed", command="send_message", reason="not_json", timeout=60)

    def dead_letter():
        method, props, got = rabbit.ch.basic_get("wa.dead_letter", auto_ack=True)
        return (props, got) if method else None

    props, got = wait_for(dead_letter, timeout=30, what="the dead letter")
    assert got == body[:1024 * 1024]  # DEAD_LETTER_MAX_BODY, its default
    assert props.headers["x-original-size"] == len(body) and props.headers["x-reason"] == "not_json"
    assert rabbit.depth("send_message")[0] == 0  # taken off its queue, once


def queue_column(column: str) -> dict[str, str]:
    """Each queue of the test's virtual host, and this column of it."""
    out = rabbitmqctl("list_queues", "-p", TEST_VHOST, "--quiet", "--no-table-headers", "name", column).stdout
    return {name: rest.strip() for name, _, rest in (line.partition("\t") for line in out.decode().splitlines())}


@pytest.mark.services
def test_the_policy_bounds_the_queues_nobody_reads(rabbit):
    # Only this test's virtual host: the policy goes with it at the end.
    pattern, definition = bounded_policy(3, 3600)
    rabbitmqctl("set_policy", "-p", TEST_VHOST, "--apply-to", "queues", BOUNDED_POLICY_NAME, pattern, definition)
    try:
        wait_for(lambda: all(queue_column("policy").get(q) == BOUNDED_POLICY_NAME for q in BOUNDED_QUEUES),
                 timeout=30, interval=0.5, what="the policy on the bounded queues")
        assert queue_column("policy")["create_instance"] == ""  # commands are never dropped
        for queue in ("authenticated_instance", "wa.dead_letter"):
            for n in range(5):
                rabbit.publish(queue, {"n": n})
            wait_for(lambda: rabbit.depth(queue)[0] == 3, what=f"{queue} cut to its length")
            kept = []
            while (got := rabbit.ch.basic_get(queue, auto_ack=True))[0]:
                kept.append(json.loads(got[2])["n"])
            assert kept == [2, 3, 4]  # the oldest went (drop-head)

        # And none waits past its TTL (a second policy of higher priority,
        # so the queue shows when it has taken it).
        pattern, definition = bounded_policy(3, 1)
        rabbitmqctl("set_policy", "-p", TEST_VHOST, "--apply-to", "queues", "--priority", "1", SHORT_TTL, pattern,
                    definition)
        wait_for(lambda: queue_column("policy").get("message_instance") == SHORT_TTL, timeout=30, interval=0.5,
                 what="the short TTL on message_instance")
        rabbit.publish("message_instance", {"n": 0})
        wait_for(lambda: rabbit.depth("message_instance")[0] == 0, timeout=30, interval=0.2,
                 what="the message to expire")
    finally:
        for name in (BOUNDED_POLICY_NAME, SHORT_TTL):
            rabbitmqctl("clear_policy", "-p", TEST_VHOST, name, check=False)
