"""Calls on a node assembled around fakes: a session's ``call`` event is
``call_instance``; ``call_action`` goes to the session like any action and
is answered or refused with the session's reason; the reject path the
per-session settings will call; the checks of the command and of the
pipe; what the tracker makes of the page's reports."""

from __future__ import annotations

import orjson
import pytest

from sessionproc.protocol import EXIT_CRASHED, BadCommand, decode_command, decode_event
from sessionproc.tracker import Tracker
from support import delivery, node_rig
from wwnode.commands import Command, Rejected, parse

CALL = {"id": "3A1B2C3D4E5F60718293A4B5C6D7E8F9", "from": "5511999990002@c.us", "is_video": True,
        "is_group": False, "ts": 1_770_000_000_000, "from_lid": "148729301938475@lid"}


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


def ready(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    return rec


def calls_desk(rig):
    return rig.node.handlers["call"].__self__


def reject(cid="c1", call_id=CALL["id"]):
    return Command("call_action", "k", cid, action="reject", call_id=call_id)


def test_a_ringing_call_is_call_instance(rig):
    rec = ready(rig)
    rig.say(rec, {"event": "call", "call": CALL})
    assert rig.broker.events("call_instance") == [{"key": "k", "call": CALL}]


def test_a_reject_goes_to_the_session_and_is_answered_once_done(rig):
    rec = ready(rig)
    d = delivery("call_action")
    rig.dispatch.handlers["call_action"](reject(), d, 1.0)
    line = rec.child.sent[-1]
    assert line == {"cmd": "call", "id": line["id"], "action": "reject", "call_id": CALL["id"]}
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"call_id": CALL["id"], "from": CALL["from"]}})
    assert rig.broker.events("call_action_done_instance") == [
        {"key": "k", "action": "reject", "call_id": CALL["id"], "from": CALL["from"], "command_id": "c1"}]
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked


@pytest.mark.parametrize("reason", ["unknown_call", "call_ended"])
def test_a_reject_of_an_unknown_or_ended_call_is_refused_with_the_sessions_reason(rig, reason):
    rec = ready(rig)
    d = delivery("call_action")
    rig.dispatch.handlers["call_action"](reject(), d, 1.0)
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": reason, "detail": "x"})
    assert rig.broker.failed() == [(d.tag, reason)] and rig.broker.events("call_action_done_instance") == []


def test_settings_that_reject_calls_reject_each_as_it_rings_through_the_same_command(rig):
    rec = ready(rig)
    desk = calls_desk(rig)
    seen = []
    desk.rejects = lambda key, call: call["from"] == CALL["from"]
    desk.rejected = lambda key, call: seen.append((key, call["id"]))
    rig.say(rec, {"event": "call", "call": CALL})
    line = rec.child.sent[-1]
    assert line == {"cmd": "call", "id": line["id"], "action": "reject", "call_id": CALL["id"]}
    assert rig.broker.events("call_instance") == []  # once the reject is done
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"call_id": CALL["id"]}})
    assert rig.broker.events("call_instance") == [{"key": "k", "call": CALL, "rejected": True}]
    assert seen == [("k", CALL["id"])] and rig.broker.events("call_action_done_instance") == []

    # A reject the page refused: reported ringing, nothing to reply to.
    other = CALL | {"id": "ABCDEF"}
    rig.say(rec, {"event": "call", "call": other})
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": "call_ended"})
    assert rig.broker.events("call_instance")[-1] == {"key": "k", "call": other}
    # A call from someone else rings as usual.
    stranger = CALL | {"id": "FEDCBA", "from": "5511999990009@c.us"}
    rig.say(rec, {"event": "call", "call": stranger})
    assert rig.broker.events("call_instance")[-1] == {"key": "k", "call": stranger}
    assert seen == [("k", CALL["id"])] and rig.broker.failed() == []


def test_the_reject_path_answers_when_the_session_is_not_ready_or_goes_away(rig):
    outcomes = []
    desk = calls_desk(rig)
    desk.reject("k", CALL["id"], lambda result, reason: outcomes.append(reason))
    rec = ready(rig)
    desk.reject("k", CALL["id"], lambda result, reason: outcomes.append(reason))
    rig.exit(rec, EXIT_CRASHED, 1.0)
    assert outcomes == ["not_ready", "session_gone"] and rig.broker.requeued == []


