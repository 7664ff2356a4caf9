"""Faults injected for real: a TCP proxy between the node and RabbitMQ that
the test cuts or silences, a redis-server of the test's own that it
restarts, queues deleted under the node, sessions that cannot start.

Most run with fake session processes: the faults are the node's to handle.
What the node noticed is read from the counters of its heartbeat
(``nodes:{node}`` in Redis, as ``wwnode status`` shows them), not its log.
Tests that stop the broker or set its alarms do it to a broker of their
own (``own_broker``), never to the one every other test shares."""

from __future__ import annotations

import os
import signal
import time
import uuid

import orjson
import pika
import pika.exceptions
import pytest
import redis as redislib

from support import (TEST_VHOST, Client, RedisServer, TcpProxy, counter, create_ready, new_phone, rabbitmqctl,
                     wait_for)

pytestmark = pytest.mark.services


@pytest.fixture
def proxy():
    p = TcpProxy(5672)
    yield p
    p.close()


def via(proxy: TcpProxy) -> str:
    return f"amqp://guest:guest@127.0.0.1:{proxy.port}/{TEST_VHOST}"


def test_broker_cut_while_commands_flow_loses_nothing(fake_nodes, rabbit, fake, proxy, redis_client):
    node = fake_nodes(rabbit_mq_url=via(proxy), amqp_heartbeat=2)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-cut", phone)
    [session] = node.session_pids()
    assert counter(redis_client, "node-a", "command_link_losses") == 0

    proxy.cut()
    rabbit.publish("send_message", {"key": "k-cut", "chat_id": f"{friend}@c.us", "message": "queued", "id": "c1"})
    fake.deliver(phone, friend, "while the broker was away")
    wait_for(lambda: counter(redis_client, "node-a", "command_link_losses") >= 1, what="the node to notice")
    proxy.restore()

    rabbit.expect("message_sent_instance", command_id="c1", timeout=40)
    rabbit.expect("message_instance", key="k-cut", timeout=40)
    assert [e["message"]["body"] for e in rabbit.find("message_instance", key="k-cut")] == ["while the broker was away"]
    assert [m["body"] for m in fake.sent_by(phone)] == ["queued"]
    assert node.session_pids() == [session]  # the session ran on throughout


def test_events_held_during_an_outage_survive_a_node_restart(fake_nodes, rabbit, fake, proxy):
    node = fake_nodes(rabbit_mq_url=via(proxy), amqp_heartbeat=2)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-spool", phone)
    proxy.cut()
    fake.deliver(phone, friend, "kept on disk")
    spool = node.data_dir / "spool" / "events.log"
    wait_for(lambda: spool.exists() and b"kept on disk" in spool.read_bytes(), what="the event in the spool")
    assert oct(spool.stat().st_mode & 0o777) == "0o600"
    node.kill()
    node.start()
    proxy.restore()
    rabbit.expect("message_instance", key="k-spool", timeout=60)
    rabbit.expect("ready_instance", key="k-spool", timeout=60)  # restored, no QR
    bodies = [e["message"]["body"] for e in rabbit.find("message_instance", key="k-spool")]
    assert bodies == ["kept on disk"]
    wait_for(lambda: spool.stat().st_size == 0, what="the spool to empty once published")


def test_a_silent_connection_is_detected_and_replaced(fake_nodes, rabbit, fake, proxy, redis_client):
    heartbeat = 2
    fake_nodes(rabbit_mq_url=via(proxy), amqp_heartbeat=heartbeat)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-silent", phone)
    before = counter(redis_client, "node-a", "command_link_losses")
    proxy.freeze()
    # The node gives up on a peer that sent nothing for two heartbeat intervals.
    wait_for(lambda: counter(redis_client, "node-a", "command_link_losses") > before, timeout=3 * heartbeat + 5,
             what="the silent connection to be noticed")
    proxy.restore()
    rabbit.publish("send_message", {"key": "k-silent", "chat_id": f"{friend}@c.us", "message": "after", "id": "s1"})
    rabbit.expect("message_sent_instance", command_id="s1", timeout=40)


