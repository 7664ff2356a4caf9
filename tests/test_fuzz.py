"""Arbitrary bytes and arbitrary JSON on the command queues: never a crash,
every message acknowledged or dead-lettered with a reason."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import wait_for
from wwnode.commands import Command, Rejected, parse

QUEUES = ["create_instance", "destroy_instance", "send_message"]
FIELDS = ["key", "chat_id", "message", "id", "logout", "extra"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
commands = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values | st.text(max_size=70),
                           max_size=6)


@settings(max_examples=400, deadline=None)
@given(queue=st.sampled_from(QUEUES), body=st.binary(max_size=300))
def test_arbitrary_bytes_are_parsed_or_rejected(queue, body):
    try:
        assert isinstance(parse(queue, body), Command)
    except Rejected as r:
        assert r.reason and r.detail


@settings(max_examples=400, deadline=None)
@given(queue=st.sampled_from(QUEUES), doc=commands)
def test_arbitrary_json_objects_are_parsed_or_rejected(queue, doc):
    try:
        cmd = parse(queue, json.dumps(doc).encode())  # json: integers of any size
    except Rejected as r:
        assert r.reason in {"not_json", "not_object", "missing_field", "wrong_type", "bad_key", "bad_chat_id",
                            "bad_lid", "empty_message", "too_long"}
        return
    # What passes is exactly what the contract allows.
    assert isinstance(doc["key"], str) and 1 <= len(doc["key"]) <= 64
    if queue == "send_message":
        assert cmd.chat_id == doc["chat_id"] and cmd.text == doc["message"]


def test_a_message_over_the_text_limit_has_its_own_reason():
    with pytest.raises(Rejected) as r:
        parse("send_message", orjson.dumps({"key": "k", "chat_id": "5511999990001@c.us", "message": "x" * 65537}))
    assert r.value.reason == "too_long"


@pytest.mark.services
def test_a_node_fed_garbage_stays_up_and_answers_everything(fake_nodes, rabbit):
    node = fake_nodes()
    rng = random.Random(20261127)
    sent = 0
    for _ in range(60):
        queue = rng.choice(QUEUES)
        kind = rng.random()
        if kind < 0.3:
            body = rng.randbytes(rng.randint(0, 200))
        elif kind < 0.6:
            body = orjson.dumps({rng.choice(FIELDS): rng.choice([None, 1, "x", [], {}, "../k", "a" * 70])
                                 for _ in range(rng.randint(0, 4))})
        else:
            # Well formed, for keys nobody runs: routed, then failed.
            body = orjson.dumps({"key": f"nobody-{rng.randint(0, 9)}", "chat_id": "5511999990001@c.us",
                                 "message": "hi"})
            if queue == "create_instance":
                queue = "destroy_instance"  # a create would start a session
        rabbit.publish(queue, body)
        sent += 1
    for _ in range(sent):  # each message is answered: expect() fails the test past its timeout
        rabbit.expect("command_failed", timeout=30)
    wait_for(lambda: rabbit.depth("wa.dead_letter")[0] == sent, what="every message dead-lettered")
    assert len(rabbit.find("command_failed")) == sent  # and once only
    for queue in QUEUES:
        assert rabbit.depth(queue)[0] == 0
    assert node.alive()
