"""Faults an operator or a client brings about with the node's public
surface only (issue 11): a create racing a destroy, here and across nodes;
a burst of creates over a cap; a failed key; a node stopped while sends
wait; SIGHUP; a second node under the same name.  Real RabbitMQ, Redis and
node processes, fake session processes."""

from __future__ import annotations

import signal

import pytest

from support import create_ready, heartbeats, new_phone, owner, wait_for

pytestmark = pytest.mark.services


def test_a_create_while_the_key_is_stopping_here_starts_it_afresh_with_its_lease_and_qr(fake_nodes, rabbit, fake,
                                                                                         redis_client):
    fake_nodes()
    fake.script("k-re", stop_after_ms=1500)  # its page closes slowly
    rabbit.publish("create_instance", {"key": "k-re"})
    first = rabbit.expect("qr_instance", key="k-re")
    rabbit.publish("destroy_instance", {"key": "k-re"})
    rabbit.expect("state_instance", key="k-re", state="stopping")
    rabbit.publish("create_instance", {"key": "k-re"})
    rabbit.expect("state_instance", key="k-re", state="stopped")
    second = rabbit.expect("qr_instance", key="k-re")
    assert second["qr"] != first["qr"] and fake.starts("k-re") == 2
    wait_for(lambda: redis_client.get("instances:k-re:qr_code") == second["qr"], what="the new QR in Redis")
    assert owner(redis_client, "k-re") == "node-a"
    # The state follows the QR code into Redis (qr_instance goes out with the
    # code; the state's own event, state_instance qr, after it is written).
    wait_for(lambda: redis_client.hget("instances:k-re:state", "state") == "qr", what="the state qr in Redis")


def test_a_create_that_meets_the_key_stopping_on_another_node_waits_and_starts_it(fake_nodes, rabbit, fake,
                                                                                  redis_client):
    fake_nodes("node-a", max_sessions=1)
    fake.script("k-move", stop_after_ms=2000)
    rabbit.publish("create_instance", {"key": "k-move"})
    rabbit.expect("qr_instance", key="k-move", node="node-a")
    fake_nodes("node-b")
    # node-a is full: only node-b takes creates, and a stopping session
    # still holds node-a's place.
    wait_for(lambda: rabbit.depth("create_instance")[1] == 1 and "node-b" in heartbeats(redis_client),
             timeout=30, what="node-b alone taking creates")
    rabbit.publish("destroy_instance", {"key": "k-move"})
    rabbit.expect("state_instance", key="k-move", state="stopping", node="node-a")
    rabbit.publish("create_instance", {"key": "k-move"})
    rabbit.expect("state_instance", key="k-move", state="stopped", node="node-a")
    qr = rabbit.expect("qr_instance", key="k-move", node="node-b")
    assert owner(redis_client, "k-move") == "node-b"
    wait_for(lambda: redis_client.get("instances:k-move:qr_code") == qr["qr"], what="node-b's QR in Redis")
    assert not rabbit.find("command_failed", key="k-move")


def test_a_key_that_failed_is_free_at_once_for_the_next_create(fake_nodes, rabbit, fake, redis_client):
    fake_nodes()
    fake.script("k-bad", start="cannot_start")
    rabbit.publish("create_instance", {"key": "k-bad"})
    assert rabbit.expect("disconnected_instance", key="k-bad")["reason"] == "cannot_start"
    wait_for(lambda: owner(redis_client, "k-bad") is None, what="the lease let go")
    assert redis_client.hget("instances:k-bad:state", "state") == "failed"
    fake.script("k-bad")  # whatever was wrong is fixed
    rabbit.publish("create_instance", {"key": "k-bad"})
    rabbit.expect("qr_instance", key="k-bad")
    assert owner(redis_client, "k-bad") == "node-a"