def test_a_deleted_command_queue_is_declared_again(fake_nodes, rabbit, fake, redis_client):
    fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-del", phone)
    rabbit.ch.queue_delete("send_message")

    def consumed() -> bool:
        ch = rabbit.conn.channel()  # a passive declare of a missing queue closes its channel
        try:
            return ch.queue_declare("send_message", passive=True).method.consumer_count == 1
        except pika.exceptions.ChannelClosedByBroker:
            return False
        finally:
            if ch.is_open:
                ch.close()

    wait_for(consumed, timeout=20, what="the node to declare and consume send_message again")
    rabbit.publish("send_message", {"key": "k-del", "chat_id": f"{friend}@c.us", "message": "again", "id": "d1"})
    rabbit.expect("message_sent_instance", command_id="d1")
    wait_for(lambda: counter(redis_client, "node-a", "consumers_cancelled") >= 1, what="the cancel in the heartbeat")
    assert counter(redis_client, "node-a", "command_link_losses") == 0  # handled on the live connection


def test_redis_restarted_empty_is_filled_again_and_sessions_keep_running(fake_nodes, rabbit, fake, tmp_path):
    redis_server = RedisServer(tmp_path)
    node = fake_nodes(redis_url=redis_server.url, lease_ttl=8, heartbeat_interval=0.5)
    r = redislib.Redis.from_url(redis_server.url, decode_responses=True)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-ready", phone)
    rabbit.publish("create_instance", {"key": "k-showing"})
    qr = rabbit.expect("qr_instance", key="k-showing")["qr"]
    sessions = sorted(node.session_pids())

    redis_server.stop()
    fake.deliver(phone, friend, "while redis was away")
    rabbit.expect("message_instance", key="k-ready")  # RabbitMQ side unaffected
    redis_server.start()  # empty: it keeps nothing

    wait_for(lambda: (r.get("instances:k-ready:owner") or "").startswith("node-a:"), timeout=20,
             what="the lease taken back")
    wait_for(lambda: r.hget("instances:k-ready:state", "state") == "ready", what="the state written again")
    wait_for(lambda: r.get("instances:k-showing:qr_code") is not None, what="the QR code written again")
    assert r.get("instances:k-showing:qr_code").split(",")[1:] == qr.split(",")[1:]
    wait_for(lambda: r.exists("nodes:node-a"), what="the heartbeat")
    assert sorted(node.session_pids()) == sessions
    rabbit.publish("send_message", {"key": "k-ready", "chat_id": f"{friend}@c.us", "message": "ok", "id": "r1"})
    rabbit.expect("message_sent_instance", command_id="r1")
    node.terminate()
    redis_server.stop()


def test_a_session_that_fails_at_every_start_ends_failed_and_spares_the_others(fake_nodes, rabbit, fake):
    fake_nodes(backoff_initial=0.2, backoff_max=0.4, crash_limit=2, crash_window=60)
    phone = new_phone()
    create_ready(rabbit, fake, "k-good", phone)
    # Every start of k-bad fails, and is worth retrying as far as the session
    # can tell (a profile another process holds, say: see test_sessionproc).
    fake.script("k-bad", start="crash")
    rabbit.publish("create_instance", {"key": "k-bad"})
    failed = rabbit.expect("disconnected_instance", key="k-bad", timeout=60)
    assert failed["reason"] == "crash_loop"
    states = [e["state"] for e in rabbit.find("state_instance", key="k-bad")]
    assert states.count("restarting") == 2 and states[-1] == "failed"
    assert fake.starts("k-bad") == 3
    friend = new_phone()
    rabbit.publish("send_message", {"key": "k-good", "chat_id": f"{friend}@c.us", "message": "fine", "id": "g1"})
    rabbit.expect("message_sent_instance", command_id="g1")
    assert not rabbit.find("state_instance", key="k-good", state="restarting")


