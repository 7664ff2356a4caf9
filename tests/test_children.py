"""The node's side of a session's pipes (``wwnode.children.Child``), with a
tiny real subprocess: ``cat``, which sends back whatever the test writes, so
the test controls every byte that arrives as an event line."""

from __future__ import annotations

import os
import select
import subprocess
import threading

import pytest

from support import wait_for
from wwnode.children import MAX_EVENT_LINE, Child, SessionArgs


@pytest.fixture
def cat():
    # In a group of its own, as the node starts sessions: kill() signals the group.
    popen = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    child = Child(popen)
    yield child
    child.kill()
    popen.wait()
    child.close()


def raw(child: Child, data: bytes) -> None:
    """Bytes as the session would write them (cat sends them back).  The
    pipe is non-blocking (the node's side of it): wait while it is full."""
    view = memoryview(data)
    while view:
        select.select([], [child.popen.stdin.fileno()], [], 5)
        try:
            view = view[os.write(child.popen.stdin.fileno(), view):]
        except BlockingIOError:
            continue


def readable(child: Child) -> bool:
    return bool(select.select([child.stdout_fd], [], [], 5)[0])


def collect(child: Child, n: int) -> list[dict]:
    got: list[dict] = []
    wait_for(lambda: got.extend(child.read_events()) or len(got) >= n, what=f"{n} events")
    return got


def test_a_line_that_arrives_in_pieces_is_one_event(cat):
    raw(cat, b'{"event": "qr", "qr": "2@a,b')
    assert readable(cat)
    assert cat.read_events() == []  # half a line: nothing yet
    raw(cat, b',c,d,e", "attempt": 1}\n{"event": "ready", "me": "5511@c.us"}\n{"event": "pong"')
    assert collect(cat, 2) == [{"event": "qr", "qr": "2@a,b,c,d,e", "attempt": 1},
                               {"event": "ready", "me": "5511@c.us"}]
    raw(cat, b', "id": "p1", "ok": true}\n')
    assert collect(cat, 1) == [{"event": "pong", "id": "p1", "ok": True}]


def test_lines_that_are_not_events_are_dropped_and_the_rest_kept(cat):
    raw(cat, b'not json\n\n   \n[1, 2]\n"text"\n{"no_event": 1}\n{"event": 5}\n\xff\xfe\n{"event": "ok"}\n')
    assert collect(cat, 1) == [{"event": "ok"}]
    assert cat.read_events() == []


def test_an_over_long_line_is_dropped_without_holding_the_node(cat):
    chunk = b"y" * 65536
    writer = threading.Thread(target=lambda: [raw(cat, chunk) for _ in range(MAX_EVENT_LINE // len(chunk) + 2)]
                              + [raw(cat, b'\n{"event": "after"}\n')])
    writer.start()  # cat echoes as fast as the test reads: writing from here would block
    got: list[dict] = []
    wait_for(lambda: got.extend(cat.read_events()) or got, timeout=30, what="the event after the long line")
    writer.join()
    assert got == [{"event": "after"}]


def test_end_of_file_is_seen(cat):
    raw(cat, b'{"event": "disconnected", "reason": "LOGOUT"}\n')
    cat.close_stdin()  # cat ends when its input does
    got = collect(cat, 1)
    wait_for(lambda: got.extend(cat.read_events()) or cat.eof, what="end of file")
    assert got == [{"event": "disconnected", "reason": "LOGOUT"}]
    assert cat.popen.wait(5) == 0


def test_commands_wait_for_a_full_pipe_without_blocking_the_node(cat):
    # Nobody reads cat's output at first: its stdout fills, then its stdin.
    pad = "x" * 1000
    for n in range(1000):  # a megabyte: far more than two pipes hold
        cat.send({"event": "echo", "n": n, "pad": pad})
    assert cat.wants_write  # the rest waits in the node, not in a blocked write
    got: list[dict] = []

    def pumped() -> bool:
        got.extend(cat.read_events())
        cat.flush()
        return len(got) == 1000

    wait_for(pumped, timeout=30, what="every command through")
    assert [e["n"] for e in got] == list(range(1000)) and not cat.wants_write


def test_a_command_to_a_session_that_is_gone_is_dropped_quietly(cat):
    cat.close_stdin()
    cat.popen.wait(5)
    cat.send({"cmd": "ping", "id": "p1"})  # no error, nothing queued
    assert cat.stdin_fd is None and not cat.wants_write


def test_the_session_module_is_a_hidden_setting(monkeypatch, tmp_path):
    def argv() -> list[str]:
        return SessionArgs(key="k", profile=tmp_path / "p", log_file=tmp_path / "l", url="http://x/", chrome="c",
                           chromedriver="d", qr_max=5, send_timeout=60, ping_timeout=10, log_bodies=False).argv()

    monkeypatch.delenv("SESSION_MODULE", raising=False)
    assert argv()[1:3] == ["-m", "sessionproc"]
    monkeypatch.setenv("SESSION_MODULE", "fakesession")
    assert argv()[1:3] == ["-m", "fakesession"]
    assert argv()[3:5] == ["--key", "k"]
