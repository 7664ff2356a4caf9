"""Faults injected for real: a TCP proxy between the node and RabbitMQ that
the test cuts or silences, a redis-server of the test's own that it
restarts, queues deleted under the node, sessions that cannot start."""

from __future__ import annotations

import os
import subprocess
import time

import orjson
import pika
import pika.exceptions
import pytest

from conftest import TEST_VHOST
from support import RedisServer, TcpProxy, new_phone, wait_for
from test_node_e2e import create_ready

pytestmark = pytest.mark.browser


@pytest.fixture
def proxy():
    p = TcpProxy(5672)
    yield p
    p.close()


def via(proxy: TcpProxy) -> str:
    return f"amqp://guest:guest@127.0.0.1:{proxy.port}/{TEST_VHOST}"


def node_log(node) -> str:
    path = node.data_dir / "logs" / "node.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_broker_cut_while_commands_flow_loses_nothing(nodes, rabbit, control, proxy):
    node = nodes(rabbit_mq_url=via(proxy), amqp_heartbeat=2)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-cut", phone)
    [session] = node.session_pids()

    proxy.cut()
    rabbit.publish("send_message", {"key": "k-cut", "chat_id": f"{friend}@c.us", "message": "queued", "id": "c1"})
    control.deliver(phone, friend, "while the broker was away")
    wait_for(lambda: "unreachable" in node_log(node) or "lost the command connection" in node_log(node),
             what="the node to notice")
    proxy.restore()

    rabbit.expect("message_sent_instance", command_id="c1", timeout=40)
    rabbit.expect("message_instance", key="k-cut", timeout=40)
    assert [e["message"]["body"] for e in rabbit.find("message_instance", key="k-cut")] == ["while the broker was away"]
    assert [m["body"] for m in control.sent_by(phone)] == ["queued"]
    assert node.session_pids() == [session]  # the session ran on throughout


def test_events_held_during_an_outage_survive_a_node_restart(nodes, rabbit, control, proxy):
    node = nodes(rabbit_mq_url=via(proxy), amqp_heartbeat=2)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-spool", phone)
    proxy.cut()
    control.deliver(phone, friend, "kept on disk")
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


def test_a_silent_connection_is_detected_and_replaced(nodes, rabbit, control, proxy):
    heartbeat = 2
    node = nodes(rabbit_mq_url=via(proxy), amqp_heartbeat=heartbeat)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-silent", phone)
    before = node_log(node).count("lost the command connection")
    proxy.freeze()
    # pika gives up on a peer that sent nothing for two heartbeat intervals.
    wait_for(lambda: node_log(node).count("lost the command connection") > before, timeout=3 * heartbeat + 5,
             what="the silent connection to be noticed")
    proxy.restore()
    rabbit.publish("send_message", {"key": "k-silent", "chat_id": f"{friend}@c.us", "message": "after", "id": "s1"})
    rabbit.expect("message_sent_instance", command_id="s1", timeout=40)


def test_a_deleted_command_queue_is_declared_again(nodes, rabbit, control):
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-del", phone)
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
    assert "cancelled by the broker" in node_log(node)


def test_redis_restarted_empty_is_filled_again_and_sessions_keep_running(nodes, rabbit, control, tmp_path):
    redis_server = RedisServer(tmp_path)
    node = nodes(redis_url=redis_server.url, lease_ttl=8, heartbeat_interval=0.5)
    import redis as redislib

    r = redislib.Redis.from_url(redis_server.url, decode_responses=True)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-ready", phone)
    rabbit.publish("create_instance", {"key": "k-showing"})
    qr = rabbit.expect("qr_instance", key="k-showing")["qr"]
    sessions = sorted(node.session_pids())

    redis_server.stop()
    control.deliver(phone, friend, "while redis was away")
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


