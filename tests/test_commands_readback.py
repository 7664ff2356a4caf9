"""``query`` and ``group_action`` without a browser: the checks, each with
its own reason, on the node and again in the session process; the node's
``QUERY_MAX_ITEMS``; what a ready session is told and how its answers
become ``query_result_instance`` and ``group_action_done_instance``; a
group's changes the page reports, as ``group_update_instance``.  A node
assembled around fakes (tests/support.py)."""

from __future__ import annotations

import orjson
import pytest

from sessionproc import grouprules, queries, readback
from sessionproc.protocol import BadCommand, BadEvent, decode_command, decode_event
from sessionproc.tracker import Tracker
from support import delivery, node_rig
from wwnode.commands import Command, Rejected, parse
from wwnode.config import ConfigError, load

CHAT = "5511999990001@c.us"
GROUP = "120363000000000041@g.us"
MSG = "false_5511999990001@c.us_3EB0C0FFEE"


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path, query_max_items=50)


def body(**fields) -> bytes:
    return orjson.dumps({"key": "k", **fields})


def refusal(queue: str, **fields) -> str:
    with pytest.raises(Rejected) as e:
        parse(queue, body(**fields))
    return e.value.reason


def take(rig, cmd: Command):
    d = delivery(cmd.name)
    rig.dispatch.handlers[cmd.name](cmd, d, 1.0)
    return d


# ------------------------------------------------------------------ query
def test_a_query_is_taken_in_its_one_form():
    assert parse("query", body(what="chats", id="q1")).query == {"what": "chats"}
    cmd = parse("query", body(what="messages", chat_id=CHAT, limit=10, before=MSG))
    assert cmd.query == {"what": "messages", "chat_id": CHAT, "limit": 10, "before": MSG}
    assert parse("query", body(what="contacts", before=None)).query == {"what": "contacts"}
    assert parse("query", body(what="group", chat_id=GROUP)).query == {"what": "group", "chat_id": GROUP}
    # People asked for twice are asked for once.
    assert parse("query", body(what="ids", ids=[CHAT, "123456789012345@lid", CHAT])).query["ids"] == [
        CHAT, "123456789012345@lid"]
    assert parse("query", body(what="profile_picture", chat_id="123456789012345@lid")).query["chat_id"] == \
        "123456789012345@lid"


@pytest.mark.parametrize("fields, reason", [
    ({}, "missing_field"),
    ({"what": 3}, "wrong_type"),
    ({"what": "everything"}, "unknown_query"),
    ({"what": "messages"}, "missing_field"),
    ({"what": "messages", "chat_id": "hello"}, "bad_chat_id"),
    ({"what": "messages", "chat_id": "12@lid"}, "bad_lid"),
    ({"what": "messages", "chat_id": CHAT, "limit": "10"}, "wrong_type"),
    ({"what": "messages", "chat_id": CHAT, "limit": True}, "wrong_type"),
    ({"what": "chats", "limit": 0}, "bad_limit"),
    ({"what": "chats", "limit": 10 ** 9}, "bad_limit"),
    ({"what": "messages", "chat_id": CHAT, "before": CHAT}, "bad_message_id"),
    ({"what": "chats", "before": "last one"}, "bad_before"),
    ({"what": "contacts", "before": GROUP}, "bad_before"),
    ({"what": "chats", "chat_id": CHAT}, "bad_query"),
    ({"what": "group", "chat_id": CHAT}, "bad_group_id"),
    ({"what": "group", "chat_id": GROUP, "limit": 5}, "bad_query"),
    ({"what": "ids"}, "missing_field"),
    ({"what": "ids", "ids": []}, "bad_ids"),
    ({"what": "ids", "ids": [GROUP]}, "bad_ids"),
    ({"what": "ids", "ids": "x"}, "wrong_type"),
])
def test_a_bad_query_is_refused_with_its_own_reason(fields, reason):
    assert refusal("query", **fields) == reason
    # The session process refuses it the same way.
    with pytest.raises(queries.QueryError) as e:
        queries.check(fields)
    assert e.value.reason == reason


def test_a_query_goes_to_the_session_with_the_nodes_limit_and_comes_back_as_its_result(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = take(rig, parse("query", body(what="messages", chat_id=CHAT, before=MSG, id="q1")))
    line = rec.child.sent[-1]
    assert line == {"cmd": "query", "id": line["id"], "what": "messages", "chat_id": CHAT, "before": MSG, "limit": 50}
    decode_command(orjson.dumps(line))  # a line the session takes
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"items": [{"body": "hi"}], "more": True}})
    assert rig.broker.events("query_result_instance") == [
        {"key": "k", "what": "messages", "items": [{"body": "hi"}], "more": True, "command_id": "q1",
         "chat_id": CHAT, "before": MSG}]
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked


