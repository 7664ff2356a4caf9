"""Admission on a running node: creates wait in their queue while it is
full, commands for its running sessions keep flowing.  Fake session
processes: admission needs sessions, not browsers."""

from __future__ import annotations

import pytest

from support import create_ready, new_phone, wait_for

pytestmark = pytest.mark.services


def test_a_full_node_leaves_creates_queued_and_serves_its_sessions(fake_nodes, rabbit, fake):
    fake_nodes(max_sessions=1)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-first", phone)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 0, what="the create consumer to be cancelled")
    rabbit.publish("create_instance", {"key": "k-second"})
    rabbit.publish("send_message", {"key": "k-first", "chat_id": f"{friend}@c.us", "message": "still here", "id": "s"})
    rabbit.expect("message_sent_instance", command_id="s")
    assert rabbit.depth("create_instance") == (1, 0)  # waiting, for this node or another
    assert not rabbit.find("state_instance", key="k-second")
    assert [m["body"] for m in fake.sent_by(phone)] == ["still here"]

    rabbit.publish("destroy_instance", {"key": "k-first"})
    rabbit.expect("state_instance", key="k-first", state="stopped")
    rabbit.expect("qr_instance", key="k-second")  # room again: taken


def test_real_readings_over_a_low_threshold_stop_creates(fake_nodes, rabbit, redis_client):
    # The machine's real memory use is above 1 %: the node must not take creates.
    fake_nodes(admit_high=1, admit_low=0.5, load_cgroup_root="")
    rabbit.publish("create_instance", {"key": "k-never"})
    wait_for(lambda: redis_client.hget("nodes:node-a", "accepting") == "0", what="the node to pause admission")
    wait_for(lambda: rabbit.depth("create_instance") == (1, 0), what="the create to wait, unconsumed")
    assert float(redis_client.hget("nodes:node-a", "mem")) > 1
    assert not rabbit.find("state_instance", key="k-never")
