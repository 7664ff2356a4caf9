"""The node end to end, through the public contract only: publish to the old
queues, read Redis, consume events and the old event queues, drive the
stand-in's control API.  Real RabbitMQ, Redis, Chromium and node processes.

Only what needs a real browser and page is here; the node's own rules run
with fake session processes in test_node.py."""

from __future__ import annotations

import psutil
import pytest

from support import all_gone, chrome_processes_under, create_ready, descendants, new_phone, wait_for
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

TRICKY = 'quote " backslash \\ </script> newline\n emoji 😀 ' + "x" * 5000


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


def test_kill_9_of_chrome_restarts_the_session_without_qr(nodes, rabbit, control):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-chrome", phone)
    [pid] = node.session_pids()
    chrome = [p for p in descendants(pid) if "--user-data-dir" in " ".join(p.cmdline())]
    browser = next(p for p in chrome if p.parent() not in chrome)  # the browser process, not a helper
    tree = descendants(pid)
    browser.kill()
    rabbit.expect("state_instance", key="k-chrome", state="restarting")
    rabbit.expect("ready_instance", key="k-chrome")
    assert len(rabbit.find("qr_instance", key="k-chrome")) == 1  # only the first one
    assert not rabbit.find("disconnected_instance", key="k-chrome")  # a crash, not an end
    wait_for(lambda: all_gone(tree), what="the old session and its Chrome to be gone")
    rabbit.publish("send_message", {"key": "k-chrome", "chat_id": f"{friend}@c.us", "message": "back", "id": "c1"})
    rabbit.expect("message_sent_instance", command_id="c1")
    assert [m["body"] for m in control.sent_by(phone)] == ["back"]
