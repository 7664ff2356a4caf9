"""Per-session settings across real nodes, RabbitMQ and Redis, with fake
session processes (no browser; each records the settings it was started
with): ``update_settings`` over the wire, and the settings still in force
after a kill -9 of the session, of the node, a drain to another node and a
failover."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from support import new_phone, owner, takes_creates, wait_for

pytestmark = pytest.mark.services

PASSWORD = "pw-Zq81-secret"
PROXY = f"http://alice:{PASSWORD}@proxy.example:3128"
FAST = {"lease_ttl": 3, "heartbeat_interval": 0.5, "node_queue_ttl": 4, "amqp_heartbeat": 2}


def create_ready_with(rabbit, fake, key: str, phone: str, settings: dict) -> None:
    rabbit.publish("create_instance", {"key": key, "settings": settings})
    qr = rabbit.expect("qr_instance", key=key)
    fake.scan(qr["qr"], phone)
    rabbit.expect("ready_instance", key=key)


def started_with(fake, key: str) -> list[dict]:
    """The settings each start of ``key``'s process read, in order."""
    return [r["settings"] for r in fake.records(key) if "start" in r]


def no_password_anywhere(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def test_update_settings_over_the_wire_and_the_settings_outlive_crashes_of_session_and_node(
        fake_nodes, fake, rabbit, redis_client):
    node = fake_nodes("node-a")
    phone = new_phone()
    create_ready_with(rabbit, fake, "k1", phone, {"proxy": PROXY, "ignore": ["groups"], "send_seen": False})
    [first] = started_with(fake, "k1")
    assert first["proxy"] == PROXY and first["ignore"] == ["groups"]
    assert orjson.loads(redis_client.get("instances:k1:settings"))["proxy"] == PROXY

    rabbit.publish("update_settings", {"key": "k1", "id": "u1", "settings": {"ignore": ["status"], "typing": True}})
    done = rabbit.expect("settings_updated_instance", command_id="u1")
    assert done["restarted"] is False and done["settings"]["proxy"] == "http://alice:***@proxy.example:3128"
    wait_for(lambda: {"settings": {"ignore": ["status"]}} in fake.records("k1"), what="the session told")
    rabbit.publish("send_message", {"key": "k1", "chat_id": "5511999990001@c.us", "message": "hey", "id": "s1"})
    rabbit.expect("message_sent_instance", command_id="s1")
    sent = [r["sent"] for r in fake.records("k1") if "sent" in r][-1]
    assert sent["seen"] is False and sent["typing_ms"] > 0

    # The session killed: back with the same settings.
    fake.act("k1", {"do": "crash"})
    wait_for(lambda: len(started_with(fake, "k1")) == 2, what="the session restarted")
    assert started_with(fake, "k1")[-1]["ignore"] == ["status"] and started_with(fake, "k1")[-1]["typing"] is True
    rabbit.expect("ready_instance", key="k1", timeout=30)

    # The node killed and started again: the session comes back with them.
    node.kill()
    node.start()
    wait_for(lambda: len(started_with(fake, "k1")) == 3, timeout=30, what="the session restored")
    assert started_with(fake, "k1")[-1]["proxy"] == PROXY and started_with(fake, "k1")[-1]["ignore"] == ["status"]

    # A new proxy restarts it.
    ready_before = len(rabbit.find("ready_instance", key="k1"))
    rabbit.publish("update_settings", {"key": "k1", "id": "u2", "settings": {"proxy": None}})
    assert rabbit.expect("settings_updated_instance", command_id="u2", timeout=30)["restarted"] is True
    wait_for(lambda: len(started_with(fake, "k1")) == 4 and started_with(fake, "k1")[-1]["proxy"] is None,
             timeout=30, what="the session restarted without a proxy")
    wait_for(lambda: len(rabbit.find("ready_instance", key="k1")) > ready_before, timeout=30,
             what="ready again")

    # Refusals.
    rabbit.publish("update_settings", {"key": "k1", "id": "u3", "settings": {"colour": "blue"}})
    assert rabbit.expect("command_failed", command_id="u3")["reason"] == "bad_settings"
    rabbit.publish("update_settings", {"key": "ghost", "id": "u4", "settings": {}})
    assert rabbit.expect("command_failed", command_id="u4")["reason"] == "unknown_instance"
    rabbit.publish("destroy_instance", {"key": "k1"})
    rabbit.expect("state_instance", key="k1", state="stopped")
    assert redis_client.get("instances:k1:settings") is None
    no_password_anywhere(node.log_text(), node.output(), orjson.dumps(rabbit.events).decode(),
                         (node.data_dir / "logs" / "sessions" / "k1.log").read_text(errors="replace"),
                         orjson.dumps([redis_client.hgetall(k) for k in redis_client.scan_iter("nodes:*")]).decode())


def test_a_drained_session_keeps_its_settings_on_its_next_node(fake_nodes, fake, rabbit, redis_client, tmp_path,
                                                               rabbit_url, redis_url):
    settings = {"blob_store_url": (tmp_path / "shared-blobs").as_uri()}
    fake_nodes("node-a", **settings)
    create_ready_with(rabbit, fake, "d1", new_phone(), {"proxy": PROXY, "pacing": {"min_gap_ms": 10}})
    fake_nodes("node-b", **settings)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2, timeout=30, what="two create consumers")
    wait_for(lambda: takes_creates(redis_client, "node-b"), timeout=30, what="node-b's heartbeat to take creates")
    env = {**os.environ, "RABBIT_MQ_URL": rabbit_url, "REDIS_URL": redis_url}
    drain = subprocess.run([sys.executable, "-m", "wwnode.tools.cli", "drain", "node-a", "--timeout", "120"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert drain.returncode == 0, (drain.stdout, drain.stderr)
    rabbit.expect("ready_instance", key="d1", node="node-b", timeout=30)
    assert owner(redis_client, "d1") == "node-b"
    last = started_with(fake, "d1")[-1]
    assert last["proxy"] == PROXY and last["pacing"]["min_gap_ms"] == 10
    no_password_anywhere(drain.stdout, drain.stderr)


def test_a_failed_over_session_keeps_its_settings_even_once_redis_forgot_them(fake_nodes, fake, rabbit,
                                                                              redis_client, tmp_path):
    settings = {"blob_store_url": (tmp_path / "shared-blobs").as_uri(), "failover": "auto", **FAST}
    a = fake_nodes("node-a", **settings)
    create_ready_with(rabbit, fake, "f1", new_phone(), {"proxy": PROXY, "ignore": ["channels"]})
    # Saved with the login (on ready), whatever Redis keeps.
    wait_for(lambda: any((tmp_path / "shared-blobs").rglob("*.tgz")), what="the login saved")
    fake_nodes("node-b", **settings)
    wait_for(lambda: rabbit.depth("create_instance")[1] == 2, timeout=30, what="two create consumers")
    a.kill()
    redis_client.delete("instances:f1:settings")  # run out: the node was gone for long
    rabbit.expect("ready_instance", key="f1", node="node-b", timeout=40)
    last = started_with(fake, "f1")[-1]
    assert last["proxy"] == PROXY and last["ignore"] == ["channels"]
    wait_for(lambda: redis_client.get("instances:f1:settings") is not None, what="written again by node-b")