def test_forty_creates_at_once_on_a_cap_of_three_start_three_and_the_rest_wait(fake_nodes, rabbit, fake,
                                                                             redis_client):
    node = fake_nodes(max_sessions=3)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 1, what="the create consumer")
    keys = [f"burst-{i}" for i in range(40)]
    for key in keys:
        rabbit.publish("create_instance", {"key": key})
    started = lambda: [k for k in keys if fake.starts(k)]  # noqa: E731

    def three_run_37_wait() -> bool:
        rabbit.pump(0.05)
        return (len(started()) == 3 and len(rabbit.find("qr_instance")) == 3
                and rabbit.depth("create_instance") == (37, 0)
                and heartbeats(redis_client).get("node-a", {}).get("sessions") == "3")

    wait_for(three_run_37_wait, timeout=20, what="three sessions, 37 creates waiting, no consumer")
    assert not rabbit.find("command_failed")
    # Each destroy lets the next create in.
    for n in (1, 2):
        running = [k for k in started() if not rabbit.find("state_instance", key=k, state="stopped")]
        rabbit.publish("destroy_instance", {"key": running[0]})
        rabbit.expect("state_instance", key=running[0], state="stopped")
        wait_for(lambda: len(started()) == 3 + n and rabbit.depth("create_instance") == (37 - n, 0),
                 what=f"create {3 + n} taken, the others left waiting")
    # Another node with room takes what waits, up to its own cap.
    fake_nodes("node-b", max_sessions=3)
    wait_for(lambda: len(started()) == 8 and rabbit.depth("create_instance") == (32, 0), what="node-b taking three")
    assert node.alive() and rabbit.depth("wa.dead_letter")[0] == 0


def test_a_node_stopped_while_sends_wait_answers_each_once_after_its_restart(fake_nodes, rabbit, fake):
    node = fake_nodes(backoff_initial=30, backoff_max=30)  # a crashed session waits long to restart
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-held", phone)
    fake.act("k-held", {"do": "crash"})
    rabbit.expect("state_instance", key="k-held", state="restarting")
    ids = [f"held-{i}" for i in range(3)]
    for cid in ids:
        rabbit.publish("send_message", {"key": "k-held", "chat_id": f"{friend}@c.us", "message": cid, "id": cid})
    wait_for(lambda: rabbit.depth("send_message")[0] == 0, what="the sends held by the node")
    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(30) == 0
    assert rabbit.depth("wa.dead_letter")[0] == 0  # not final: nothing failed
    node.start()
    for cid in ids:
        rabbit.expect("message_sent_instance", command_id=cid)
    rabbit.pump(0.5)
    assert not rabbit.find("command_failed") and rabbit.depth("wa.dead_letter")[0] == 0
    assert sorted(m["body"] for m in fake.sent_by(phone)) == ids  # each once
    assert sorted(e["command_id"] for e in rabbit.find("message_sent_instance")) == ids


def test_sighup_stops_the_node_gracefully(fake_nodes, rabbit, fake, redis_client):
    node = fake_nodes()
    rabbit.publish("create_instance", {"key": "k-hup"})
    rabbit.expect("qr_instance", key="k-hup")
    assert redis_client.get("instances:k-hup:qr_code")
    node.proc.send_signal(signal.SIGHUP)
    assert node.proc.wait(30) == 0
    rabbit.expect("state_instance", key="k-hup", state="stopped")
    assert redis_client.get("instances:k-hup:qr_code") is None
    assert redis_client.hget("instances:k-hup:state", "state") == "stopped"
    assert "got SIGHUP: stopping" in node.log_text()


def test_a_second_node_with_the_same_name_refuses_to_start(fake_nodes, rabbit, fake, redis_client):
    first = fake_nodes("node-a")
    phone = new_phone()
    create_ready(rabbit, fake, "k-mine", phone)
    wait_for(lambda: heartbeats(redis_client).get("node-a", {}).get("pid") == str(first.proc.pid),
             what="node-a's heartbeat")
    second = fake_nodes("node-a")  # a copied .env, say
    assert second.proc.wait(30) == 3
    assert "node node-a is already running (host" in second.output()
    assert f"pid {first.proc.pid}" in second.output()
    # The first runs on, its session untouched.
    assert first.alive() and fake.starts("k-mine") == 1
    assert heartbeats(redis_client)["node-a"]["pid"] == str(first.proc.pid)
    friend = new_phone()
    rabbit.publish("send_message", {"key": "k-mine", "chat_id": f"{friend}@c.us", "message": "still here", "id": "s1"})
    rabbit.expect("message_sent_instance", command_id="s1")
