"""The pipe contract both sides share (sessionproc/protocol.py): events the
node accepts, the command line, and the rules defined once."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from sessionproc.protocol import CHAT_ID_RE, COMMANDS, EVENTS, BadArguments, BadEvent, SessionArgs, decode_event
from wwnode.commands import COMMANDS as CLIENT_COMMANDS


def line(obj) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize("event", [
    {"event": "starting", "pid": 12, "t": 1},
    {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1},
    {"event": "ready", "me": None},
    {"event": "pong", "id": "p1", "ok": True, "state": None},
    {"event": "disconnected", "reason": "incompatible_page", "detail": "no Msg"},
    {"event": "sent", "id": "n1", "message_id": "true_1@c.us_X"},
])
def test_events_of_the_protocol_are_accepted(event):
    assert decode_event(line(event)) == event


@pytest.mark.parametrize("raw, why", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "object"),
    (line({"event": "hello"}), "unknown event"),
    (line({"no": "event"}), "unknown event"),
    (line({"event": "qr", "attempt": 1}), "needs qr"),
    (line({"event": "qr", "qr": 5, "attempt": 1}), "wrong type"),
    (line({"event": "sent", "id": "n1"}), "needs message_id"),
    (line({"event": "disconnected", "reason": "x", "detail": 3}), "wrong type"),
])
def test_anything_else_is_refused_with_its_reason(raw, why):
    with pytest.raises(BadEvent, match=why):
        decode_event(raw)


def test_every_event_has_its_fields_listed():
    assert set(EVENTS) >= {"qr", "authenticated", "ready", "message", "sent", "send_failed", "pong",
                           "disconnected", "auth_failure", "error"}


def test_the_chat_id_rule_is_anchored_at_the_very_end():
    assert CHAT_ID_RE.match("5511999999999@c.us")
    assert CHAT_ID_RE.match("5511999999999-1234567890@g.us")
    assert not CHAT_ID_RE.match("5511999999999@c.us\n")  # ^...$ would let this pass


def test_the_command_line_is_built_and_read_back_by_one_definition():
    args = SessionArgs(key="k-1", profile=Path("/data/sessions/k-1/profile"), url="http://127.0.0.1:9/",
                       log_file=Path("/data/logs/k-1.log"), chrome="/usr/bin/chromium", qr_max=3,
                       send_timeout=7.5, ping_timeout=2.0, log_bodies=True)
    argv = args.argv("tests.fake_session")
    assert argv[1:3] == ["-m", "tests.fake_session"]
    assert SessionArgs.parse(argv[3:]) == args


def test_a_bad_command_line_is_refused():
    with pytest.raises(BadArguments, match="--key"):
        SessionArgs.parse(["--key", "../x", "--profile", "/p", "--url", "http://x/"])
    with pytest.raises(BadArguments):
        SessionArgs.parse(["--profile", "/p"])


def test_every_command_the_node_sends_a_session_is_in_the_protocol():
    for spec in CLIENT_COMMANDS.values():
        assert spec.pipe_command is None or spec.pipe_command in COMMANDS