BAD = [
    ({"key": "k", "call_id": "ABC"}, "missing_field"),
    ({"key": "k", "action": "reject"}, "missing_field"),
    ({"key": "k", "action": "accept", "call_id": "ABC"}, "bad_action"),
    ({"key": "k", "action": "reject", "call_id": 12}, "wrong_type"),
    ({"key": "k", "action": "reject", "call_id": "AB-CD"}, "bad_call_id"),
    ({"key": "k", "action": "reject", "call_id": ""}, "bad_call_id"),
    ({"key": "k", "action": "reject", "call_id": "A" * 65}, "bad_call_id"),
    ({"key": "k", "action": "reject", "call_id": "ABC\n"}, "bad_call_id"),
]


@pytest.mark.parametrize("body,reason", BAD)
def test_bad_call_actions_are_refused_with_a_reason(body, reason):
    with pytest.raises(Rejected) as e:
        parse("call_action", orjson.dumps(body))
    assert e.value.reason == reason and e.value.key == "k"


def test_a_good_call_action_is_taken():
    cmd = parse("call_action", orjson.dumps({"key": "k", "action": "reject", "call_id": CALL["id"], "id": "x"}))
    assert (cmd.action, cmd.call_id, cmd.command_id) == ("reject", CALL["id"], "x")


def test_the_pipe_carries_calls():
    assert decode_command(b'{"cmd": "call", "id": "a", "action": "reject", "call_id": "C1"}')["call_id"] == "C1"
    for bad in (b'{"cmd": "call", "id": "a", "action": "accept", "call_id": "C1"}',
                b'{"cmd": "call", "id": "a", "action": "reject"}'):
        with pytest.raises(BadCommand):
            decode_command(bad)
    assert decode_event(orjson.dumps({"event": "call", "call": CALL}))["call"] == CALL


def test_the_tracker_reports_a_call_with_the_fields_it_knows():
    t = Tracker("http://wa/", 5, was_linked=False)
    [event] = t.feed({"type": "call", "call": {**CALL, "ts": 1_770_000_000_000.0, "extra": 1}})
    assert event == {"event": "call", "call": CALL}
    [event] = t.feed({"type": "call", "call": {"id": "C2", "from": None, "is_video": 0}})
    assert event["call"] == {"id": "C2", "from": None, "is_video": False, "is_group": False, "ts": None}
    assert t.feed({"type": "call", "call": {"from": "x@c.us"}}) == []  # no id: nothing to reject it by


def test_a_call_the_settings_reject_is_rejected_and_the_caller_gets_the_reply_once(tmp_path):
    """``reject_calls`` and ``call_reply`` (per-session settings): the
    ringing call is rejected through the session, ``call_instance`` says
    so, and a send of the reply to the caller is published to the
    send_message queue, with an id that makes it go out at most once."""
    rig = node_rig(tmp_path)
    d = delivery()
    assert rig.node.ownership.claim("k")
    rig.carry_out(parse("create_instance", orjson.dumps(
        {"key": "k", "settings": {"reject_calls": True, "call_reply": "I cannot take calls; please write."}})),
        d, 0.0)
    rec = rig.sessions.get("k")
    rig.make_ready(rec)
    rig.say(rec, {"event": "call", "call": CALL})
    line = rec.child.sent[-1]
    assert line["cmd"] == "call" and line["action"] == "reject" and line["call_id"] == CALL["id"]
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"call_id": CALL["id"], "from": CALL["from"]}})
    assert rig.broker.events("call_instance") == [{"key": "k", "call": CALL, "rejected": True}]
    [reply] = rig.broker.forwarded("send_message")
    assert orjson.loads(reply.body) == {"key": "k", "chat_id": CALL["from"], "message": "I cannot take calls; please write.",
                                        "id": f"call-reply-{CALL['id']}"}


def test_without_reject_calls_a_call_is_only_reported(rig):
    rec = ready(rig)
    rig.say(rec, {"event": "call", "call": CALL})
    assert rig.broker.events("call_instance") == [{"key": "k", "call": CALL}]
    assert not [line for line in rec.child.sent if line["cmd"] == "call"]
    assert rig.broker.forwarded("send_message") == []