@pytest.mark.browser
def test_an_unusable_profile_folder_fails_clearly_without_a_loop(nodes, rabbit):
    node = nodes()
    folder = node.profile("k-nodisk").parent
    folder.mkdir(parents=True)
    (folder / "profile").write_text("a file where the profile folder should be")
    rabbit.publish("create_instance", {"key": "k-nodisk"})
    failed = rabbit.expect("disconnected_instance", key="k-nodisk", timeout=30)
    assert failed["reason"] == "cannot_start"
    states = [e["state"] for e in rabbit.find("state_instance", key="k-nodisk")]
    assert "restarting" not in states and states[-1] == "failed"


def test_send_with_an_id_is_done_once_even_when_redelivered(fake_nodes, rabbit, fake, redis_client):
    fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-once", phone)
    cmd = {"key": "k-once", "chat_id": f"{friend}@c.us", "message": "only once", "id": "dup-1"}
    rabbit.publish("send_message", cmd)
    first = rabbit.expect("message_sent_instance", command_id="dup-1")
    rabbit.publish("send_message", cmd)  # a client retry, or a redelivery
    second = rabbit.expect("message_sent_instance", command_id="dup-1")
    assert second["duplicate"] is True and second["message_id"] == first["message_id"]
    assert [m["body"] for m in fake.sent_by(phone)] == ["only once"]
    rabbit.publish("destroy_instance", {"key": "k-once"})
    rabbit.expect("state_instance", key="k-once", state="stopped")
    # Only the send records stay, until their window runs out.
    assert list(redis_client.scan_iter(match="instances:k-once:*")) == ["instances:k-once:sent"]
    assert 0 < redis_client.pttl("instances:k-once:sent")


def test_passwords_stay_out_of_logs_and_events(fake_nodes, rabbit, fake, tmp_path):
    secret_amqp = "amqp-pw-7f3a9c"
    secret_redis = "redis-pw-51be02"
    user = f"wwtest-{TEST_VHOST}"
    rabbitmqctl("add_user", user, secret_amqp, check=False)
    rabbitmqctl("change_password", user, secret_amqp)
    rabbitmqctl("set_permissions", "-p", TEST_VHOST, user, ".*", ".*", ".*")
    redis_server = RedisServer(tmp_path, password=secret_redis)
    try:
        node = fake_nodes(rabbit_mq_url=f"amqp://{user}:{secret_amqp}@127.0.0.1:5672/{TEST_VHOST}",
                          redis_url=redis_server.url)
        create_ready(rabbit, fake, "k-secret", new_phone())
        node.terminate()
        texts = [node.output(), node.log_text()]
        texts += [p.read_text(errors="replace") for p in (node.data_dir / "logs" / "sessions").glob("*.log")]
        assert "***@127.0.0.1" in node.log_text()  # the URLs are logged, masked
        for text in texts:
            assert secret_amqp not in text and secret_redis not in text
        for event in rabbit.events:
            assert secret_amqp not in str(event) and secret_redis not in str(event)
    finally:
        redis_server.stop()
        rabbitmqctl("delete_user", user, check=False)


@pytest.mark.browser  # the link between the page and WhatsApp's servers
def test_a_dropped_page_link_reconnects_and_nothing_is_missed(nodes, rabbit, control):
    nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-link", phone)
    for i in range(3):
        control.cut(phone)
        control.deliver(phone, friend, f"after cut {i}")  # held until the page is back
        assert rabbit.expect("message_instance", key="k-link")["message"]["body"] == f"after cut {i}"
    assert len(rabbit.find("message_instance", key="k-link")) == 3


