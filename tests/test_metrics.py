"""The node's /metrics and /healthz (metrics.py, metrics_http.py).

- Unit: the readings of a node of real parts around fake edges, after what
  was done to it (crashes, a crash loop, sends), as Prometheus text.
- A real node (fake sessions, real RabbitMQ and Redis): /metrics parsed
  with prometheus_client's parser after real traffic, each counter moved
  by what was done; /healthz failing while its Redis (a server of the
  test's own) is stopped, and passing again once it is back."""

from __future__ import annotations

import select
import socket
import threading
import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sessionproc.protocol import EXIT_CRASHED
from support import RedisServer, create_ready, delivery, heartbeat_field, new_phone, node_rig, wait_for
from wwnode.commands import Command
from wwnode.metrics import families
from wwnode.metrics_http import Endpoint, parse_addr


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a /metrics text: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def rendered(snapshot: dict, memory: dict | None = None) -> dict:
    from prometheus_client import CollectorRegistry, generate_latest

    class One:
        def collect(self):
            yield from families(snapshot, 0.1, memory or {})

    reg = CollectorRegistry(auto_describe=False)
    reg.register(One())
    return samples(generate_latest(reg).decode())


# ================================================================== unit
def test_readings_count_what_the_node_did(tmp_path):
    now = [0.0]
    rig = node_rig(tmp_path / "data", clock=lambda: now[0], crash_limit=1)
    rec, _ = rig.start("k", now=0.0)
    rig.make_ready(rec, now=0.0)
    d = delivery("send_message")
    rig.sends.send(Command("send_message", "k", "c1", chat_id="1@c.us", text="hi"), d, 1.0)
    sent = rec.child.commands("send")[0]
    rig.say(rec, {"event": "sent", "id": sent["id"], "message_id": "M1"}, now=1.75)
    rig.sends.send(Command("send_message", "nobody", None, chat_id="1@c.us", text="hi"), delivery("send_message"),
                   2.0)
    rig.exit(rec, EXIT_CRASHED, 3.0)  # a crash: restarting after the back-off
    rig.node.sessions.tick(10.0)
    rig.exit(rec, EXIT_CRASHED, 11.0)  # a second within the window: crash_loop, failed
    rig.broker.confirm_all()
    for t in (12.0, 12.25, 12.5):
        rig.readings.tick(t)
    m = rendered(rig.readings.take(12.5))

    assert m[("wwnode_sessions", (("state", "failed"),))] == 1
    assert m[("wwnode_sessions", (("state", "ready"),))] == 0
    assert m[("wwnode_commands_total", (("outcome", "done"), ("queue", "create_instance")))] == 1
    assert m[("wwnode_commands_total", (("outcome", "done"), ("queue", "send_message")))] == 1
    assert m[("wwnode_commands_total", (("outcome", "failed"), ("queue", "send_message")))] == 1
    assert m[("wwnode_commands_failed_total", (("queue", "send_message"), ("reason", "unknown_instance")))] == 1
    assert m[("wwnode_send_seconds_count", ())] == 1
    assert m[("wwnode_send_seconds_sum", ())] == 0.75
    assert m[("wwnode_send_seconds_bucket", (("le", "0.5"),))] == 0
    assert m[("wwnode_send_seconds_bucket", (("le", "1.0"),))] == 1
    assert m[("wwnode_session_crashes_total", ())] == 2
    assert m[("wwnode_session_restarts_total", (("reason", "crash"),))] == 1
    assert m[("wwnode_session_failures_total", (("reason", "crash_loop"),))] == 1
    assert m[("wwnode_loop_turn_seconds_count", ())] == 2  # two intervals between three turns
    assert m[("wwnode_loop_turn_seconds_sum", ())] == 0.5
    published = sum(v for (name, _), v in m.items() if name == "wwnode_events_published_total")
    assert published == len([i for i in rig.broker.published if i.exchange == "wa.events"])
    assert m[("wwnode_event_publish_seconds_count", ())] == published  # all confirmed
    assert m[("wwnode_admission_accepting", ())] == 1


