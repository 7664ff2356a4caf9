"""Sessions behind proxies of their own, end to end through the public
contract: RabbitMQ, Redis, a real node, Chromium, the stand-in, and real
proxy servers (``tests/proxies.py``: tinyproxy for HTTP with basic
authentication, connecting out from 127.0.0.2; microsocks for SOCKS5 with
a user and password, from 127.0.0.3).  The stand-in, on 127.0.0.1, records
the address every request came from: a session's pages and live links
show which proxy they went through, and a request from 127.0.0.1 would be
one that went around them.

One node with two linked sessions serves the whole module (one behind
each proxy); each test adds what it needs."""

from __future__ import annotations

import urllib.request

import orjson
import pytest
import redis as redislib

from conftest import _node_queues
from proxies import MicroSocks, TinyProxy
from support import (TEST_REDIS_DB, Client, NodeProcess, all_gone, chrome_processes_under, idle_cgroup, new_phone,
                     purge_queues, wait_for, wwnode_status)
from wwnode.amqp.topology import COMMAND_QUEUES, DEAD_LETTER_QUEUE, LEGACY_EVENT_QUEUES, REROUTE_QUEUE, node_queue_name
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

NODE = "node-proxy"
HTTP_PASSWORD, SOCKS_PASSWORD = "pw-Http-7731", "pw-Socks-4410"
REDIS_URL = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"


class World:
    def __init__(self, wa, node, rabbit, http_proxy, socks, phones):
        self.wa, self.node, self.rabbit, self.http_proxy, self.socks = wa, node, rabbit, http_proxy, socks
        self.phones = phones  # key -> phone
        self.control = Control(wa.url)


def create_ready(rabbit: Client, control: Control, key: str, phone: str, settings: dict) -> dict:
    rabbit.publish("create_instance", {"key": key, "settings": settings})
    qr = rabbit.expect("qr_instance", key=key, timeout=60)
    control.scan(qr["qr"], phone)
    return rabbit.expect("ready_instance", key=key, timeout=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory, rabbit_url):
    tmp = tmp_path_factory.mktemp("proxies")
    r = redislib.Redis(db=TEST_REDIS_DB, decode_responses=True)
    r.flushdb()
    r.close()
    _node_queues.add(node_queue_name(NODE))
    rabbit = Client(rabbit_url)
    queues = COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE)
    for queue in queues:
        rabbit.ch.queue_declare(queue, durable=True)
    purge_queues(rabbit.conn, queues + tuple(sorted(_node_queues)))
    http_proxy = TinyProxy(tmp / "tinyproxy", "alice", HTTP_PASSWORD, "127.0.0.2")
    socks = MicroSocks("bob", SOCKS_PASSWORD, "127.0.0.3")
    wa = FakeWA(settings=Settings(sync_delay=0.25)).start()
    node = NodeProcess(NODE, tmp / NODE, {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": REDIS_URL, "WA_URL": wa.url,
                                          "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp / "cgroup")),
                                          "METRICS_ADDR": "127.0.0.1:0"})
    phones = {"via-http": new_phone(), "via-socks": new_phone()}
    try:
        control = Control(wa.url)
        create_ready(rabbit, control, "via-http", phones["via-http"], {"proxy": http_proxy.url()})
        create_ready(rabbit, control, "via-socks", phones["via-socks"], {"proxy": socks.url()})
        yield World(wa, node, rabbit, http_proxy, socks, phones)
    finally:
        node.terminate()
        wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=15, what="no Chrome left")
        rabbit.close()
        wa.stop()
        socks.stop()
        http_proxy.stop()


