"""Placement of creates by consumer priority (issue 12): the rule
(``wwnode/placement.py``) as units, then the broker placing bursts on real
nodes (RabbitMQ, Redis, node processes with fake sessions)."""

from __future__ import annotations

from collections import Counter

import pytest

from support import heartbeats, wait_for
from wwnode.placement import MARGIN, SPAN, CreatePriority, bucket_of, headroom, prefetch_of, priority_of


# ------------------------------------------------------------------ the rule
def test_headroom_is_the_load_left_under_admit_high_or_the_free_slots_whichever_is_less():
    assert headroom(0, 0.0, 0.0, 90.0) == 100.0
    assert headroom(3, 45.0, 10.0, 90.0) == pytest.approx(50.0)  # the busier reading counts
    assert headroom(3, 10.0, 45.0, 90.0) == pytest.approx(50.0)
    assert headroom(0, 95.0, 0.0, 90.0) == 0.0  # past ADMIT_HIGH: none, never negative
    assert headroom(8, 9.0, 0.0, 90.0, max_sessions=10) == pytest.approx(20.0)  # slots scarcer than load
    assert headroom(2, 72.0, 0.0, 90.0, max_sessions=10) == pytest.approx(20.0)  # load scarcer than slots
    assert headroom(12, 0.0, 0.0, 90.0, max_sessions=10) == 0.0


def test_buckets_of_ten_points_change_only_past_a_margin():
    assert [bucket_of(r) for r in (0, 9.9, 10, 55, 89.9, 90, 100)] == [0, 0, 1, 5, 8, 9, 9]
    # Hovering at an edge keeps the bucket it had...
    assert bucket_of(50 - MARGIN / 2, previous=5) == 5
    assert bucket_of(60 + MARGIN / 2, previous=5) == 5
    # ...until the reading is past the margin.
    assert bucket_of(50 - MARGIN - 0.1, previous=5) == 4
    assert bucket_of(60 + MARGIN + 0.1, previous=5) == 6
    assert bucket_of(100, previous=9) == 9 and bucket_of(88.5, previous=9) == 9 and bucket_of(87, previous=9) == 8


def test_more_headroom_always_wins_and_fewer_sessions_decide_within_a_bucket():
    assert priority_of(9, 0) > priority_of(9, 1) > priority_of(9, 50) > priority_of(8, 0)
    assert priority_of(1, 0) > priority_of(0, 0) > priority_of(0, 5000)  # sessions past the span: capped
    assert priority_of(0, 5000) == -(SPAN - 1)


def test_a_node_with_more_room_holds_more_creates_at_once_but_never_past_its_free_slots():
    assert [prefetch_of(b) for b in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert prefetch_of(9, free_slots=2) == 2
    assert prefetch_of(9, free_slots=0) == 1  # full: admission cancels the consumer anyway


def test_a_node_priority_and_prefetch_follow_its_sessions_and_load():
    prio = CreatePriority(admit_high=90.0)
    idle, idle_prefetch = prio(0, 1.0, 5.0)
    assert prio(1, 1.0, 5.0) == (idle - 1, idle_prefetch)  # a session started: another idle node comes first
    busy = CreatePriority(admit_high=90.0)
    calm = CreatePriority(admit_high=90.0)
    busy_terms, calm_terms = busy(1, 60.0, 5.0), calm(40, 5.0, 5.0)
    assert busy_terms[0] < calm_terms[0] and busy_terms[1] < calm_terms[1]  # a loaded machine loses to a calm one
    nearly_full = CreatePriority(admit_high=90.0, max_sessions=10)(9, 0.0, 0.0)
    roomy = CreatePriority(admit_high=90.0, max_sessions=40)(9, 0.0, 0.0)
    assert nearly_full[0] < roomy[0] and nearly_full[1] == 1 < roomy[1]


# ------------------------------------------------------------ on the broker
def _placed(rabbit, keys) -> Counter:
    def all_qr() -> bool:
        return len({e["key"] for e in rabbit.find("qr_instance") if e["key"] in keys}) == len(keys)

    wait_for(all_qr, timeout=30, what="a QR code for every create")
    return Counter(e["node"] for e in rabbit.find("qr_instance") if e["key"] in keys)


def _two_consuming(rabbit, redis_client) -> None:
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2 and len(heartbeats(redis_client)) == 2,
             timeout=30, what="both nodes consuming creates")


@pytest.mark.services
def test_two_idle_nodes_share_ten_creates_at_once_five_and_five(fake_nodes, rabbit, redis_client):
    fake_nodes("node-a")
    fake_nodes("node-b")
    _two_consuming(rabbit, redis_client)
    keys = [f"even-{i}" for i in range(10)]
    for key in keys:
        rabbit.publish("create_instance", {"key": key})
    placed = _placed(rabbit, keys)
    assert sorted(placed) == ["node-a", "node-b"] and abs(placed["node-a"] - placed["node-b"]) <= 2, placed
    assert not rabbit.find("command_failed")


@pytest.mark.services
def test_a_node_already_running_many_sessions_gets_fewer_of_a_burst_than_an_idle_one(fake_nodes, rabbit,
                                                                                      redis_client):
    fake_nodes("node-a", max_sessions=10)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 1, timeout=30, what="node-a consuming creates")
    early = [f"early-{i}" for i in range(6)]
    for key in early:
        rabbit.publish("create_instance", {"key": key})
    assert _placed(rabbit, early) == {"node-a": 6}
    fake_nodes("node-b", max_sessions=10)
    _two_consuming(rabbit, redis_client)
    # What each node tells of itself: the busier one asks for creates less.
    wait_for(lambda: heartbeats(redis_client).get("node-b", {}).get("create_priority") is not None,
             what="node-b's heartbeat")
    hb = heartbeats(redis_client)
    assert int(hb["node-a"]["create_priority"]) < int(hb["node-b"]["create_priority"])
    assert int(hb["node-a"]["create_prefetch"]) < int(hb["node-b"]["create_prefetch"])
    burst = [f"burst-{i}" for i in range(10)]
    for key in burst:
        rabbit.publish("create_instance", {"key": key})
    placed = _placed(rabbit, burst)
    # node-b, first in line and holding more at once, takes most of it.
    assert placed["node-b"] > placed["node-a"], placed
    assert not rabbit.find("command_failed")
