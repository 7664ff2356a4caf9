"""The action desk (message_action, check_number), what sessions say of
messages (acks, reactions, edits, deletions) and pairing codes, on a node
assembled around fakes; and the checks of the new command fields."""

from __future__ import annotations

import orjson
import pytest

from sessionproc.protocol import EXIT_CRASHED, BadCommand, BadEvent, SessionArgs, decode_command, decode_event
from support import delivery, node_rig
from wwnode.commands import Command, Rejected, parse

MSG = "false_5511999990002@c.us_3EB0C0FFEE"


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


def desk(rig):
    return rig.dispatch.handlers["message_action"].__self__


def act(rig, cmd: Command, now=1.0):
    d = delivery(cmd.name)
    rig.dispatch.handlers[cmd.name](cmd, d, now)
    return d


def react(key="k", emoji="👍", cid="r1"):
    return Command("message_action", key, cid, action="react", message_id=MSG, emoji=emoji)


def test_an_action_goes_to_the_ready_session_and_is_acked_once_its_event_is_confirmed(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = act(rig, react())
    line = rec.child.sent[-1]
    assert line == {"cmd": "action", "id": line["id"], "action": "react", "message_id": MSG, "emoji": "👍"}
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {}}, now=1.1)
    assert rig.broker.events("message_action_done_instance") == [
        {"key": "k", "action": "react", "message_id": MSG, "emoji": "👍", "command_id": "r1"}]
    done = rig.node.readings.tally.commands
    assert d.tag not in rig.broker.acked and done[("message_action", "done")] == 0  # not with the broker yet
    rig.broker.confirm_all()
    assert d.tag in rig.broker.acked and done[("message_action", "done")] == 1  # counted as a send is: confirmed


def test_a_number_check_is_answered_with_what_the_page_found(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    act(rig, Command("check_number", "k", None, phone="5511999990003"))
    line = rec.child.sent[-1]
    assert line == {"cmd": "check_number", "id": line["id"], "phone": "5511999990003"}
    rig.say(rec, {"event": "action_done", "id": line["id"], "result": {"registered": True, "wid": "5511999990003@c.us"}})
    assert rig.broker.events("number_checked_instance") == [
        {"key": "k", "phone": "5511999990003", "registered": True, "wid": "5511999990003@c.us", "command_id": None}]


def test_a_failed_action_is_dead_lettered_with_the_sessions_reason(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = act(rig, react())
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": "unknown_message",
                  "detail": "not on the page"})
    assert rig.broker.failed() == [(d.tag, "unknown_message")]


def test_actions_before_ready_fail_during_a_restart_wait_and_unanswered_ones_go_back(rig):
    rec, _ = rig.start()
    early = act(rig, react(), now=0.0)
    assert rig.broker.failed() == [(early.tag, "not_ready")]
    unknown = act(rig, react(key="nobody"))
    assert (unknown.tag, "unknown_instance") in rig.broker.failed()

    rig.make_ready(rec)
    taken = act(rig, react())
    rig.exit(rec, EXIT_CRASHED, 1.0)
    assert rig.broker.requeued == [taken.tag]  # taken, never answered: back to its queue
    held = act(rig, react(cid="r2"), now=1.0)
    assert held.tag not in rig.broker.acked and not [f for f in rig.broker.failed() if f[0] == held.tag]
    rig.sessions.tick(rec.restart_at)
    rig.say(rec, {"event": "ready", "me": "1@c.us"}, now=3.0)
    assert rec.child.sent[-1]["cmd"] == "action"

    rig.exit(rec, EXIT_CRASHED, 4.0)
    late = act(rig, react(cid="r3"), now=4.0)
    desk(rig).tick(4.0 + 19.9)
    assert (late.tag, "not_ready") not in rig.broker.failed()
    desk(rig).tick(4.0 + 20)
    assert (late.tag, "not_ready") in rig.broker.failed()