def test_a_session_that_fails_at_every_start_ends_failed_and_spares_the_others(nodes, rabbit, control, tmp_path):
    node = nodes(backoff_initial=0.2, backoff_max=0.4, crash_limit=2, crash_window=60)
    phone = new_phone()
    create_ready(rabbit, control, "k-good", phone)
    # Something holds k-bad's profile for good: every start fails, and is
    # worth retrying as far as the session can tell.
    holder = subprocess.Popen(["sleep", "300"])
    try:
        profile = node.profile("k-bad")
        profile.mkdir(parents=True)
        import socket

        os.symlink(f"{socket.gethostname()}-{holder.pid}", profile / "SingletonLock")
        rabbit.publish("create_instance", {"key": "k-bad"})
        failed = rabbit.expect("disconnected_instance", key="k-bad", timeout=60)
        assert failed["reason"] == "crash_loop"
        states = [e["state"] for e in rabbit.find("state_instance", key="k-bad")]
        assert states.count("restarting") == 2 and states[-1] == "failed"
    finally:
        holder.kill()
        holder.wait()
    friend = new_phone()
    rabbit.publish("send_message", {"key": "k-good", "chat_id": f"{friend}@c.us", "message": "fine", "id": "g1"})
    rabbit.expect("message_sent_instance", command_id="g1")
    assert not rabbit.find("state_instance", key="k-good", state="restarting")


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


def test_send_with_an_id_is_done_once_even_when_redelivered(nodes, rabbit, control, redis_client):
    nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-once", phone)
    cmd = {"key": "k-once", "chat_id": f"{friend}@c.us", "message": "only once", "id": "dup-1"}
    rabbit.publish("send_message", cmd)
    first = rabbit.expect("message_sent_instance", command_id="dup-1")
    rabbit.publish("send_message", cmd)  # a client retry, or a redelivery
    second = rabbit.expect("message_sent_instance", command_id="dup-1")
    assert second["duplicate"] is True and second["message_id"] == first["message_id"]
    assert [m["body"] for m in control.sent_by(phone)] == ["only once"]
    rabbit.publish("destroy_instance", {"key": "k-once"})
    rabbit.expect("state_instance", key="k-once", state="stopped")
    assert list(redis_client.scan_iter(match="instances:k-once:*")) == []


def test_passwords_stay_out_of_logs_and_events(nodes, rabbit, control, tmp_path, rabbit_url):
    secret_amqp = "amqp-pw-7f3a9c"
    secret_redis = "redis-pw-51be02"
    ctl = "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "add_user", "wwtest", secret_amqp], capture_output=True, timeout=60)
    subprocess.run([ctl, "change_password", "wwtest", secret_amqp], capture_output=True, timeout=60, check=True)
    subprocess.run([ctl, "set_permissions", "-p", TEST_VHOST, "wwtest", ".*", ".*", ".*"], capture_output=True,
                   timeout=60, check=True)
    redis_server = RedisServer(tmp_path, password=secret_redis)
    try:
        node = nodes(rabbit_mq_url=f"amqp://wwtest:{secret_amqp}@127.0.0.1:5672/{TEST_VHOST}",
                     redis_url=redis_server.url)
        create_ready(rabbit, control, "k-secret", new_phone())
        node.terminate()
        texts = [node.log_text(), node_log(node)]
        texts += [p.read_text(errors="replace") for p in (node.data_dir / "logs" / "sessions").glob("*.log")]
        assert "***@127.0.0.1" in node_log(node)  # the URLs are logged, masked
        for text in texts:
            assert secret_amqp not in text and secret_redis not in text
        for event in rabbit.events:
            assert secret_amqp not in str(event) and secret_redis not in str(event)
    finally:
        redis_server.stop()


def test_a_dropped_page_link_reconnects_and_nothing_is_missed(nodes, rabbit, control):
    nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-link", phone)
    for i in range(3):
        control.cut(phone)
        control.deliver(phone, friend, f"after cut {i}")  # held until the page is back
        assert rabbit.expect("message_instance", key="k-link")["message"]["body"] == f"after cut {i}"
    assert len(rabbit.find("message_instance", key="k-link")) == 3


