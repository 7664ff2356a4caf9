"""The pipe contract both sides share (sessionproc/protocol.py): events the
node accepts, the command line, and the rules defined once."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from mediafiles import jpeg
from sessionproc.protocol import (CHAT_ID_RE, COMMANDS, EVENTS, BadArguments, BadEvent, SessionArgs, decode_command,
                                  decode_event)
from support import delivery, node_rig, wait_for
from wwnode.media.desk import MediaDesk


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


def test_every_line_the_node_writes_a_session_is_one_the_session_reads(tmp_path):
    """The lines come from the parts that write them (the send desk, the
    action desk, health's pings, a stop), driven from clients' bodies, and
    are read back by the session's own decoder; every command of the
    protocol is among them."""
    rig = node_rig(tmp_path)
    rec, _ = rig.start("k")
    rig.make_ready(rec)
    chat, theirs, ours = "5511999990001@c.us", "false_5511999990001@c.us_3EB0A1", "true_5511999990001@c.us_3EB0A2"
    for queue, body in (
            ("send_message", {"key": "k", "chat_id": chat, "message": "hi"}),
            ("send_message", {"key": "k", "chat_id": chat, "message": "hi @5511999990002", "id": "s1",
                              "quoted_message_id": theirs, "mentions": ["5511999990002@c.us"]}),
            ("send_message", {"key": "k", "chat_id": chat, "message": "a photo",
                              "media": {"data": base64.b64encode(jpeg(2000)).decode()}}),
            ("message_action", {"key": "k", "action": "react", "message_id": theirs, "emoji": "👍"}),
            ("message_action", {"key": "k", "action": "read", "message_id": theirs}),
            ("message_action", {"key": "k", "action": "edit", "message_id": ours, "text": "fixed"}),
            ("message_action", {"key": "k", "action": "revoke", "message_id": ours, "for_me": True}),
            ("check_number", {"key": "k", "phone": "5511999990003"}),
            ("update_settings", {"key": "k", "settings": {"ignore": ["groups"]}}),
            ("call_action", {"key": "k", "call_id": "3A1B2C3D4E5F6071", "action": "reject"}),
            ("chat_action", {"key": "k", "chat_id": chat, "action": "mute", "until": 1_900_000_000_000}),
            ("set_presence", {"key": "k", "state": "available"}),
            ("query", {"key": "k", "what": "chats", "limit": 10}),
            ("group_action", {"key": "k", "action": "subject", "group_id": "120363000000000001@g.us",
                              "value": "Team"})):
        rig.dispatch.on_command(delivery(queue, body), 1.0)
    media = next(c for c in rig.node.chores if isinstance(c, MediaDesk))
    wait_for(lambda: all(e.future.done() for q in media._waiting.values() for e in q), what="the photo prepared")
    media.tick(1.0)
    rig.sessions.tick(40.0)  # a ping (PING_INTERVAL 30)
    rig.sessions.recycle(rec, 41.0, "memory_limit")  # a stop
    lines = rec.child.sent
    assert [line["cmd"] for line in lines].count("send") == 3
    for line in lines:
        assert decode_command(orjson.dumps(line)) == line
    assert {line["cmd"] for line in lines} == set(COMMANDS)