def test_a_limit_or_a_list_above_the_nodes_bound_is_refused_before_the_session_is_asked(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    sent = len(rec.child.sent)
    take(rig, parse("query", body(what="chats", limit=51, id="q2")))
    take(rig, parse("query", body(what="ids", ids=[f"55119999{i:05d}@c.us" for i in range(51)], id="q3")))
    take(rig, parse("query", body(what="group", chat_id=GROUP, id="q4")))  # answers whole: no limit
    assert [f["reason"] for f in rig.broker.events("command_failed")] == ["bad_limit", "bad_ids"]
    assert len(rec.child.sent) == sent + 1 and rec.child.sent[-1]["what"] == "group"
    assert "limit" not in rec.child.sent[-1]


def test_a_query_the_page_refuses_fails_with_the_pages_reason(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = take(rig, parse("query", body(what="messages", chat_id=CHAT, id="q5")))
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": "unknown_chat",
                  "detail": "WhatsApp Web has no chat"})
    assert rig.broker.events("command_failed")[0]["reason"] == "unknown_chat"
    assert rig.broker.failed() == [(orjson.loads(d.body)["tag"], "unknown_chat")]


def test_query_max_items_is_a_setting_with_bounds():
    assert load({}, dotenv=None).query_max_items == 100
    assert load({"QUERY_MAX_ITEMS": "500"}, dotenv=None).query_max_items == 500
    for bad in ("0", "1001"):
        with pytest.raises(ConfigError):
            load({"QUERY_MAX_ITEMS": bad}, dotenv=None)


def test_the_page_is_given_the_query_as_data_with_the_answers_bound():
    assert readback.page_arguments({"what": "messages", "chat_id": CHAT, "limit": 5}) == {
        "chatId": CHAT, "ids": None, "limit": 5, "before": None, "maxBytes": queries.MAX_ANSWER_BYTES}
    assert queries.MAX_ANSWER_BYTES * 2 < 4 * 1024 * 1024  # well inside a session's event line
    with pytest.raises(BadCommand):
        decode_command(orjson.dumps({"cmd": "query", "id": "1"}))


# ----------------------------------------------------------- group_action
def test_a_group_action_is_taken_in_its_one_form():
    cmd = parse("group_action", body(action="create", value="Team", participants=[CHAT], id="g1"))
    assert cmd.group == {"action": "create", "participants": [CHAT], "value": "Team"}
    assert parse("group_action", body(action="create", value="Alone")).group["participants"] == []
    assert parse("group_action", body(action="join", value="https://chat.whatsapp.com/AbCdEfGh12345678")).group == {
        "action": "join", "value": "AbCdEfGh12345678"}
    assert parse("group_action", body(action="settings", group_id=GROUP, value={"announce": True})).group["value"] == {
        "announce": True}
    assert parse("group_action", body(action="description", group_id=GROUP, value="")).group["value"] == ""
    for action in ("invite_link", "revoke_invite", "leave"):
        assert parse("group_action", body(action=action, group_id=GROUP)).group == {"action": action,
                                                                                     "group_id": GROUP}


@pytest.mark.parametrize("fields, reason", [
    ({}, "missing_field"),
    ({"action": "explode"}, "bad_action"),
    ({"action": 1}, "wrong_type"),
    ({"action": "add", "participants": [CHAT]}, "missing_field"),
    ({"action": "add", "group_id": CHAT, "participants": [CHAT]}, "bad_group_id"),
    ({"action": "add", "group_id": GROUP}, "missing_field"),
    ({"action": "add", "group_id": GROUP, "participants": []}, "bad_participants"),
    ({"action": "add", "group_id": GROUP, "participants": [CHAT, CHAT]}, "bad_participants"),
    ({"action": "add", "group_id": GROUP, "participants": ["12@lid"]}, "bad_lid"),
    ({"action": "add", "group_id": GROUP, "participants": [GROUP]}, "bad_participants"),
    ({"action": "add", "group_id": GROUP, "participants": "x"}, "wrong_type"),
    ({"action": "create", "participants": [CHAT]}, "missing_field"),
    ({"action": "create", "value": " ", "participants": []}, "bad_subject"),
    ({"action": "create", "value": "x" * 101}, "bad_subject"),
    ({"action": "subject", "group_id": GROUP, "value": "two\nlines"}, "bad_subject"),
    ({"action": "create", "group_id": GROUP, "value": "x"}, "bad_group_action"),
    ({"action": "description", "group_id": GROUP, "value": "x" * 2049}, "bad_description"),
    ({"action": "join", "value": "https://example.com/AAAAAAAAAA"}, "bad_invite"),
    ({"action": "settings", "group_id": GROUP, "value": {}}, "bad_settings"),
    ({"action": "settings", "group_id": GROUP, "value": {"announce": "yes"}}, "bad_settings"),
    ({"action": "settings", "group_id": GROUP, "value": {"open": True}}, "bad_settings"),
    ({"action": "leave", "group_id": GROUP, "value": "x"}, "bad_group_action"),
    ({"action": "leave", "group_id": GROUP, "participants": [CHAT]}, "bad_group_action"),
])
def test_a_bad_group_action_is_refused_with_its_own_reason(fields, reason):
    assert refusal("group_action", **fields) == reason
    with pytest.raises(grouprules.GroupError) as e:
        grouprules.check(fields)
    assert e.value.reason == reason