def test_failing_and_crawling_sends_end_in_command_failed(nodes, rabbit, control):
    nodes(send_timeout=2)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-sendfault", phone)
    chat = f"{friend}@c.us"
    control.sends(phone, "fail")
    rabbit.publish("send_message", {"key": "k-sendfault", "chat_id": chat, "message": "refused", "id": "f1"})
    assert rabbit.expect("command_failed", command_id="f1")["reason"] == "rejected"
    control.sends(phone, "slow", delay=6)
    rabbit.publish("send_message", {"key": "k-sendfault", "chat_id": chat, "message": "crawling", "id": "f2"})
    assert rabbit.expect("command_failed", command_id="f2")["reason"] == "timeout"
    control.sends(phone, "ok")
    rabbit.publish("send_message", {"key": "k-sendfault", "chat_id": chat, "message": "fine again", "id": "f3"})
    rabbit.expect("message_sent_instance", command_id="f3", timeout=30)
    assert "fine again" in [m["body"] for m in control.sent_by(phone)]
    assert "refused" not in [m["body"] for m in control.sent_by(phone)]


def test_a_stopped_session_process_is_found_and_replaced(nodes, rabbit, control):
    import signal as sig

    node = nodes(ping_interval=1, ping_timeout=1)
    phone = new_phone()
    create_ready(rabbit, control, "k-stopped", phone)
    [pid] = node.session_pids()
    os.kill(pid, sig.SIGSTOP)
    try:
        rabbit.expect("state_instance", key="k-stopped", state="restarting", timeout=30)
        rabbit.expect("ready_instance", key="k-stopped", timeout=60)
    finally:
        try:
            os.kill(pid, sig.SIGCONT)
        except ProcessLookupError:
            pass
    assert node.session_pids() != [pid]


def test_a_memory_alarm_holds_events_until_it_clears(nodes, rabbit, control):
    ctl = "/usr/sbin/rabbitmqctl"
    node = nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-alarm", phone)
    [session] = node.session_pids()
    subprocess.run([ctl, "set_vm_memory_high_watermark", "0.000001"], capture_output=True, timeout=60, check=True)
    try:
        control.deliver(phone, friend, "during the alarm")
        wait_for(lambda: "blocks publishing" in node_log(node), timeout=30, what="the node to see the alarm")
        assert not rabbit.find("message_instance", key="k-alarm")
    finally:
        subprocess.run([ctl, "set_vm_memory_high_watermark", "0.4"], capture_output=True, timeout=60, check=True)
    rabbit.expect("message_instance", key="k-alarm", timeout=60)
    assert node.session_pids() == [session]


def test_a_burst_of_inbound_messages_is_all_reported_and_commands_still_flow(nodes, rabbit, control):
    nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-burst", phone)
    ids = set()
    for i in range(400):
        ids.add(control.deliver(phone, friend, f"burst {i} " + "x" * 500))
        if i == 200:
            rabbit.publish("send_message", {"key": "k-burst", "chat_id": f"{friend}@c.us", "message": "mid-burst",
                                            "id": "b1"})
    rabbit.expect("message_sent_instance", command_id="b1", timeout=60)
    wait_for(lambda: {e["message"]["id"]["id"] for e in rabbit.find("message_instance", key="k-burst")} >= ids,
             timeout=60, interval=0.2, what="all 400 messages reported")
    assert len(rabbit.find("message_instance", key="k-burst")) == 400


def test_rabbitmq_restarted_while_commands_flow(nodes, rabbit_url, control):
    import uuid

    from support import Client

    ctl = "/usr/sbin/rabbitmqctl"
    node = nodes(amqp_heartbeat=2)
    client = Client(rabbit_url)
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
    subprocess.run([ctl, "stop_app"], capture_output=True, timeout=120, check=True)
    try:
        control.deliver(phone, friend, "while RabbitMQ was down")
        wait_for(lambda: "unreachable" in node_log(node), timeout=30, what="the node to notice")
    finally:
        subprocess.run([ctl, "start_app"], capture_output=True, timeout=180, check=True)
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


def test_a_wall_clock_jump_changes_nothing(nodes, rabbit, control, redis_client, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(CLOCK_SHIM)
    clock = tmp_path / "clock"
    clock.write_text("0")
    node = nodes(pythonpath=shim, wwnode_test_clock_file=clock, ping_interval=1, lease_ttl=4,
                 heartbeat_interval=0.5)
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, control, "k-clock", phone)
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
    assert [m["body"] for m in control.sent_by(phone)] == [str(3 * 3600), str(-2 * 86400), "0"]
    assert node.alive()
