"""Several nodes on one RabbitMQ and Redis: one owner per key, commands
routed to it, placement by room, and what happens when a node dies or is
paused past its lease.  Real RabbitMQ, Redis and node processes; the
sessions are fake session processes (what is tested is the fleet, not the
page)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from support import all_gone, counter, create_ready, heartbeats, new_phone, owner, pid_gone, processes_using, wait_for

pytestmark = pytest.mark.services

# A paused router's connection is dropped by the broker after two AMQP
# heartbeats; short ones let another node take over soon.
FAST_CLUSTER = {"lease_ttl": 3, "heartbeat_interval": 0.5, "node_queue_ttl": 4, "amqp_heartbeat": 2}


def router_of(redis_client, nodes) -> object:
    """The one of these nodes whose heartbeat says it routes."""
    found = wait_for(lambda: [n for n in nodes if heartbeats(redis_client).get(n.node_id, {}).get("router") == "1"],
                     what="a router among these nodes")
    return found[0]


def create_one_per_node(rabbit, fake, keys: list[str]) -> dict[str, str]:
    """Create sessions on a fleet of nodes capped at one session each: one
    create at a time, each once the node that took the one before has
    stopped taking creates (the cap acts at the node's next load sample, and
    a fake session is ready well before that).  Their phones, by key."""
    phones = {}
    for key in keys:
        consumers = rabbit.depth("create_instance")[1]
        phones[key] = new_phone()
        create_ready(rabbit, fake, key, phones[key])
        wait_for(lambda: rabbit.depth("create_instance")[1] == consumers - 1, what="the full node to stop creates")
    return phones


@pytest.fixture
def three(fake_nodes, redis_client, rabbit):
    started = [fake_nodes(f"node-{c}", max_sessions=1, **FAST_CLUSTER) for c in "abc"]
    wait_for(lambda: len(heartbeats(redis_client)) == 3, what="three heartbeats")
    wait_for(lambda: rabbit.depth("create_instance")[1] == 3, what="three create consumers")
    return started


def test_commands_reach_the_owner_wherever_they_are_published(three, rabbit, fake, redis_client):
    phones = create_one_per_node(rabbit, fake, ["k0", "k1", "k2"])
    owners = {key: owner(redis_client, key) for key in phones}
    assert sorted(owners.values()) == ["node-a", "node-b", "node-c"]  # one each: max_sessions=1
    router = router_of(redis_client, three)

    friend = new_phone()
    for round_ in range(2):
        for key in phones:
            rabbit.publish("send_message", {"key": key, "chat_id": f"{friend}@c.us", "message": f"{key} {round_}",
                                            "id": f"{key}-{round_}"})
    for key, phone in phones.items():
        for round_ in range(2):
            sent = rabbit.expect("message_sent_instance", command_id=f"{key}-{round_}")
            assert sent["node"] == owners[key]
        assert [m["body"] for m in fake.sent_by(phone)] == [f"{key} 0", f"{key} 1"]  # in order

    away = next(k for k, n in owners.items() if n != router.node_id)
    rabbit.publish("destroy_instance", {"key": away})
    stopped = rabbit.expect("state_instance", key=away, state="stopped")
    assert stopped["node"] == owners[away]
    assert redis_client.get(f"instances:{away}:owner") is None

    rabbit.publish("send_message", {"key": "nobody-has-it", "chat_id": f"{friend}@c.us", "message": "x"})
    assert rabbit.expect("command_failed", key="nobody-has-it")["reason"] == "unknown_instance"


def test_simultaneous_creates_of_one_key_make_one_session(fake_nodes, rabbit, redis_client, fake):
    for c in "abc":
        fake_nodes(f"node-{c}", **FAST_CLUSTER)
    wait_for(lambda: len(heartbeats(redis_client)) == 3, what="three heartbeats")
    wait_for(lambda: rabbit.depth("create_instance")[1] == 3, what="three create consumers")
    for _ in range(6):
        rabbit.publish("create_instance", {"key": "contested"})
    rabbit.expect("qr_instance", key="contested")
    wait_for(lambda: rabbit.depth("create_instance") == (0, 3), what="all creates acknowledged")
    assert len(rabbit.find("state_instance", key="contested", state="starting")) == 1
    assert owner(redis_client, "contested") is not None
    assert fake.starts("contested") == 1


def test_a_full_node_gets_no_creates_while_another_has_room(fake_nodes, rabbit, redis_client):
    # The machine's real readings exceed 1 %.
    full = fake_nodes("node-full", admit_high=1, admit_low=0.5, load_cgroup_root="", **FAST_CLUSTER)
    roomy = fake_nodes("node-roomy", **FAST_CLUSTER)
    wait_for(lambda: heartbeats(redis_client).get("node-full", {}).get("accepting") == "0", what="a full node")
    for i in range(3):
        rabbit.publish("create_instance", {"key": f"placed-{i}"})
    for i in range(3):
        assert rabbit.expect("qr_instance", key=f"placed-{i}")["node"] == "node-roomy"
    assert rabbit.depth("create_instance")[0] == 0
    assert full.alive() and roomy.alive()


def test_killed_node_loses_its_keys_after_the_lease(three, rabbit, fake, redis_client):
    create_one_per_node(rabbit, fake, ["d0", "d1", "d2"])
    router = router_of(redis_client, three)
    victim = next(n for n in three if n is not router)
    key = next(f"d{i}" for i in range(3) if owner(redis_client, f"d{i}") == victim.node_id)
    victim.kill()
    wait_for(lambda: all_gone(processes_using(victim.data_dir)), timeout=15, what="its sessions to die")

    # A command for the dead node's key, published before the lease ran out:
    # routed to its queue, then rerouted and failed after the queue's TTL.
    rabbit.publish("send_message", {"key": key, "chat_id": "5511999990001@c.us", "message": "x", "id": "orphan"})
    lost = rabbit.expect("state_instance", key=key, state="lost", timeout=20)
    assert lost["owner"] == victim.node_id
    assert rabbit.expect("disconnected_instance", key=key)["reason"] == "node_lost"
    failed = rabbit.expect("command_failed", command_id="orphan", timeout=30)
    assert failed["reason"] == "unknown_instance"

    # Re-created on request, elsewhere: the other nodes are at their cap, so
    # make room on one by destroying its session.
    other = next(f"d{i}" for i in range(3) if owner(redis_client, f"d{i}") not in (None, victim.node_id))
    rabbit.publish("destroy_instance", {"key": other})
    rabbit.expect("state_instance", key=other, state="stopped")
    rabbit.publish("create_instance", {"key": key})
    # Its profile stayed on the dead node's machine: elsewhere it starts with a QR.
    again = rabbit.expect("qr_instance", key=key, timeout=60)
    assert again["node"] != victim.node_id
    assert owner(redis_client, key) == again["node"]


def test_a_paused_node_cannot_act_as_owner_after_it_resumes(three, rabbit, fake, redis_client):
    phone = new_phone()
    create_ready(rabbit, fake, "paused-key", phone)
    rabbit.expect("state_instance", key="paused-key", state="starting")  # the first start
    holder = next(n for n in three if n.node_id == owner(redis_client, "paused-key"))
    [session_pid] = holder.session_pids()
    os.kill(holder.proc.pid, signal.SIGSTOP)
    try:
        rabbit.expect("state_instance", key="paused-key", state="lost", timeout=20)
        # Another node takes the key.
        others = [n for n in three if n is not holder]
        rabbit.publish("create_instance", {"key": "paused-key"})
        taken = rabbit.expect("state_instance", key="paused-key", state="starting", timeout=60)
        assert taken["node"] != holder.node_id
        new_owner = owner(redis_client, "paused-key")
        assert new_owner in {n.node_id for n in others}
        resumed_at = time.time() * 1000
    finally:
        os.kill(holder.proc.pid, signal.SIGCONT)
    wait_for(lambda: pid_gone(session_pid), timeout=20, what="the paused node to end its session")
    assert owner(redis_client, "paused-key") == new_owner
    wait_for(lambda: counter(redis_client, holder.node_id, "leases_lost") == 1, what="the node to give the key up")
    late = [e for e in rabbit.find("state_instance", key="paused-key") if e["node"] == holder.node_id
            and e["ts"] > resumed_at]
    assert late == []


def test_router_failover(three, rabbit, fake, redis_client):
    create_one_per_node(rabbit, fake, ["r0", "r1"])
    router = router_of(redis_client, three)
    survivors = [n for n in three if n is not router]
    key = next(f"r{i}" for i in range(2) if owner(redis_client, f"r{i}") != router.node_id)
    router.kill()
    rabbit.publish("send_message", {"key": key, "chat_id": "5511999990001@c.us", "message": "after", "id": "fo"})
    sent = rabbit.expect("message_sent_instance", command_id="fo", timeout=40)
    assert sent["node"] == owner(redis_client, key)
    new_router = router_of(redis_client, survivors)
    assert new_router in survivors


def test_status_prints_the_fleet(three, rabbit, fake, redis_url):
    create_ready(rabbit, fake, "st-1", new_phone())
    env = {**os.environ, "REDIS_URL": redis_url}
    out = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "status", "--json"], env=env, capture_output=True,
                         timeout=30, check=True).stdout
    data = orjson.loads(out)
    assert sorted(data["nodes"]) == ["node-a", "node-b", "node-c"]
    assert data["sessions"]["st-1"]["state"] == "ready"
    for hb in data["nodes"].values():  # the fault counters are there, at zero
        assert {hb[c] for c in ("command_link_losses", "consumers_cancelled", "publishing_blocked",
                                "leases_lost")} == {"0"}
    text = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "status"], env=env, capture_output=True,
                          timeout=30, check=True, text=True).stdout
    assert "node-a" in text and "st-1" in text
