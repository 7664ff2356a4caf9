"""``chat_action`` (typing, recording, paused; archive, pin, mute and their
opposites) and ``set_presence`` on a node assembled around fakes: each
goes to the session like any action and is answered or refused with the
session's reason; the checks of the command, of the pipe and of the
session's own."""

from __future__ import annotations

import orjson
import pytest

from sessionproc import chatactions
from sessionproc.protocol import CHAT_ACTIONS, BadCommand, decode_command
from support import delivery, node_rig
from wwnode.commands import Command, Rejected, parse

CHAT = "5511999990002@c.us"


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


def act(rig, cmd: Command):
    d = delivery(cmd.name)
    rig.dispatch.handlers[cmd.name](cmd, d, 1.0)
    return d


def test_each_chat_action_goes_to_the_session_and_is_answered(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    for action in CHAT_ACTIONS:
        act(rig, Command("chat_action", "k", f"c-{action}", action=action, chat_id=CHAT))
        line = rec.child.sent[-1]
        assert line == {"cmd": "chat", "id": line["id"], "action": action, "chat_id": CHAT}
        rig.say(rec, {"event": "action_done", "id": line["id"], "result": {}})
    assert [(e["action"], e["chat_id"], e["command_id"]) for e in rig.broker.events("chat_action_done_instance")] == [
        (a, CHAT, f"c-{a}") for a in CHAT_ACTIONS]


def test_a_mute_carries_its_time_and_is_answered_with_the_pages(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    act(rig, Command("chat_action", "k", "m1", action="mute", chat_id=CHAT, until=1_770_003_600_500))
    line = rec.child.sent[-1]
    assert line["until"] == 1_770_003_600_500
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"mute_expiration": 1_770_003_600}})
    act(rig, Command("chat_action", "k", "m2", action="mute", chat_id=CHAT))
    assert "until" not in rec.child.sent[-1]
    rig.say(rec, {"event": "action_done", "id": rec.child.sent[-1]["id"], "result": {"mute_expiration": -1}})
    assert [(e["command_id"], e["until"]) for e in rig.broker.events("chat_action_done_instance")] == [
        ("m1", 1_770_003_600_000), ("m2", None)]


@pytest.mark.parametrize("reason", ["too_many_pinned", "bad_until", "page_error"])
def test_a_refused_chat_action_is_dead_lettered_with_the_sessions_reason(rig, reason):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = act(rig, Command("chat_action", "k", "p1", action="pin", chat_id=CHAT))
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": reason, "detail": "x"})
    assert rig.broker.failed() == [(d.tag, reason)] and rig.broker.events("chat_action_done_instance") == []


BAD = [
    ({"key": "k", "chat_id": CHAT}, "missing_field"),
    ({"key": "k", "action": "typing"}, "missing_field"),
    ({"key": "k", "action": "delete", "chat_id": CHAT}, "bad_action"),
    ({"key": "k", "action": "stop", "chat_id": CHAT}, "bad_action"),  # whatsapp-web.js's name; ours is paused
    ({"key": "k", "action": ["typing"], "chat_id": CHAT}, "wrong_type"),
    ({"key": "k", "action": "typing", "chat_id": "5511999990002"}, "bad_chat_id"),
    ({"key": "k", "action": "typing", "chat_id": "abc@lid"}, "bad_lid"),
    ({"key": "k", "action": "archive", "chat_id": CHAT, "until": 1_770_000_000_000}, "bad_until"),
    ({"key": "k", "action": "mute", "chat_id": CHAT, "until": "tomorrow"}, "wrong_type"),
    ({"key": "k", "action": "mute", "chat_id": CHAT, "until": True}, "wrong_type"),
    ({"key": "k", "action": "mute", "chat_id": CHAT, "until": 1.5e12}, "wrong_type"),
    ({"key": "k", "action": "mute", "chat_id": CHAT, "until": -1}, "bad_until"),
    ({"key": "k", "action": "mute", "chat_id": CHAT, "until": 0}, "bad_until"),
    ({"key": "k", "action": "mute", "chat_id": CHAT, "until": 10**16}, "bad_until"),
]


@pytest.mark.parametrize("body,reason", BAD)
def test_bad_chat_actions_are_refused_with_a_reason(body, reason):
    with pytest.raises(Rejected) as e:
        parse("chat_action", orjson.dumps(body))
    assert e.value.reason == reason and e.value.key == "k"


def test_good_chat_actions_are_taken():
    cmd = parse("chat_action", orjson.dumps({"key": "k", "action": "mute", "chat_id": "120363000000000001@g.us",
                                             "until": 1_770_003_600_000, "id": "x"}))
    assert (cmd.action, cmd.chat_id, cmd.until, cmd.command_id) == ("mute", "120363000000000001@g.us",
                                                                     1_770_003_600_000, "x")
    forever = parse("chat_action", orjson.dumps({"key": "k", "action": "mute", "chat_id": CHAT, "until": None}))
    assert forever.until is None
    assert parse("chat_action", orjson.dumps({"key": "k", "action": "typing", "chat_id": "123456789012345@lid"}))


def test_the_pipe_and_the_session_check_chat_commands_too():
    line = decode_command(b'{"cmd": "chat", "id": "a", "action": "mute", "chat_id": "1@c.us", "until": 5}')
    assert line["until"] == 5
    for bad in (b'{"cmd": "chat", "id": "a", "action": "star", "chat_id": "1@c.us"}',
                b'{"cmd": "chat", "id": "a", "action": "pin"}',
                b'{"cmd": "chat", "id": "a", "action": "mute", "chat_id": "1@c.us", "until": "5"}'):
        with pytest.raises(BadCommand):
            decode_command(bad)
    good = {"cmd": "chat", "id": "a", "action": "mute", "chat_id": CHAT, "until": 1_770_003_600_000}
    assert chatactions.check(good) is None
    assert chatactions.check(good | {"chat_id": "x@lid"})[0] == "bad_lid"
    assert chatactions.check(good | {"action": "pin"})[0] == "bad_until"
    assert chatactions.check(good | {"until": -3})[0] == "bad_until"


# --------------------------------------------------------------- presence
def test_set_presence_goes_to_the_session_and_is_answered(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    for i, state in enumerate(("available", "unavailable")):
        act(rig, Command("set_presence", "k", f"p{i}", presence=state))
        line = rec.child.sent[-1]
        assert line == {"cmd": "presence", "id": line["id"], "state": state}
        rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"state": state}})
    assert rig.broker.events("presence_set_instance") == [
        {"key": "k", "state": "available", "command_id": "p0"},
        {"key": "k", "state": "unavailable", "command_id": "p1"}]


@pytest.mark.parametrize("body,reason", [
    ({"key": "k"}, "missing_field"),
    ({"key": "k", "state": True}, "wrong_type"),
    ({"key": "k", "state": "online"}, "bad_state"),
    ({"key": "k", "state": "Available"}, "bad_state"),
])
def test_bad_presences_are_refused_with_a_reason(body, reason):
    with pytest.raises(Rejected) as e:
        parse("set_presence", orjson.dumps(body))
    assert e.value.reason == reason and e.value.key == "k"


def test_the_pipe_carries_presence():
    assert parse("set_presence", orjson.dumps({"key": "k", "state": "available"})).presence == "available"
    assert decode_command(b'{"cmd": "presence", "id": "a", "state": "unavailable"}')["state"] == "unavailable"
    with pytest.raises(BadCommand):
        decode_command(b'{"cmd": "presence", "id": "a", "state": "away"}')