def test_held_actions_of_a_key_a_drain_moves_go_back_to_their_queue_as_held_sends_do(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.exit(rec, EXIT_CRASHED, 1.0)  # restarting, linked: an action waits for it
    held = act(rig, react(), now=1.0)
    rig.sessions.move_out("k", 1.5)  # a drain: stopped here, started on the next node
    assert rig.broker.requeued == [held.tag] and rig.broker.failed() == []


def test_an_action_refused_by_a_stopping_session_goes_back_to_its_queue(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = act(rig, react())
    rig.say(rec, {"event": "action_failed", "id": rec.child.sent[-1]["id"], "reason": "stopping"})
    assert rig.broker.requeued == [d.tag] and rig.broker.failed() == []


def test_acks_and_reactions_pass_through_as_events(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    rig.say(rec, {"event": "ack", "message_id": "true_1@c.us_X", "chat_id": "1@c.us", "ack": 2},
            {"event": "reaction", "message_id": MSG, "reaction": "❤️", "sender": "5511999990002@c.us"})
    assert rig.broker.events("message_ack_instance") == [
        {"key": "k", "message_id": "true_1@c.us_X", "chat_id": "1@c.us", "ack": 2}]
    assert rig.broker.events("message_reaction_instance") == [
        {"key": "k", "message_id": MSG, "reaction": "❤️", "sender": "5511999990002@c.us"}]
    # Someone known by LID whose number the page knows: both ids.
    rig.say(rec, {"event": "reaction", "message_id": MSG, "reaction": "👍", "sender": "123456789012345@lid",
                  "sender_pn": "5511999990002@c.us"})
    assert rig.broker.events("message_reaction_instance")[-1] == {
        "key": "k", "message_id": MSG, "reaction": "👍", "sender": "123456789012345@lid",
        "sender_pn": "5511999990002@c.us"}


def test_edits_and_deletions_go_to_the_session_and_what_it_tells_passes_through(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    own = "true_5511999990002@c.us_3EB0C0FFEE"
    act(rig, Command("message_action", "k", "e1", action="edit", message_id=own, text="fixed"))
    act(rig, Command("message_action", "k", "d1", action="revoke", message_id=own, for_me=False))
    edit_line, revoke_line = rec.child.sent[-2:]
    assert edit_line == {"cmd": "action", "id": edit_line["id"], "action": "edit", "message_id": own, "text": "fixed"}
    assert revoke_line == {"cmd": "action", "id": revoke_line["id"], "action": "revoke", "message_id": own,
                           "for_me": False}
    rig.say(rec, {"event": "message_edit", "message": {"id": {"_serialized": own}, "body": "fixed"},
                  "previous_body": "fixd"},
            {"event": "action_done", "id": edit_line["id"], "result": {}},
            {"event": "message_revoke", "message_id": own, "chat_id": "5511999990002@c.us", "from_me": True},
            {"event": "action_done", "id": revoke_line["id"], "result": {}})
    assert rig.broker.events("message_edit_instance") == [
        {"key": "k", "message": {"id": {"_serialized": own}, "body": "fixed"}, "previous_body": "fixd"}]
    assert rig.broker.events("message_revoke_instance") == [
        {"key": "k", "message_id": own, "chat_id": "5511999990002@c.us", "from_me": True}]
    assert rig.broker.events("message_action_done_instance") == [
        {"key": "k", "action": "edit", "message_id": own, "command_id": "e1"},
        {"key": "k", "action": "revoke", "message_id": own, "for_me": False, "command_id": "d1"}]


def test_a_create_with_a_phone_links_by_pairing_code(rig):
    assert rig.node.ownership.claim("p")
    rig.carry_out(Command("create_instance", "p", pair_with_phone="5511999990009"), delivery(), 0.0)
    rec = rig.sessions.get("p")
    assert rec.child.args.pair_with_phone == "5511999990009"
    assert "--pair-with-phone" in rec.child.args.argv()
    rig.say(rec, {"event": "pairing_code", "code": "ABCD2345", "attempt": 1})
    assert rec.state == "qr"
    assert ("pairing_code", "p", "ABCD2345") in rig.store.writes
    assert rig.broker.events("pairing_code_instance") == [{"key": "p", "code": "ABCD2345", "attempt": 1}]
    rig.say(rec, {"event": "authenticated"}, {"event": "ready", "me": "5511999990009@c.us"})
    assert ("clear_pairing_code", "p") in rig.store.writes
    # A create without the field: QR codes, as always.
    assert rig.node.ownership.claim("q")
    rig.carry_out(Command("create_instance", "q"), delivery(), 0.0)
    assert rig.sessions.get("q").child.args.pair_with_phone == ""


def test_a_qr_code_and_a_pairing_code_are_said_alike_redis_first_then_the_state_then_the_code(rig):
    publish = rig.broker.publish

    def publish_in_order(item):  # the events among the Redis writes, in the order they happen
        rig.store.writes.append(("event", item.routing_key))
        publish(item)

    rig.broker.publish = publish_in_order
    for key, phone, event, said in (
            ("q", "", {"event": "qr", "qr": "a,b,c,d,e", "attempt": 1},
             ["qr", "state", "state_instance", "qr_instance"]),
            ("p", "5511999990009", {"event": "pairing_code", "code": "ABCD2345", "attempt": 1},
             ["pairing_code", "state", "state_instance", "pairing_code_instance"])):
        assert rig.node.ownership.claim(key)
        rig.carry_out(Command("create_instance", key, pair_with_phone=phone), delivery(), 0.0)
        rec = rig.sessions.get(key)
        rig.store.writes.clear()
        rig.say(rec, event)
        assert [w[1] if w[0] == "event" else w[0] for w in rig.store.writes] == said


BAD = [
    ("message_action", {"key": "k", "message_id": MSG}, "missing_field"),
    ("message_action", {"key": "k", "action": "delete", "message_id": MSG}, "bad_action"),
    ("message_action", {"key": "k", "action": 1, "message_id": MSG}, "wrong_type"),
    ("message_action", {"key": "k", "action": "react", "message_id": "hello"}, "bad_message_id"),
    ("message_action", {"key": "k", "action": "react", "message_id": MSG}, "missing_field"),
    ("message_action", {"key": "k", "action": "react", "message_id": MSG, "emoji": "ok"}, "bad_emoji"),
    ("message_action", {"key": "k", "action": "react", "message_id": MSG, "emoji": "👍" * 40}, "bad_emoji"),
    ("check_number", {"key": "k"}, "missing_field"),
    ("check_number", {"key": "k", "phone": "+55 11 9999"}, "bad_phone"),
    ("check_number", {"key": "k", "phone": 5511999990001}, "wrong_type"),
    ("send_message", {"key": "k", "chat_id": "5511999990001@c.us", "message": "x", "quoted_message_id": "x"},
     "bad_message_id"),
    ("send_message", {"key": "k", "chat_id": "5511999990001@c.us", "message": "x", "mentions": ["bob"]},
     "bad_mentions"),
    ("send_message", {"key": "k", "chat_id": "5511999990001@c.us", "message": "x", "mentions": "bob"},
     "wrong_type"),
    # A LID copied wrongly is told as such, in a chat id as in mentions.
    ("send_message", {"key": "k", "chat_id": "abc123@lid", "message": "x"}, "bad_lid"),
    ("send_message", {"key": "k", "chat_id": "123@lid", "message": "x"}, "bad_lid"),
    ("send_message", {"key": "k", "chat_id": "12345678901234-1@lid", "message": "x"}, "bad_lid"),
    ("send_message", {"key": "k", "chat_id": "123456789012345@lid.us", "message": "x"}, "bad_chat_id"),
    ("send_message", {"key": "k", "chat_id": "5511999990001@c.us", "message": "x",
                      "mentions": ["5511999990001@c.us", "x1@lid"]}, "bad_lid"),
    ("message_action", {"key": "k", "action": "edit", "message_id": MSG}, "missing_field"),
    ("message_action", {"key": "k", "action": "edit", "message_id": MSG, "text": ""}, "empty_message"),
    ("message_action", {"key": "k", "action": "edit", "message_id": MSG, "text": 5}, "wrong_type"),
    ("message_action", {"key": "k", "action": "edit", "message_id": MSG, "text": "x" * 65537}, "too_long"),
    ("message_action", {"key": "k", "action": "revoke", "message_id": MSG, "for_me": "yes"}, "wrong_type"),
    ("create_instance", {"key": "k", "pair_with_phone": "55-11"}, "bad_phone"),
    ("create_instance", {"key": "k", "pair_with_phone": 5511}, "wrong_type"),
]


@pytest.mark.parametrize("queue,body,reason", BAD)
def test_bad_fields_are_refused_with_a_reason(queue, body, reason):
    with pytest.raises(Rejected) as e:
        parse(queue, orjson.dumps(body))
    assert e.value.reason == reason and e.value.key == "k"


def test_good_fields_are_taken():
    cmd = parse("send_message", orjson.dumps({
        "key": "k", "chat_id": "120363000000000001@g.us", "message": "hi @5511999990001",
        "quoted_message_id": "false_120363000000000001@g.us_3EB0AA_5511999990001@c.us",
        "mentions": ["5511999990001@c.us"]}))
    assert cmd.quoted_message_id.endswith("_5511999990001@c.us") and cmd.mentions == ("5511999990001@c.us",)
    # People by LID: as a chat, in mentions, as the author in a message id.
    cmd = parse("send_message", orjson.dumps({
        "key": "k", "chat_id": "123456789012345@lid", "message": "hi", "mentions": ["987654321098765@lid"],
        "quoted_message_id": "false_120363000000000001@g.us_3EB0AA_987654321098765@lid"}))
    assert (cmd.chat_id, cmd.mentions) == ("123456789012345@lid", ("987654321098765@lid",))
    assert parse("message_action", orjson.dumps({"key": "k", "action": "react", "message_id": MSG,
                                                 "emoji": ""})).emoji == ""
    assert parse("message_action", orjson.dumps({"key": "k", "action": "read", "message_id": MSG})).action == "read"
    edited = parse("message_action", orjson.dumps({"key": "k", "action": "edit", "message_id": MSG, "text": "new"}))
    assert (edited.action, edited.text) == ("edit", "new")
    assert parse("message_action", orjson.dumps({"key": "k", "action": "revoke", "message_id": MSG})).for_me is False
    assert parse("message_action", orjson.dumps({"key": "k", "action": "revoke", "message_id": MSG,
                                                 "for_me": True})).for_me is True
    assert parse("create_instance", orjson.dumps({"key": "k", "pair_with_phone": "5511999990001"})).pair_with_phone


ONE_EMOJI = ["👍", "👍🏽", "❤️", "❤️‍🔥", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🧑🏿‍💻", "🇧🇷", "1️⃣", "#⃣", "©", "‼️", "ℹ️",
             "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",  # England's flag
             "\U0001FAE8"]  # newer than some Unicode tables: taken all the same
NOT_ONE_EMOJI = ["\u200b", "\u202e", "👍\u202e", "\u202e👍", "\u200f👍", "👍\u200b", "\u2066👍\u2069",  # zero-width, RTL
                 "\U000E0041", "\U0001F3F4\U000E0067", "a\u20e3", "\u20e3", "\u200d", "👍\u200d", "\u200d👍",
                 "\ufe0f", "🏽", "\U0001F1E7",  # lone tag, keycap, joiner, selector, skin tone, half a flag
                 "👍👍", "🇧🇷🇧🇷", "👍 ", "×", "ok", "!", "é", "\u0301"]  # two, text


@pytest.mark.parametrize("emoji", ONE_EMOJI)
def test_one_emoji_is_taken(emoji):
    cmd = parse("message_action", orjson.dumps({"key": "k", "action": "react", "message_id": MSG, "emoji": emoji}))
    assert cmd.emoji == emoji


@pytest.mark.parametrize("emoji", NOT_ONE_EMOJI)
def test_anything_but_one_emoji_is_refused(emoji):
    """Zero-width and right-to-left characters, lone parts of an emoji,
    two emoji and text used to pass (only ASCII letters, digits and
    spaces were refused), and reached the contact as a reaction."""
    with pytest.raises(Rejected) as e:
        parse("message_action", orjson.dumps({"key": "k", "action": "react", "message_id": MSG, "emoji": emoji}))
    assert e.value.reason == "bad_emoji"


def test_the_pipe_carries_the_new_commands_and_events():
    assert decode_command(b'{"cmd": "action", "id": "a", "action": "read", "message_id": "m"}')["action"] == "read"
    for bad in (b'{"cmd": "action", "id": "a", "action": "pin", "message_id": "m"}',
                b'{"cmd": "action", "id": "a", "action": "react", "message_id": "m"}',
                b'{"cmd": "check_number", "id": "a"}',
                b'{"cmd": "action", "id": "a", "action": "edit", "message_id": "m"}',
                b'{"cmd": "action", "id": "a", "action": "revoke", "message_id": "m", "for_me": 1}',
                b'{"cmd": "send", "id": "a", "chat_id": "c", "text": "t", "mentions": "x"}'):
        with pytest.raises(BadCommand):
            decode_command(bad)
    assert decode_event(b'{"event": "pairing_code", "code": "ABCD2345", "attempt": 1}')["code"] == "ABCD2345"
    assert decode_event(b'{"event": "ack", "message_id": "m", "chat_id": null, "ack": 3}')["ack"] == 3
    assert decode_event(b'{"event": "message_revoke", "message_id": "m", "chat_id": "c", "from_me": false}')
    with pytest.raises(BadEvent):
        decode_event(b'{"event": "message_edit", "message": {}}')  # without its previous text
    args = SessionArgs.parse(["--key", "k", "--profile", "/p", "--url", "http://x/", "--pair-with-phone", "5511999990001"])
    assert args.pair_with_phone == "5511999990001"
