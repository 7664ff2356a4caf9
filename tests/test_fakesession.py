"""The fake session process keeps the pipe contract of sessionproc/protocol.py:
the node tests that run it instead of Chromium are only as good as that."""

from __future__ import annotations

import pytest

from sessionproc.protocol import EXIT_CANNOT_START, EXIT_CRASHED, EXIT_ENDED, EXIT_STOPPED, LINKED_MARKER
from support import FakeSessions, SessionProcess


@pytest.fixture
def fake(tmp_path) -> FakeSessions:
    return FakeSessions(tmp_path / "fake")


@pytest.fixture
def start(tmp_path, fake):
    started: list[SessionProcess] = []

    def run(key: str = "k1", *extra: str) -> SessionProcess:
        proc = SessionProcess(key, tmp_path / "profiles" / key, "http://127.0.0.1:1/", tmp_path / f"{key}.log",
                              *extra, module="fakesession", env={"FAKESESSION_DIR": str(fake.dir)})
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.kill()


def test_qr_scan_send_message_and_stop(start, fake):
    s = start()
    assert s.expect("starting")["pid"] == s.proc.pid
    qr = s.expect("qr", attempt=1)["qr"]
    assert len(qr.split(",")) == 5 and fake.key_of(qr) == "k1"
    s.send({"cmd": "send", "id": "early", "chat_id": "5511999990001@c.us", "text": "hi"})
    assert s.expect("send_failed", id="early")["reason"] == "not_ready"
    fake.scan(qr, "5511000000001")
    s.expect("authenticated")
    assert s.expect("ready")["me"] == "5511000000001@c.us"
    assert (s.profile / LINKED_MARKER).exists()
    s.send({"cmd": "send", "id": "c1", "chat_id": "5511999990001@c.us", "text": "hello"})
    sent = s.expect("sent", id="c1")
    [record] = fake.sent_by("5511000000001")
    assert record["body"] == "hello" and sent["message_id"] == f"true_5511999990001@c.us_{record['id']}"
    msg_id = fake.deliver("5511000000001", "5511999990002", "inbound")
    message = s.expect("message")["message"]
    assert message["id"]["id"] == msg_id and message["body"] == "inbound" and message["to"] == "5511000000001@c.us"
    s.send({"cmd": "ping", "id": "p1"})
    assert s.expect("pong", id="p1")["ok"] is True
    s.send({"cmd": "stop"})
    assert s.wait() == EXIT_STOPPED


def test_a_linked_profile_starts_ready_without_qr_and_logout_unlinks(start, fake):
    first = start()
    fake.scan(first.expect("qr")["qr"], "5511000000002")
    first.expect("ready")
    first.proc.stdin.close()  # end of input: a stop
    assert first.wait() == EXIT_STOPPED
    second = start()
    assert second.expect("ready")["me"] == "5511000000002@c.us"
    assert "qr" not in second.names()
    fake.logout("5511000000002")
    assert second.expect("disconnected")["reason"] == "LOGOUT"
    assert second.wait() == EXIT_ENDED
    assert not (second.profile / LINKED_MARKER).exists()
    assert fake.starts("k1") == 2


@pytest.mark.parametrize("how, code", [("crash", EXIT_CRASHED), ("cannot_start", EXIT_CANNOT_START)])
def test_scripted_starts_that_fail(start, fake, how, code):
    fake.script("k1", start=how)
    s = start()
    s.expect("disconnected")
    assert s.wait() == code


def test_sends_answer_as_scripted_in_order(start, fake):
    fake.script("k1", scan_after_ms=0, me="5511000000003")
    s = start("k1", "--send-timeout", "0.5")
    s.expect("ready")
    fake.sends("5511000000003", "fail")
    s.send({"cmd": "send", "id": "f", "chat_id": "5511999990001@c.us", "text": "refused"})
    assert s.expect("send_failed", id="f")["reason"] == "rejected"
    fake.sends("5511000000003", "slow", delay=0.2)
    s.send({"cmd": "send", "id": "a", "chat_id": "5511999990001@c.us", "text": "slow"})
    s.send({"cmd": "send", "id": "b", "chat_id": "5511999990001@c.us", "text": "slow too"})
    assert s.expect("sent")["id"] == "a"
    assert s.expect("sent")["id"] == "b"
    fake.sends("5511000000003", "slow", delay=2)
    s.send({"cmd": "send", "id": "c", "chat_id": "5511999990001@c.us", "text": "too slow"})
    assert s.expect("send_failed", id="c")["reason"] == "timeout"
    assert [m["body"] for m in fake.sent_by("5511000000003")] == ["slow", "slow too"]


def test_bad_command_lines_get_errors_and_a_frozen_page_fails_pings(start, fake):
    fake.script("k1", scan_after_ms=0, me="5511000000004")
    s = start("k1", "--ping-timeout", "0.2")
    s.expect("ready")
    for line in (b"not json\n", b'{"cmd": "explode"}\n', b"x" * (1024 * 1024 + 10) + b"\n"):
        s.send(line)
    for _ in range(3):
        assert s.expect("error")["reason"] == "bad_command"
    fake.freeze("5511000000004")
    s.send({"cmd": "ping", "id": "p1"})
    assert s.expect("pong", id="p1")["ok"] is False
    s.send({"cmd": "ping", "id": "p2"})  # the over-long line's tail was not taken for a command
    assert s.expect("pong", id="p2") and [e["event"] for e in s.seen].count("error") == 3