def test_accepting_says_what_the_heartbeat_says_stopping_included(tmp_path):
    rig = node_rig(tmp_path / "data")
    rig.node.gate.sample_load(0.0)
    assert rendered(rig.readings.take(0.0))[("wwnode_admission_accepting", ())] == 1
    rig.node.gate.close()  # the node stops: admission alone would still say yes
    assert rig.node.admission.accepting
    assert rendered(rig.readings.take(1.0))[("wwnode_admission_accepting", ())] == 0


def test_a_scrape_asks_the_loop_and_never_blocks_it(tmp_path):
    """The thread's request is answered at the loop's next turn; without a
    turn, the last snapshot is served and the loop's age says why."""
    now = [5.0]
    rig = node_rig(tmp_path / "data", clock=lambda: now[0])
    rig.readings.tick(5.0)
    endpoint = Endpoint(rig.readings, "127.0.0.1:0", clock=lambda: now[0], measure=lambda pids: dict.fromkeys(pids, 0))
    assert rig.readings.snapshot is None  # nobody asked: nothing built
    now[0] = 30.0  # the loop stalls 25 s
    text = endpoint.metrics().decode()  # waits ANSWER_WAIT, then serves what there is
    m = samples(text)
    assert m[("wwnode_loop_last_turn_age_seconds", ())] == 25.0
    ok, doc = endpoint.health()
    assert not ok and "the loop has not turned for 25 s" in doc["problems"]
    rig.readings.tick(30.0)
    assert rig.readings.snapshot is not None  # the request was seen at the turn
    assert endpoint.health()[0]


