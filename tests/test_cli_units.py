"""The command line's parts that need no service: QR codes a phone can
read (in the terminal and as PNG), a rotating code redrawn in place, one
line per event, and the capacity estimate."""

from __future__ import annotations

import io

from support import decode_qr_matrix, decode_qr_png, terminal_qr_matrix
from wwnode.tools.capacity import node_room
from wwnode.tools.eventlines import describe
from wwnode.tools.qrterm import QrScreen, render, write_png

# The shape of a real code: ref, then four base64 keys, then the platform.
QR = ("2@Vx8mnUePlSUAm0Z4kjSYlIhDjLnqf3c1Ufd4Kbu3KsbMLcWmKXzqYvcOfQ0vBEm5cFqJkW2yq4Fv3oE8w8xvY7gRNm5AqXUGBHo=,"
      "wqI0nW5PW8F8yXfYjqOjW3nUE7dTdN9uDO0PrG2hWn8=,o1cFpTj8N3kRVl3cJeBkGmBwJ6ZpQ0M9pHZ9bq2JQ3Q=,"
      "H4VdYb8T0q3X8n3h0zS2cR3qK1J1E8m3qgQWm2a7x9U=,1")


def test_the_terminal_code_reads_back_as_the_string():
    assert decode_qr_matrix(terminal_qr_matrix(render(QR))) == [QR]


def test_the_png_reads_back_as_the_string(tmp_path):
    path = tmp_path / "qr.png"
    write_png(QR, path)
    assert decode_qr_png(path) == [QR]
    assert [p.name for p in tmp_path.iterdir()] == ["qr.png"]  # written whole, no temporary left


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_new_code_replaces_the_old_one_on_a_terminal_and_is_appended_elsewhere():
    second = QR.replace("2@Vx8", "2@Zz9")
    tty = Tty()
    screen = QrScreen(tty)
    screen.show_qr(QR, "code 1")
    screen.say("a line under it")
    screen.show_qr(second, "code 2")
    first_block = render(QR).count("\n") + 1 + 1  # the code, its caption, the line under it
    text = tty.getvalue()
    assert f"\x1b[{first_block}F\x1b[J" in text
    assert decode_qr_matrix(terminal_qr_matrix(text.split("\x1b[J")[1])) == [second]

    pipe = io.StringIO()
    screen = QrScreen(pipe)
    screen.show_qr(QR, "code 1")
    screen.show_qr(second, "code 2")
    assert "\x1b" not in pipe.getvalue() and "code 1" in pipe.getvalue() and "code 2" in pipe.getvalue()


def test_an_event_is_one_line_with_what_a_person_looks_for():
    line = describe({"event": "message_instance", "node": "node-a", "ts": 1_700_000_000_123, "id": "e1",
                     "key": "shop", "message": {"from": "5511888880002@c.us", "type": "chat",
                                                "body": "hello\nthere " + "x" * 100}})
    assert "\n" not in line
    assert "node-a" in line and "message_instance" in line and "key=shop" in line
    assert "from=5511888880002@c.us" in line and "body=hello there" in line and line.endswith("...")
    assert ".123" in line
    # An event this version does not know still gets its fields.
    assert "colour=blue" in describe({"event": "future_instance", "key": "k", "colour": "blue"})


def test_room_comes_from_the_cap_or_from_what_a_session_costs():
    # 4 sessions use 40 %: 10 % each; up to 90 % there is room for 5 more.
    assert node_room({"accepting": "1", "sessions": "4", "cpu": "40.0", "mem": "20.0"}, 90.0) == (5, "load")
    # A published cap that is tighter wins.
    assert node_room({"accepting": "1", "sessions": "4", "cpu": "40.0", "mem": "20.0", "max_sessions": "6"},
                     90.0) == (2, "max_sessions")
    assert node_room({"accepting": "0", "sessions": "4", "cpu": "95.0", "mem": "20.0"}, 90.0)[0] == 0
    # No session to measure by and no cap: unknown, not a guess.
    assert node_room({"accepting": "1", "sessions": "0", "cpu": "3.0", "mem": "5.0"}, 90.0)[0] is None


def test_status_columns_say_what_they_count_and_keys_take_the_room_they_need():
    from wwnode.tools.status import render

    text = render({"nodes": {"node-a": {"sessions": "3", "sessions_ready": "2", "accepting": "1", "cpu": "12.5",
                                        "mem": "40.1", "crashes": "1", "commands_failed": "4", "disk_ok": "1"}},
                   "sessions": {"shop1": {"state": "ready", "node": "node-a"},
                                "k2": {"state": "qr", "node": "node-a", "proxy": "http://127.0.0.1:3128"}},
                   "creates_waiting": 0})
    lines = text.splitlines()
    assert lines[0].split() == ["NODE", "SESSIONS", "READY", "TAKES-CREATES", "CPU%", "MEM%", "CRASHES",
                                "CMD-FAILED", "DISK"]
    assert lines[1].split() == ["node-a", "3", "2", "yes", "12.5", "40.1", "1", "4", "ok"]
    assert "FAILED " not in lines[0].replace("CMD-FAILED", "")  # no bare FAILED beside the session counts
    assert lines[3] == "KEY   STATE NODE   PROXY"  # as wide as the longest key, not 64 characters
    assert lines[4] == "k2    qr    node-a http://127.0.0.1:3128"
    assert lines[5] == "shop1 ready node-a"
    long_key = "k" * 64
    wide = render({"nodes": {}, "sessions": {long_key: {"state": "ready", "node": "n"}}}).splitlines()
    assert wide[-1].startswith(long_key + " ready")


class _Broker:
    """A broker link that takes what it is given (``publish_fails``: a
    Ctrl-C as the create is being published)."""

    def __init__(self, publish_fails: bool = False):
        self.publish_fails = publish_fails

    def __call__(self, url):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def follow(self, names):
        pass

    def publish(self, queue, body):
        if self.publish_fails:
            raise KeyboardInterrupt


def _interrupted_reading_redis(r, key):
    raise KeyboardInterrupt


def test_ctrl_c_anywhere_after_the_create_is_published_says_it_goes_on(monkeypatch):
    import pytest

    from wwnode.tools import clientcmds
    from wwnode.config import Config

    monkeypatch.setattr(clientcmds, "open_redis", lambda *args: object())
    monkeypatch.setattr(clientcmds, "session_state", _interrupted_reading_redis)  # right after the publish
    monkeypatch.setattr(clientcmds, "Broker", _Broker())
    screen = QrScreen(io.StringIO())
    try:
        outcome = clientcmds.create(Config(), "c-1", False, None, None, screen)
    except KeyboardInterrupt:
        pytest.fail("the interruption escaped: nothing was said of the create that goes on")
    assert outcome.code == clientcmds.EXIT_INTERRUPTED and "the create of c-1 goes on" in outcome.text
    # Before it is published, nothing goes on: the interruption is the caller's.
    monkeypatch.setattr(clientcmds, "Broker", _Broker(publish_fails=True))
    with pytest.raises(KeyboardInterrupt):
        clientcmds.create(Config(), "c-1", False, None, None, screen)