def test_a_group_action_goes_to_the_session_and_a_create_answers_the_new_group(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = take(rig, parse("group_action", body(action="create", value="Team", participants=[CHAT], id="g1")))
    line = rec.child.sent[-1]
    assert line == {"cmd": "group", "id": line["id"], "action": "create", "participants": [CHAT], "value": "Team"}
    decode_command(orjson.dumps(line))
    people = [{"id": CHAT, "ok": True}]
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"group_id": GROUP, "participants": people}})
    take(rig, parse("group_action", body(action="invite_link", group_id=GROUP, id="g2")))
    rig.say(rec, {"event": "action_done", "id": rec.child.sent[-1]["id"],
                  "result": {"code": "AbCd1234", "link": "https://chat.whatsapp.com/AbCd1234"}})
    take(rig, parse("group_action", body(action="add", group_id=GROUP, participants=[CHAT], id="g3")))
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": "not_admin",
                  "detail": "only admins may add people"})
    assert rig.broker.events("group_action_done_instance") == [
        {"key": "k", "action": "create", "group_id": GROUP, "result": {"participants": people}, "command_id": "g1"},
        {"key": "k", "action": "invite_link", "group_id": GROUP,
         "result": {"code": "AbCd1234", "link": "https://chat.whatsapp.com/AbCd1234"}, "command_id": "g2"}]
    assert [(f["reason"], f["command_id"]) for f in rig.broker.events("command_failed")] == [("not_admin", "g3")]
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked


def test_a_groups_change_the_page_reports_is_a_group_update_instance(rig):
    tracker = Tracker("http://wa.test/", 5, was_linked=False)
    report = {"type": "group_update", "group_id": GROUP, "subtype": "invite", "participants": [CHAT], "by": CHAT,
              "body": "", "by_lid": "123456789012345@lid", "settings": {"announce": False, "restrict": False}}
    [event] = tracker.feed(report)
    assert event == {"event": "group_update", "group_id": GROUP, "type": "join", "participants": [CHAT], "by": CHAT,
                     "by_lid": "123456789012345@lid"}
    decode_event(orjson.dumps(event))
    kinds = {s: tracker.feed({**report, "subtype": s})[0]["type"] for s in ("add", "create", "remove", "leave",
                                                                           "promote", "demote", "subject",
                                                                           "description", "announce", "restrict")}
    assert kinds == {"add": "add", "create": "add", "remove": "remove", "leave": "leave", "promote": "promote",
                     "demote": "demote", "subject": "subject", "description": "description",
                     "announce": "settings", "restrict": "settings"}
    assert tracker.feed({**report, "subtype": "subject", "body": "New"})[0]["value"] == "New"
    assert tracker.feed({**report, "subtype": "announce", "settings": {"announce": True}})[0]["value"] == {
        "announce": True, "restrict": False}
    assert tracker.feed({**report, "subtype": "picture"}) == []  # not one the contract names
    with pytest.raises(BadEvent):
        decode_event(orjson.dumps({"event": "group_update", "group_id": GROUP, "type": "join", "participants": []}))

    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.say(rec, event)
    rig.say(rec, tracker.feed({**report, "subtype": "announce", "by": None, "by_lid": None,
                               "settings": {"announce": True, "restrict": True}})[0])
    assert rig.broker.events("group_update_instance") == [
        {"key": "k", "group_id": GROUP, "type": "join", "participants": [CHAT], "by": CHAT,
         "by_lid": "123456789012345@lid"},
        {"key": "k", "group_id": GROUP, "type": "settings", "participants": [CHAT], "by": None,
         "value": {"announce": True, "restrict": True}}]
