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
from sessionproc.protocol import MAX_EVENT_LINE
from wwnode.children import Child


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
    assert cat.bad_output is None
    # Counted by name as read: the health check takes its page's reports as signs of life.
    assert cat.heard == {"qr": 1, "ready": 1, "pong": 1}


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'"text"', b'{"no_event": 1}', b'{"event": 5}',
                                  b"\xff\xfe", b'{"event": "no-such-event"}', b'{"event": "qr"}',
                                  b'{"event": "sent", "id": "c1", "message_id": 7}'])
def test_a_line_that_is_not_an_event_of_the_protocol_ends_the_trust(cat, line):
    # Blank lines are nothing; the events before the bad line are kept; the
    # bad line and whatever follows are not read as events any more (the
    # node then ends the session: test_node.py).
    raw(cat, b'\n   \n{"event": "authenticated"}\n' + line + b'\n{"event": "authenticated"}\n')
    got: list[dict] = []
    wait_for(lambda: got.extend(cat.read_events()) or cat.bad_output, what="the bad line")
    assert got == [{"event": "authenticated"}]
    raw(cat, b'{"event": "authenticated"}\n')
    assert readable(cat) and cat.read_events() == []


def test_an_over_long_line_ends_the_trust_without_holding_the_node(cat):
    chunk = b"y" * 65536
    writer = threading.Thread(target=lambda: [raw(cat, chunk) for _ in range(MAX_EVENT_LINE // len(chunk) + 2)]
                              + [raw(cat, b'\n{"event": "authenticated"}\n')])
    writer.start()  # cat echoes as fast as the test reads: writing from here would block
    got: list[dict] = []
    wait_for(lambda: got.extend(cat.read_events()) or cat.bad_output, timeout=30, what="the long line refused")
    # Refused as too long, or as not JSON when the whole line came in one read.
    assert cat.bad_output
    wait_for(lambda: got.extend(cat.read_events()) or not writer.is_alive(), timeout=30, what="the writer")
    got.extend(cat.read_events())
    assert got == []


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
        cat.send({"event": "pong", "id": str(n), "ok": True, "pad": pad})  # cat echoes it as an event
    assert cat.wants_write  # the rest waits in the node, not in a blocked write
    got: list[dict] = []

    def pumped() -> bool:
        got.extend(cat.read_events())
        cat.flush()
        return len(got) == 1000

    wait_for(pumped, timeout=30, what="every command through")
    assert [e["id"] for e in got] == [str(n) for n in range(1000)] and not cat.wants_write


def test_a_command_to_a_session_that_is_gone_is_dropped_quietly(cat):
    cat.close_stdin()
    cat.popen.wait(5)
    cat.send({"cmd": "ping", "id": "p1"})  # no error, nothing queued
    assert cat.stdin_fd is None and not cat.wants_write


def test_the_session_module_is_a_hidden_setting(tmp_path):
    from sessionproc.protocol import SessionArgs
    from wwnode.config import load
    from wwnode.paths import Paths
    from wwnode.starts import Starts

    def argv(environ: dict) -> list[str]:
        cfg = load(environ={"DATA_DIR": str(tmp_path / "data"), **environ}, dotenv=None)
        args = Starts(cfg, Paths(cfg.data_dir), spawner=None, health=None).args_for("k")
        return args.argv(cfg.session_module)

    assert argv({})[1:3] == ["-m", "sessionproc"]
    assert argv({"SESSION_MODULE": "fakesession"})[1:3] == ["-m", "fakesession"]
    assert SessionArgs.parse(argv({"SESSION_MODULE": "fakesession"})[3:]).key == "k"