def test_metrics_addr_is_host_and_port():
    assert parse_addr("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_addr("[::1]:0") == ("::1", 0)
    for bad in ("9464", ":9464", "host:", "host:70000"):
        with pytest.raises(ValueError):
            parse_addr(bad)


def ended(conn: socket.socket, wait: float) -> bool:
    """Whether the server closed ``conn`` within ``wait`` seconds."""
    if not select.select([conn], [], [], wait)[0]:
        return False
    try:
        return conn.recv(4096) == b""
    except ConnectionResetError:
        return True  # closed with our request unread


def test_connections_are_capped_and_each_is_cut_off_at_its_deadline(tmp_path):
    """Half-open connections (a request never finished, or trickled a byte
    at a time) used to hold a thread and a descriptor each for ever, until
    the node had no descriptor left.  Now at most ``max_connections`` are
    served, and each ends at its deadline."""
    rig = node_rig(tmp_path / "data")
    endpoint = Endpoint(rig.readings, "127.0.0.1:0", measure=lambda pids: {}, max_connections=2, deadline=2.0)
    host, port = endpoint.start()
    threads = threading.active_count()
    try:
        held = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
        for conn in held:
            conn.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finished
        extra = socket.create_connection((host, port), timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert ended(extra, 1.5)  # past the cap: closed as soon as accepted...
        assert not any(ended(conn, 0) for conn in held)  # ...while the two are still served
        assert threading.active_count() <= threads + 2
        started = time.monotonic()
        assert all(ended(conn, 5) for conn in held)
        assert time.monotonic() - started < 3  # their deadline (2 s from their accept), not a read timeout
        for conn in held + [extra]:
            conn.close()

        # A request trickled a byte at a time never gives a read timeout
        # the chance to fire: the deadline ends it all the same.
        slow = socket.create_connection((host, port), timeout=5)
        started = time.monotonic()
        for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            if ended(slow, 0.1):
                break
            slow.send(bytes([byte]))
        else:
            raise AssertionError("a trickled request was served for 10 s")
        assert time.monotonic() - started < 3.5
        slow.close()

        # Their threads are gone: a request is served again.
        assert wait_for(lambda: endpoint._server.served() == 0, what="the connections' threads to end")
        assert get(f"http://{host}:{port}/healthz")[0] == 503  # answered (the rig's loop never turned)
        wait_for(lambda: threading.active_count() <= threads, what="no thread left but the server's")
    finally:
        endpoint.close()


# ============================================================ real node
def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def endpoint_of(redis_client, node_id: str) -> str:
    addr = wait_for(lambda: heartbeat_field(redis_client, node_id, "metrics_addr"), timeout=60,
                    what="the node's first heartbeat, naming its metrics address")
    return f"http://{addr}"


@pytest.mark.services
def test_metrics_after_real_traffic(fake_nodes, rabbit, redis_client, fake):
    node = fake_nodes("node-m", metrics_addr="127.0.0.1:0")
    base = endpoint_of(redis_client, "node-m")
    assert heartbeat_field(redis_client, "node-m", "max_sessions") == "0"
    before = samples(get(base + "/metrics")[1].decode())
    assert before.get(("wwnode_commands_total", (("outcome", "done"), ("queue", "create_instance"))), 0) == 0

    phone = new_phone()
    create_ready(rabbit, fake, "km", phone)
    rabbit.publish("send_message", {"key": "km", "chat_id": "5511999999999@c.us", "message": "hi", "id": "s1"})
    rabbit.expect("message_sent_instance", key="km", command_id="s1")
    rabbit.publish("send_message", {"key": "km", "chat_id": "not a chat id", "message": "hi"})
    rabbit.expect("command_failed", command="send_message")

    status, body = get(base + "/metrics")
    assert status == 200
    m = samples(body.decode())
    assert m[("wwnode_sessions", (("state", "ready"),))] == 1
    assert m[("wwnode_commands_total", (("outcome", "done"), ("queue", "create_instance")))] == 1
    assert m[("wwnode_commands_total", (("outcome", "done"), ("queue", "send_message")))] == 1
    assert m[("wwnode_commands_total", (("outcome", "failed"), ("queue", "send_message")))] == 1
    failed = [k for k in m if k[0] == "wwnode_commands_failed_total" and ("queue", "send_message") in k[1]]
    assert len(failed) == 1 and m[failed[0]] == 1
    assert m[("wwnode_send_seconds_count", ())] == 1
    assert m[("wwnode_events_published_total", (("event", "ready_instance"),))] == 1
    assert m[("wwnode_events_published_total", (("event", "message_sent_instance"),))] == 1
    assert m[("wwnode_event_publish_seconds_count", ())] >= 5  # qr, authenticated, ready, states, sent...
    assert m[("wwnode_loop_turn_seconds_count", ())] > 0
    assert m[("wwnode_session_memory_bytes", (("key", "km"),))] > 1_000_000  # a Python process at least
    assert m[("wwnode_rabbitmq_up", ())] == 1 and m[("wwnode_redis_up", ())] == 1
    assert m[("wwnode_leases", ())] == 1
    assert 0 <= m[("wwnode_lease_renewal_age_seconds", ())] < 30
    assert m[("wwnode_outbox_messages", ())] == 0
    assert ("process_cpu_seconds_total", ()) in m
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/nothing")[0] == 404
    assert node.alive()


@pytest.mark.services
def test_healthz_fails_while_redis_is_stopped(fake_nodes, rabbit, tmp_path):
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    try:
        import redis as redislib

        r = redislib.Redis.from_url(server.url, decode_responses=True)
        fake_nodes("node-h", metrics_addr="127.0.0.1:0", redis_url=server.url)
        base = endpoint_of(r, "node-h")
        wait_for(lambda: get(base + "/healthz")[0] == 200, timeout=30, what="healthy")
        r.close()
        server.stop()
        status, body = wait_for(lambda: (lambda s: s if s[0] == 503 else None)(get(base + "/healthz")),
                                timeout=30, what="/healthz to fail")
        doc = orjson.loads(body)
        assert doc["redis"] is False and doc["rabbitmq"] is True
        assert "Redis does not answer" in doc["problems"]
        server.start()
        wait_for(lambda: get(base + "/healthz")[0] == 200, timeout=30, what="healthy again")
    finally:
        server.stop()
