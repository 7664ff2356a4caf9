"""Admission on a running node: creates wait in their queue while it is
full, commands for its running sessions keep flowing."""

from __future__ import annotations

import pytest

from support import new_phone, wait_for
from test_node_e2e import create_ready

pytestmark = pytest.mark.browser


def test_a_full_node_leaves_creates_queued_and_serves_its_sessions(nodes, rabbit, control):
    nodes(max_sessions=1)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-first", phone)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 0, what="the create consumer to be cancelled")
    rabbit.publish("create_instance", {"key": "k-second"})
    rabbit.publish("send_message", {"key": "k-first", "chat_id": f"{friend}@c.us", "message": "still here", "id": "s"})
    rabbit.expect("message_sent_instance", command_id="s")
    assert rabbit.depth("create_instance") == (1, 0)  # waiting, for this node or another
    assert not rabbit.find("state_instance", key="k-second")

    rabbit.publish("destroy_instance", {"key": "k-first"})
    rabbit.expect("state_instance", key="k-first", state="stopped")
    rabbit.expect("qr_instance", key="k-second")  # room again: taken


def test_real_readings_over_a_low_threshold_stop_creates(nodes, rabbit):
    # The machine's real memory use is above 1 %: the node must not take creates.
    node = nodes(admit_high=1, admit_low=0.5)
    rabbit.publish("create_instance", {"key": "k-never"})
    wait_for(lambda: "no new sessions" in node.log_text(), what="the node to pause admission")
    assert rabbit.depth("create_instance") == (1, 0)
    assert not rabbit.find("state_instance", key="k-never")
