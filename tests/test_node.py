"""One node, through the public contract only (publish to the old queues,
read Redis, consume events), with fake session processes in place of
Chromium: what is checked here is the node's part, which needs sessions
that reach ``ready`` but no real page.  Real RabbitMQ, Redis and node
processes; the Chromium end-to-end tests are in test_node_e2e.py."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from support import all_gone, create_ready, new_phone, pid_gone, processes_using, wait_for

pytestmark = pytest.mark.services


def redis_keys_of(r, key: str) -> list[str]:
    return sorted(r.scan_iter(match=f"instances:{key}:*"))


def test_destroy_while_showing_qr_clears_the_qr(fake_nodes, rabbit, redis_client):
    node = fake_nodes()
    rabbit.publish("create_instance", {"key": "k-qr"})
    rabbit.expect("qr_instance", key="k-qr")
    assert redis_client.get("instances:k-qr:qr_code")
    rabbit.publish("destroy_instance", {"key": "k-qr"})
    rabbit.expect("state_instance", key="k-qr", state="stopped")
    assert redis_keys_of(redis_client, "k-qr") == []
    wait_for(lambda: node.session_pids() == [], what="the session process to end")


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


def test_bad_input_is_dead_lettered_once_and_answered(fake_nodes, rabbit, redis_client):
    node = fake_nodes()
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
        dead.append((props.headers["x-queue"], props.headers["x-reason"], body, props.headers.get("x-original-size")))
    limit = 1024 * 1024  # DEAD_LETTER_MAX_BODY: a longer body would be kept cut (test_bounded_queues.py)
    assert sorted(dead) == sorted((q, reason, body[:limit], len(body) if len(body) > limit else None)
                                  for q, body, reason in BAD_COMMANDS)
    assert list(redis_client.scan_iter(match="instances:*")) == []
    assert node.alive()

    # The node is still fine: a good command works.
    rabbit.publish("create_instance", {"key": "after-bad"})
    rabbit.expect("qr_instance", key="after-bad")


def test_send_before_ready_fails_with_not_ready(fake_nodes, rabbit):
    fake_nodes()
    rabbit.publish("create_instance", {"key": "k-early"})
    rabbit.expect("qr_instance", key="k-early")
    rabbit.publish("send_message", {"key": "k-early", "chat_id": "5511999990001@c.us", "message": "hi", "id": "e1"})
    failed = rabbit.expect("command_failed", command_id="e1")
    assert failed["reason"] == "not_ready" and failed["key"] == "k-early"


def test_two_creates_of_one_key_make_one_session(fake_nodes, rabbit, fake):
    node = fake_nodes()
    rabbit.publish("create_instance", {"key": "k-twice"})
    rabbit.publish("create_instance", {"key": "k-twice"})
    rabbit.expect("qr_instance", key="k-twice")
    wait_for(lambda: rabbit.depth("create_instance") == (0, 1), what="both creates acknowledged")
    assert len(rabbit.find("state_instance", key="k-twice", state="starting")) == 1
    assert len(node.session_pids()) == 1 and fake.starts("k-twice") == 1


@pytest.mark.parametrize("fleet", [1, 2])
def test_destroy_then_create_published_back_to_back_restarts_the_key(fake_nodes, rabbit, fake, redis_client, fleet):
    """A client restarting a session: the two commands go through two
    queues, and the node used to take the create first more often than not
    ("runs already"), then the destroy: the key ended stopped, and nothing
    told the client.  Each round must end with the key running again, on
    one node or on two (where the destroy makes the router's hop)."""
    nodes = [fake_nodes(f"node-{n}") for n in "ab"[:fleet]]
    for node in nodes:
        wait_for(lambda: redis_client.exists(f"nodes:{node.node_id}"), what="the node's heartbeat")
    phone = new_phone()
    create_ready(rabbit, fake, "k-again", phone)
    state = lambda: redis_client.hget("instances:k-again:state", "state")  # noqa: E731
    for _ in range(4):
        rabbit.publish("destroy_instance", {"key": "k-again"})
        rabbit.publish("create_instance", {"key": "k-again"})
        rabbit.expect("state_instance", key="k-again", state="stopped")
        rabbit.expect("state_instance", key="k-again", state="starting", timeout=15)
        # Its login is kept where it ran; on the other node (no shared blob
        # store here) it shows a QR code.
        if wait_for(lambda: state() in ("qr", "ready") and state()) == "qr":
            fake.scan(redis_client.get("instances:k-again:qr_code"), phone)
        wait_for(lambda: state() == "ready", what="the key ready")
    wait_for(lambda: rabbit.depth("create_instance")[0] == 0 and rabbit.depth("destroy_instance")[0] == 0,
             what="no command left waiting")
    assert not rabbit.find("command_failed") and sum(len(node.session_pids()) for node in nodes) == 1
    assert fake.starts("k-again") == 5


def test_killed_session_process_restarts_without_qr_and_held_sends_go_out(fake_nodes, rabbit, fake):
    node = fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-crash", phone)
    [pid] = node.session_pids()
    os.kill(pid, signal.SIGKILL)
    rabbit.expect("state_instance", key="k-crash", state="restarting")
    rabbit.publish("send_message", {"key": "k-crash", "chat_id": f"{friend}@c.us", "message": "during restart",
                                    "id": "held"})
    rabbit.expect("ready_instance", key="k-crash")
    assert len(rabbit.find("qr_instance", key="k-crash")) == 1  # only the first one
    assert rabbit.expect("message_sent_instance", command_id="held")["key"] == "k-crash"
    assert [m["body"] for m in fake.sent_by(phone)] == ["during restart"]
    assert node.session_pids() != [pid] and fake.starts("k-crash") == 2
    assert not rabbit.find("disconnected_instance", key="k-crash")


@pytest.mark.parametrize("phone_does, unlinked", [("logout", True), ("conflict", False)])
def test_a_session_the_phone_ends_is_reported_and_removed(fake_nodes, rabbit, fake, redis_client, phone_does,
                                                          unlinked):
    node = fake_nodes()
    phone = new_phone()
    create_ready(rabbit, fake, "k-end", phone)
    getattr(fake, phone_does)(phone)
    assert rabbit.expect("disconnected_instance", key="k-end")["reason"] == phone_does.upper()
    rabbit.expect("state_instance", key="k-end", state="stopped")
    assert redis_keys_of(redis_client, "k-end") == []
    assert not rabbit.find("state_instance", key="k-end", state="restarting")  # ended, not crashed
    # A profile whose link the phone dropped is useless; after a conflict it still holds the link.
    assert node.profile("k-end").exists() is not unlinked


def test_hung_page_is_restarted(fake_nodes, rabbit, fake):
    node = fake_nodes(ping_interval=1, ping_timeout=1)
    phone = new_phone()
    create_ready(rabbit, fake, "k-hang", phone)
    [pid] = node.session_pids()
    fake.freeze(phone)  # pongs say the page did not answer
    rabbit.expect("state_instance", key="k-hang", state="restarting", timeout=30)
    rabbit.expect("ready_instance", key="k-hang")
    assert node.session_pids() != [pid]


def test_sigterm_stops_within_bound_and_leaves_no_session_behind(fake_nodes, rabbit, fake):
    node = fake_nodes()
    for i in range(3):
        rabbit.publish("create_instance", {"key": f"k-term-{i}"})
    for i in range(3):
        rabbit.expect("qr_instance", key=f"k-term-{i}")
    tree = psutil.Process(node.proc.pid).children(recursive=True)  # the fork server too
    assert len(node.session_pids()) == 3
    assert node.terminate(timeout=30) == 0
    assert all_gone(tree) and all_gone(processes_using(node.data_dir))
    assert [r.get("stop") for i in range(3) for r in fake.records(f"k-term-{i}") if "stop" in r] == [
        {"logout": False}] * 3  # each was asked to stop, none was killed


def test_a_session_that_never_stops_is_killed_after_the_stop_timeout(fake_nodes, rabbit, fake):
    fake.script("k-stuck", start="hang")  # answers nothing, not even stop
    node = fake_nodes(stop_timeout=1)
    rabbit.publish("create_instance", {"key": "k-stuck"})
    rabbit.expect("state_instance", key="k-stuck", state="starting")
    [pid] = wait_for(node.session_pids, what="the session process")
    rabbit.publish("destroy_instance", {"key": "k-stuck"})
    rabbit.expect("state_instance", key="k-stuck", state="stopped", timeout=15)
    wait_for(lambda: pid_gone(pid), what="the stuck process to be killed")
    assert node.alive()


def test_lines_a_session_garbles_do_not_bring_the_node_down(fake_nodes, rabbit, fake):
    node = fake_nodes()
    phone, friend = new_phone(), new_phone()
    create_ready(rabbit, fake, "k-garble", phone)
    other = new_phone()
    create_ready(rabbit, fake, "k-fine", other)
    fake.act("k-garble", {"do": "write", "raw": "not json at all\n[1, 2]\n\"a string\"\n{\"no_event\": 1}\n"})
    fake.act("k-garble", {"do": "write", "raw": "y", "repeat": 5 * 1024 * 1024})  # over-long, then its end:
    fake.act("k-garble", {"do": "write", "raw": "\n"})
    rabbit.publish("send_message", {"key": "k-fine", "chat_id": f"{friend}@c.us", "message": "still", "id": "g1"})
    rabbit.expect("message_sent_instance", command_id="g1")
    assert node.alive()
    assert [m["body"] for m in fake.sent_by(other)] == ["still"]


def test_an_event_of_the_wrong_shape_ends_the_session_not_the_node(fake_nodes, rabbit, fake):
    node = fake_nodes()
    rabbit.publish("create_instance", {"key": "k-shape"})
    rabbit.expect("qr_instance", key="k-shape")
    fake.act("k-shape", {"do": "write", "raw": '{"event": "qr"}\n'})  # a second QR code, without the code
    rabbit.publish("create_instance", {"key": "k-after"})
    wait_for(lambda: not node.alive() or rabbit.find("qr_instance", key="k-after"), timeout=30,
             what="the node to take the next create, or to end")
    assert node.alive()
