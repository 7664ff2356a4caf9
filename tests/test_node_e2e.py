"""The node end to end, through the public contract only: publish to the old
queues, read Redis, consume events and the old event queues, drive the
stand-in's control API.  Real RabbitMQ, Redis, Chromium and node processes."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from conftest import chrome_processes_under
from support import all_gone, new_phone, wait_for
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

TRICKY = 'quote " backslash \\ </script> newline\n emoji 😀 ' + "x" * 5000


def create_ready(rabbit, control, key: str, phone: str) -> dict:
    rabbit.publish("create_instance", {"key": key})
    qr = rabbit.expect("qr_instance", key=key)
    control.scan(qr["qr"], phone)
    return rabbit.expect("ready_instance", key=key)


def redis_keys_of(r, key: str) -> list[str]:
    return sorted(r.scan_iter(match=f"instances:{key}:*"))


def test_full_lifecycle_through_the_old_contract(nodes, rabbit, redis_client, wa, control):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    rabbit.publish("create_instance", {"key": "shop-1"})
    qr_event = rabbit.expect("qr_instance", key="shop-1")
    qr = wait_for(lambda: redis_client.get("instances:shop-1:qr_code"), what="QR in Redis")
    assert qr == qr_event["qr"] and len(qr.split(",")) == 5
    assert 0 < redis_client.ttl("instances:shop-1:qr_code") <= 60
    for field in ("event", "node", "ts", "id"):
        assert field in qr_event
    assert qr_event["node"] == "node-a"

    control.scan(qr, phone)
    auth = rabbit.expect("authenticated_instance", key="shop-1")
    assert redis_client.get("instances:shop-1:qr_code") is None
    assert rabbit.expect("ready_instance", key="shop-1")["me"] == f"{phone}@c.us"
    legacy = rabbit.legacy("authenticated_instance")
    assert [(e["key"], e["id"]) for e in legacy] == [("shop-1", auth["id"])]

    rabbit.publish("send_message", {"key": "shop-1", "chat_id": f"{friend}@c.us", "message": TRICKY, "id": "c-1"})
    sent = rabbit.expect("message_sent_instance", key="shop-1")
    assert sent["command_id"] == "c-1" and sent["chat_id"] == f"{friend}@c.us"
    recorded = control.sent_by(phone)
    assert [m["body"] for m in recorded] == [TRICKY]
    assert sent["message_id"] == f"true_{friend}@c.us_{recorded[0]['id']}"
    wait_for(lambda: rabbit.depth("send_message") == (0, 1), what="the send to be acknowledged")

    msg_id = control.deliver(phone, friend, "hi shop")
    inbound = rabbit.expect("message_instance", key="shop-1")["message"]
    assert inbound["id"]["id"] == msg_id and inbound["body"] == "hi shop"
    assert inbound["from"] == f"{friend}@c.us" and inbound["fromMe"] is False
    for field in ("id", "body", "type", "timestamp", "from", "to", "author", "fromMe", "hasMedia", "ack",
                  "isForwarded", "mentionedIds"):
        assert field in inbound
    assert [e["message"]["body"] for e in rabbit.legacy("message_instance")] == ["hi shop"]

    control.logout(phone)
    assert rabbit.expect("disconnected_instance", key="shop-1")["reason"] == "LOGOUT"
    assert [e["reason"] for e in rabbit.legacy("disconnected_instance")] == ["LOGOUT"]
    rabbit.expect("state_instance", key="shop-1", state="stopped")
    assert redis_keys_of(redis_client, "shop-1") == []
    wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), what="its Chrome to exit")
    assert not node.profile("shop-1").exists()  # a logged-out profile is useless


def test_destroy_leaves_nothing_behind(nodes, rabbit, redis_client, wa, control):
    node = nodes()
    create_ready(rabbit, control, "k-destroy", new_phone())
    assert chrome_processes_under(node.data_dir)
    rabbit.publish("destroy_instance", {"key": "k-destroy"})
    rabbit.expect("state_instance", key="k-destroy", state="stopped")
    assert redis_keys_of(redis_client, "k-destroy") == []
    wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), what="Chrome to exit")
    assert node.profile("k-destroy").exists()  # kept: a new create resumes without QR
    wait_for(lambda: rabbit.depth("destroy_instance") == (0, 1), what="the destroy to be acknowledged")

    rabbit.publish("create_instance", {"key": "k-destroy"})
    rabbit.expect("ready_instance", key="k-destroy")
    assert rabbit.find("qr_instance", key="k-destroy") and len(rabbit.find("qr_instance", key="k-destroy")) == 1

    rabbit.publish("destroy_instance", {"key": "k-destroy", "logout": True})
    rabbit.expect("state_instance", key="k-destroy", state="stopped")
    assert not node.profile("k-destroy").exists()
    # The logged-out page showed a QR until its browser closed; the stand-in
    # notices the closed link on its next write to it.
    wait_for(lambda: Control(wa.url).pending_qr() == [], what="no QR shown any more")


def test_destroy_while_showing_qr_clears_the_qr(nodes, rabbit, redis_client):
    nodes()
    rabbit.publish("create_instance", {"key": "k-qr"})
    rabbit.expect("qr_instance", key="k-qr")
    assert redis_client.get("instances:k-qr:qr_code")
    rabbit.publish("destroy_instance", {"key": "k-qr"})
    rabbit.expect("state_instance", key="k-qr", state="stopped")
    assert redis_keys_of(redis_client, "k-qr") == []


BAD_COMMANDS = [
    ("create_instance", b"not json", "not_json"),
    ("create_instance", b"[1, 2]", "not_object"),
    ("create_instance", b"{}", "missing_field"),
    ("create_instance", b'{"key": 5}', "wrong_type"),
    ("create_instance", b'{"key": "../x"}', "bad_key"),
    ("create_instance", b'{"key": "' + b"a" * 65 + b'"}', "bad_key"),
    ("create_instance", b'{"key": "has space"}', "bad_key"),
    ("create_instance", '{"key": "clé"}'.encode(), "bad_key"),
    ("create_instance", b'{"key": ""}', "bad_key"),
    ("destroy_instance", b'{"key": "ghost"}', "unknown_instance"),
    ("destroy_instance", b'{"key": "ghost", "logout": "yes"}', "wrong_type"),
    ("send_message", b'{"key": "ghost", "chat_id": "5511999990001@c.us", "message": "hi"}', "unknown_instance"),
    ("send_message", b'{"key": "ghost", "message": "hi"}', "missing_field"),
    ("send_message", b'{"key": "ghost", "chat_id": "5511999990001@c.us", "message": {"text": "hi"}}', "wrong_type"),
    ("send_message", b'{"key": "ghost", "chat_id": "someone", "message": "hi"}', "bad_chat_id"),
    ("send_message", b'{"key": "ghost", "chat_id": "5511999990001@c.us", "message": "' + b"x" * 65537 + b'"}',
     "too_long"),
    ("send_message", b'{"key": "ghost", "chat_id": "5511999990001@c.us", "message": "hi", "id": 7}', "wrong_type"),
]


def test_bad_input_is_dead_lettered_once_and_answered(nodes, rabbit, redis_client):
    node = nodes()
    for queue, body, _ in BAD_COMMANDS:
        rabbit.publish(queue, body)
    failures = [rabbit.expect("command_failed") for _ in BAD_COMMANDS]
    got = sorted((f["command"], f["reason"]) for f in failures)
    assert got == sorted((q, reason) for q, _, reason in BAD_COMMANDS)
    wait_for(lambda: rabbit.depth("wa.dead_letter")[0] == len(BAD_COMMANDS), what="dead letters")
    for queue in ("create_instance", "destroy_instance", "send_message"):
        assert rabbit.depth(queue) == (0, 1)  # nothing requeued, consumers still there
    dead = []
    while True:
        method, props, body = rabbit.ch.basic_get("wa.dead_letter", auto_ack=True)
        if method is None:
            break
        dead.append((props.headers["x-queue"], props.headers["x-reason"], body))
    assert sorted(dead) == sorted((q, reason, body) for q, body, reason in BAD_COMMANDS)
    assert list(redis_client.scan_iter(match="instances:*")) == []
    assert node.alive()

    # The node is still fine: a good command works.
    rabbit.publish("create_instance", {"key": "after-bad"})
    rabbit.expect("qr_instance", key="after-bad")


def test_send_before_ready_fails_with_not_ready(nodes, rabbit):
    nodes()
    rabbit.publish("create_instance", {"key": "k-early"})
    rabbit.expect("qr_instance", key="k-early")
    rabbit.publish("send_message", {"key": "k-early", "chat_id": "5511999990001@c.us", "message": "hi", "id": "e1"})
    failed = rabbit.expect("command_failed", command_id="e1")
    assert failed["reason"] == "not_ready" and failed["key"] == "k-early"


def test_two_creates_of_one_key_make_one_session(nodes, rabbit):
    node = nodes()
    rabbit.publish("create_instance", {"key": "k-twice"})
    rabbit.publish("create_instance", {"key": "k-twice"})
    rabbit.expect("qr_instance", key="k-twice")
    wait_for(lambda: rabbit.depth("create_instance") == (0, 1), what="both creates acknowledged")
    assert len(rabbit.find("state_instance", key="k-twice", state="starting")) == 1
    assert len(node.session_pids()) == 1


def test_killed_session_process_restarts_without_qr_and_held_sends_go_out(nodes, rabbit, wa, control):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-crash", phone)
    [pid] = node.session_pids()
    tree = psutil.Process(pid).children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    rabbit.expect("state_instance", key="k-crash", state="restarting")
    rabbit.publish("send_message", {"key": "k-crash", "chat_id": f"{friend}@c.us", "message": "during restart",
                                    "id": "held"})
    rabbit.expect("ready_instance", key="k-crash")
    assert len(rabbit.find("qr_instance", key="k-crash")) == 1  # only the first one
    assert rabbit.expect("message_sent_instance", command_id="held")
    assert [m["body"] for m in control.sent_by(phone)] == ["during restart"]
    wait_for(lambda: all_gone(tree), what="the old Chrome to be gone")
    assert not rabbit.find("disconnected_instance", key="k-crash")


def test_hung_page_is_restarted(nodes, rabbit, control):
    node = nodes()
    phone = new_phone()
    create_ready(rabbit, control, "k-hang", phone)
    [pid] = node.session_pids()
    control.freeze(phone)
    rabbit.expect("state_instance", key="k-hang", state="restarting", timeout=30)
    rabbit.expect("ready_instance", key="k-hang")
    assert node.session_pids() != [pid]


def test_node_restart_brings_sessions_back_without_qr(nodes, rabbit, control, redis_client):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-back", phone)
    assert node.terminate() == 0
    assert all_gone(chrome_processes_under(node.data_dir))

    # Commands published while no node runs wait in their queue.
    rabbit.publish("send_message", {"key": "k-back", "chat_id": f"{friend}@c.us", "message": "queued", "id": "q1"})
    node.start()
    rabbit.expect("ready_instance", key="k-back")
    rabbit.expect("message_sent_instance", command_id="q1")
    assert len(rabbit.find("qr_instance", key="k-back")) == 1
    assert [m["body"] for m in control.sent_by(phone)] == ["queued"]
    assert redis_client.hget("instances:k-back:state", "state") == "ready"


def test_kill_9_of_the_node_takes_sessions_along_and_restart_restores(nodes, rabbit, control):
    node = nodes()
    phone = new_phone()
    create_ready(rabbit, control, "k-k9", phone)
    tree = psutil.Process(node.proc.pid).children(recursive=True)
    node.kill()
    wait_for(lambda: all_gone(tree), timeout=15, what="sessions and Chrome to die with the node")
    node.start()
    rabbit.expect("ready_instance", key="k-k9")
    assert len(rabbit.find("qr_instance", key="k-k9")) == 1


def test_sigterm_stops_within_bound_and_leaves_no_chrome(nodes, rabbit, control):
    node = nodes()
    for i in range(3):
        rabbit.publish("create_instance", {"key": f"k-term-{i}"})
    for i in range(3):
        rabbit.expect("qr_instance", key=f"k-term-{i}")
    assert node.terminate(timeout=30) == 0
    assert all_gone(chrome_processes_under(node.data_dir))