def test_failing_and_crawling_sends_end_in_command_failed(fake_nodes, rabbit, fake):
    # What the session says of a send (the page refused it, or took too
    # long: see test_sessionproc) reaches the client as command_failed.
    fake_nodes(send_timeout=2)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-sendfault", phone)
    chat = f"{friend}@c.us"
    fake.sends(phone, "fail")
    rabbit.publish("send_message", {"key": "k-sendfault", "chat_id": chat, "message": "refused", "id": "f1"})
    assert rabbit.expect("command_failed", command_id="f1")["reason"] == "rejected"
    fake.sends(phone, "slow", delay=6)
    rabbit.publish("send_message", {"key": "k-sendfault", "chat_id": chat, "message": "crawling", "id": "f2"})
    assert rabbit.expect("command_failed", command_id="f2")["reason"] == "timeout"
    fake.sends(phone, "ok")
    rabbit.publish("send_message", {"key": "k-sendfault", "chat_id": chat, "message": "fine again", "id": "f3"})
    rabbit.expect("message_sent_instance", command_id="f3", timeout=30)
    assert [m["body"] for m in fake.sent_by(phone)] == ["fine again"]


def test_a_stopped_session_process_is_found_and_replaced(fake_nodes, rabbit, fake):
    node = fake_nodes(ping_interval=1, ping_timeout=1)
    phone = new_phone()
    create_ready(rabbit, fake, "k-stopped", phone)
    [pid] = node.session_pids()
    os.kill(pid, signal.SIGSTOP)
    try:
        rabbit.expect("state_instance", key="k-stopped", state="restarting", timeout=30)
        rabbit.expect("ready_instance", key="k-stopped", timeout=60)
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert node.session_pids() != [pid]


def watermark(broker) -> str:
    """The broker's memory high watermark setting now, to put it back."""
    out = broker.ctl("eval", "application:get_env(rabbit, vm_memory_high_watermark).").stdout.decode()
    value = out.strip().removeprefix("{ok,").removesuffix("}")
    float(value)  # a relative watermark; anything else is not handled here
    return value


@pytest.mark.browser
def test_a_memory_alarm_holds_events_until_it_clears(nodes, own_broker, own_rabbit, control, redis_client):
    # A broker of the test's own: an alarm blocks every publisher on it.
    rabbit = own_rabbit
    node = nodes(rabbit_mq_url=own_broker.url)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-alarm", phone)
    [session] = node.session_pids()
    before = watermark(own_broker)
    own_broker.ctl("set_vm_memory_high_watermark", "0.000001", timeout=60)
    try:
        control.deliver(phone, friend, "during the alarm")
        wait_for(lambda: counter(redis_client, "node-a", "publishing_blocked") >= 1, timeout=30,
                 what="the node to see the alarm")
        assert not rabbit.find("message_instance", key="k-alarm")
    finally:
        own_broker.ctl("set_vm_memory_high_watermark", before, timeout=60)
    rabbit.expect("message_instance", key="k-alarm", timeout=60)
    assert node.session_pids() == [session]


def test_a_burst_of_inbound_messages_is_all_reported_and_commands_still_flow(fake_nodes, rabbit, fake):
    fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-burst", phone)
    ids = set()
    for i in range(400):
        ids.add(fake.deliver(phone, friend, f"burst {i} " + "x" * 500))
        if i == 200:
            rabbit.publish("send_message", {"key": "k-burst", "chat_id": f"{friend}@c.us", "message": "mid-burst",
                                            "id": "b1"})
    rabbit.expect("message_sent_instance", command_id="b1", timeout=60)
    wait_for(lambda: {e["message"]["id"]["id"] for e in rabbit.find("message_instance", key="k-burst")} >= ids,
             timeout=60, interval=0.2, what="all 400 messages reported")
    assert len(rabbit.find("message_instance", key="k-burst")) == 400