def test_each_sessions_pages_and_links_came_only_through_its_own_proxy(world):
    w = world
    friend = new_phone()
    for key in w.phones:  # what the page posts goes the same way
        w.rabbit.publish("send_message", {"key": key, "chat_id": f"{friend}@c.us", "message": f"hi from {key}",
                                          "id": f"px-{key}"})
        w.rabbit.expect("message_sent_instance", command_id=f"px-{key}")
    peers = w.control.peers()
    requests = peers["requests"]
    # Nothing came from 127.0.0.1, the machine's own address: nothing went
    # around a proxy (the stand-in lives on a loopback address, which
    # Chromium exempts from proxies unless told not to).
    assert {r["address"] for r in requests} == {"127.0.0.2", "127.0.0.3"}
    expected = {w.phones["via-http"]: "127.0.0.2", w.phones["via-socks"]: "127.0.0.3"}
    for phone, address in expected.items():
        devices = {d for d, p in peers["devices"].items() if p == phone}
        links = [r for r in requests if r["path"] == "/_wa/link" and r.get("device") in devices]
        assert links and {r["address"] for r in links} == {address}, (phone, links)
    assert {r["address"] for r in requests if r["path"] == "/"} == {"127.0.0.2", "127.0.0.3"}  # each page load
    assert f"127.0.0.1:{w.wa.port}" in w.http_proxy.log()  # the HTTP proxy's own log has the tunnels

    # Status and metrics show each proxy's host; the credentials appear in
    # no log, event, heartbeat or metric.
    status = wwnode_status(REDIS_URL)
    assert f"127.0.0.1:{w.http_proxy.port}" in status and f"127.0.0.1:{w.socks.port}" in status
    r = redislib.Redis(db=TEST_REDIS_DB, decode_responses=True)
    try:
        addr = wait_for(lambda: r.hget(f"nodes:{NODE}", "metrics_addr"), what="the metrics address")
        beats = orjson.dumps([r.hgetall(k) for k in r.scan_iter("nodes:*")]).decode()
    finally:
        r.close()
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert f'wwnode_session_proxy_info{{key="via-socks",proxy="127.0.0.1:{w.socks.port}"}} 1.0' in metrics
    logs = [w.node.log_text(), w.node.output()] + [p.read_text(errors="replace")
                                                   for p in (w.node.data_dir / "logs" / "sessions").glob("*.log*")]
    for text in (status, metrics, beats, orjson.dumps(w.rabbit.events).decode(), *logs):
        assert HTTP_PASSWORD not in text and SOCKS_PASSWORD not in text


def test_a_wrong_password_fails_the_session_with_proxy_error_in_one_boot(world):
    w = world
    w.rabbit.publish("create_instance", {"key": "bad-pw", "settings": {"proxy": w.http_proxy.url(password="nope")}})
    failed = w.rabbit.expect("state_instance", key="bad-pw", state="failed", timeout=60)
    assert failed["reason"] == "proxy_error"
    said = w.rabbit.expect("disconnected_instance", key="bad-pw")
    assert said["reason"] == "proxy_error" and "refused the credentials" in said["detail"]
    assert f"127.0.0.1:{w.http_proxy.port}" in said["detail"] and "nope" not in said["detail"]
    # One boot, no restart: started once, never restarting.
    states = [e["state"] for e in w.rabbit.find("state_instance", key="bad-pw")]
    assert states == ["starting", "failed"]
    # A proxy that is not there at all: said so too.
    w.rabbit.publish("create_instance", {"key": "no-proxy-there",
                                         "settings": {"proxy": "socks5://u:pw-x-1@127.0.0.1:9"}})
    said = w.rabbit.expect("disconnected_instance", key="no-proxy-there", timeout=60)
    assert said["reason"] == "proxy_error" and "cannot be reached" in said["detail"]


def test_a_paced_keys_sends_are_spaced_at_the_page_and_the_other_keys_are_not_slowed(world):
    w = world
    w.rabbit.publish("update_settings", {"key": "via-http", "id": "pace-on",
                                         "settings": {"pacing": {"min_gap_ms": 1500, "jitter_ms": 300}}})
    assert w.rabbit.expect("settings_updated_instance", command_id="pace-on")["restarted"] is False
    friend = new_phone()
    for i in range(3):
        for key in w.phones:
            w.rabbit.publish("send_message", {"key": key, "chat_id": f"{friend}@c.us", "message": f"{key} {i}",
                                              "id": f"pace-{key}-{i}"})
    for i in range(3):
        for key in w.phones:
            w.rabbit.expect("message_sent_instance", command_id=f"pace-{key}-{i}", timeout=60)

    def taken(key: str) -> list[dict]:
        """The stand-in's record of the key's sends to ``friend``, in order."""
        return [m for m in w.control.sent_by(w.phones[key]) if m["to"] == f"{friend}@c.us"]

    paced, free = taken("via-http"), taken("via-socks")
    assert [m["body"] for m in paced] == [f"via-http {i}" for i in range(3)]  # never reordered
    gaps = [b["received_ms"] - a["received_ms"] for a, b in zip(paced, paced[1:])]
    assert min(gaps) >= 1500, gaps
    # The other key's sends went at once, all of them before the paced
    # key's second.
    assert [m["body"] for m in free] == [f"via-socks {i}" for i in range(3)]
    assert free[-1]["received_ms"] < paced[1]["received_ms"]
    w.rabbit.publish("update_settings", {"key": "via-http", "id": "pace-off", "settings": {"pacing": None}})
    w.rabbit.expect("settings_updated_instance", command_id="pace-off")