@pytest.mark.browser
def test_rabbitmq_restarted_while_commands_flow(nodes, own_broker, own_rabbit, control, redis_client):
    # A broker of the test's own, stopped and started again.
    rabbit_url = own_broker.url
    node = nodes(amqp_heartbeat=2, rabbit_mq_url=rabbit_url)
    client = own_rabbit  # the command queues declared: a create published before the node is up waits
    # A durable queue of the test's own, so events survive the restart too.
    watch = f"test.watch.{uuid.uuid4().hex[:8]}"
    client.ch.queue_declare(watch, durable=True)
    client.ch.queue_bind(watch, "wa.events", "#")
    phone, friend = new_phone(), new_phone()
    create_ready(client, control, "k-restart", phone)
    [session] = node.session_pids()
    client.publish("send_message", {"key": "k-restart", "chat_id": f"{friend}@c.us", "message": "before", "id": "r0"})
    client.expect("message_sent_instance", command_id="r0")
    client.close()
    own_broker.ctl("stop_app")
    try:
        control.deliver(phone, friend, "while RabbitMQ was down")
        wait_for(lambda: counter(redis_client, "node-a", "command_link_losses") >= 1, timeout=30,
                 what="the node to notice")
    finally:
        own_broker.ctl("start_app", timeout=180)
    client = Client(rabbit_url)
    try:
        client.publish("send_message", {"key": "k-restart", "chat_id": f"{friend}@c.us", "message": "after",
                                        "id": "r1"})
        seen = []

        def drained() -> bool:
            while True:
                method, _, body = client.ch.basic_get(watch, auto_ack=True)
                if method is None:
                    break
                seen.append(orjson.loads(body))
            return any(e.get("command_id") == "r1" for e in seen) and any(
                e["event"] == "message_instance" and e["message"]["body"] == "while RabbitMQ was down" for e in seen)

        wait_for(drained, timeout=90, interval=0.2, what="the node to resume: events and commands")
        assert node.session_pids() == [session]  # the session ran on throughout
        assert [m["body"] for m in control.sent_by(phone)] == ["before", "after"]
    finally:
        client.ch.queue_delete(watch)
        client.close()


# Moves the wall clock (time.time) of the node and of its session processes
# by the number of seconds in a file the test writes; monotonic clocks, and
# the browsers, are untouched, as with a real clock jump on the machine.
CLOCK_SHIM = """
import os as _os
import time as _time

_real_time = _time.time
_path = _os.environ["WWNODE_TEST_CLOCK_FILE"]
_state = {"offset": 0.0, "read": -1.0}


def _offset():
    now = _time.monotonic()
    if now - _state["read"] > 0.05:
        try:
            with open(_path) as f:
                _state["offset"] = float(f.read() or 0)
        except (OSError, ValueError):
            pass
        _state["read"] = now
    return _state["offset"]


def _jumped_time():
    return _real_time() + _offset()


_time.time = _jumped_time
_time.time_ns = lambda: int(_jumped_time() * 1e9)
"""


def test_a_wall_clock_jump_changes_nothing(fake_nodes, rabbit, fake, redis_client, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(CLOCK_SHIM)
    clock = tmp_path / "clock"
    clock.write_text("0")
    node = fake_nodes(pythonpath=shim, wwnode_test_clock_file=clock, ping_interval=1, lease_ttl=4,
                      heartbeat_interval=0.5)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-clock", phone)
    for jump in (3 * 3600, -2 * 86400, 0):
        clock.write_text(str(jump))
        expected = (time.time() + jump) * 1000
        # The node's wall clock (its heartbeat's ts) shows the jump...
        wait_for(lambda: abs(int(redis_client.hget("nodes:node-a", "ts") or 0) - expected) < 60_000,
                 what="the node's wall clock to jump")
        # ...and nothing that keeps time cares: leases hold, health checks pass.
        rabbit.publish("send_message", {"key": "k-clock", "chat_id": f"{friend}@c.us", "message": str(jump),
                                        "id": f"c{jump}"})
        sent = rabbit.expect("message_sent_instance", command_id=f"c{jump}")
        assert abs(sent["ts"] - expected) < 60_000  # events carry the (jumped) wall time
    assert not rabbit.find("state_instance", key="k-clock", state="restarting")
    assert redis_client.pttl("instances:k-clock:owner") > 0
    assert [m["body"] for m in fake.sent_by(phone)] == [str(3 * 3600), str(-2 * 86400), "0"]
    assert node.alive()
