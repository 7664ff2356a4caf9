"""send_message's location, contacts and poll (instead of text or media):
the checks, each with its own reason, on the node and again in the session
process; what a ready session is told; and what a session says of votes,
passed on as ``poll_vote_instance``.  No browser: a node assembled around
fakes (tests/support.py)."""

from __future__ import annotations

import orjson
import pytest

from sessionproc import contents
from sessionproc.protocol import BadCommand, BadEvent, decode_command, decode_event
from sessionproc.tracker import Tracker
from support import delivery, node_rig
from wwnode.commands import Rejected, parse

CHAT = "5511999990001@c.us"
VCARD = "BEGIN:VCARD\nVERSION:3.0\nN:Souza;Ana;;;\nFN:Ana Souza\nTEL;type=CELL;waid=5511999990007:+5511999990007\nEND:VCARD"
POLL = {"name": "Lunch?", "options": ["Pizza", "Sushi"]}
PLACE = {"latitude": -23.5505, "longitude": -46.6333}


def body(**fields) -> bytes:
    return orjson.dumps({"key": "k", "chat_id": CHAT, **fields})


@pytest.fixture
def rig(tmp_path):
    return node_rig(tmp_path)


# ----------------------------------------------------------- what is taken
def test_a_location_is_taken_with_what_it_has_and_nothing_else():
    cmd = parse("send_message", body(location={**PLACE, "name": "Praça da Sé", "address": "Sé, São Paulo",
                                               "url": "https://maps.example.com/?q=se"}, id="loc-1"))
    assert cmd.content == {"location": {"latitude": -23.5505, "longitude": -46.6333, "name": "Praça da Sé",
                                        "address": "Sé, São Paulo", "url": "https://maps.example.com/?q=se"}}
    assert (cmd.text, cmd.media, cmd.command_id) == ("", None, "loc-1")
    # Whole degrees are numbers too; empty optional fields count as absent;
    # an empty message beside it is no text.
    cmd = parse("send_message", body(location={"latitude": 90, "longitude": -180, "name": ""}, message=""))
    assert cmd.content == {"location": {"latitude": 90.0, "longitude": -180.0}}


def test_contact_cards_are_people_by_id_or_one_vcard():
    cmd = parse("send_message", body(contacts=["5511999990007@c.us", "123456789012345@lid"]))
    assert cmd.content == {"contacts": ["5511999990007@c.us", "123456789012345@lid"]}
    assert parse("send_message", body(contacts={"vcard": VCARD})).content == {"contacts": {"vcard": VCARD}}
    # A reply may quote a message, whatever it carries.
    quoted = "false_5511999990001@c.us_3EB0C0FFEE"
    assert parse("send_message", body(contacts=["5511999990007@c.us"], quoted_message_id=quoted)).quoted_message_id \
        == quoted


def test_a_poll_is_taken_trimmed_and_single_choice_unless_told():
    cmd = parse("send_message", body(poll={"name": "  Lunch? ", "options": [" Pizza", "Sushi ", "Salad"]}))
    assert cmd.content == {"poll": {"name": "Lunch?", "options": ["Pizza", "Sushi", "Salad"], "multiple": False}}
    cmd = parse("send_message", body(poll={**POLL, "options": [f"o{i}" for i in range(12)], "multiple": True}))
    assert cmd.content["poll"]["multiple"] is True and len(cmd.content["poll"]["options"]) == 12


# ---------------------------------------------------------- what is refused
BAD = [
    # two at once, or beside text or media
    ({"location": PLACE, "poll": POLL}, "conflicting_content"),
    ({"contacts": [CHAT], "location": PLACE}, "conflicting_content"),
    ({"poll": POLL, "message": "and a text"}, "conflicting_content"),
    ({"location": PLACE, "media": {"url": "https://example.com/a.jpg"}}, "conflicting_content"),
    ({"poll": POLL, "mentions": [CHAT]}, "conflicting_content"),
    # a location
    ({"location": {"latitude": 91, "longitude": 0}}, "bad_location"),
    ({"location": {"latitude": 0, "longitude": -180.5}}, "bad_location"),
    ({"location": {"latitude": "10", "longitude": 0}}, "bad_location"),
    ({"location": {"latitude": True, "longitude": 0}}, "bad_location"),
    ({"location": {"latitude": 10}}, "bad_location"),
    ({"location": {**PLACE, "url": "ftp://example.com/x"}}, "bad_location"),
    ({"location": {**PLACE, "url": "javascript:alert(1)"}}, "bad_location"),
    ({"location": {**PLACE, "name": "two\nlines"}}, "bad_location"),
    ({"location": {**PLACE, "address": 5}}, "bad_location"),
    ({"location": {**PLACE, "lat": 1}}, "bad_location"),  # a field it does not take
    ({"location": [1, 2]}, "wrong_type"),
    # contact cards
    ({"contacts": []}, "bad_contacts"),
    ({"contacts": ["bob"]}, "bad_contacts"),
    ({"contacts": ["x1@lid"]}, "bad_lid"),
    ({"contacts": [CHAT, CHAT]}, "bad_contacts"),
    ({"contacts": [f"55119999{i:05d}@c.us" for i in range(251)]}, "bad_contacts"),
    ({"contacts": [5511999990007]}, "bad_contacts"),
    ({"contacts": "5511999990007@c.us"}, "wrong_type"),
    ({"contacts": {"vcard": "hello"}}, "bad_contacts"),
    ({"contacts": {"vcard": VCARD + "\n" + VCARD}}, "bad_contacts"),
    ({"contacts": {"vcard": "BEGIN:VCARD\nVERSION:3.0\nTEL:+1\nEND:VCARD"}}, "bad_contacts"),  # no name
    ({"contacts": {"vcard": VCARD.replace("Ana Souza", "Ana\x00")}}, "bad_contacts"),
    ({"contacts": {"vcard": VCARD, "name": "x"}}, "bad_contacts"),
    # a poll
    ({"poll": {"name": "Lunch?", "options": ["Pizza"]}}, "bad_poll"),
    ({"poll": {"name": "Lunch?", "options": [f"o{i}" for i in range(13)]}}, "bad_poll"),
    ({"poll": {"name": "Lunch?", "options": ["Pizza", " Pizza "]}}, "bad_poll"),
    ({"poll": {"name": "Lunch?", "options": ["Pizza", ""]}}, "bad_poll"),
    ({"poll": {"name": "Lunch?", "options": ["Pizza", "x" * 101]}}, "bad_poll"),
    ({"poll": {"name": " ", "options": ["a", "b"]}}, "bad_poll"),
    ({"poll": {"name": "x" * 256, "options": ["a", "b"]}}, "bad_poll"),
    ({"poll": {"name": "Lunch?", "options": "Pizza, Sushi"}}, "bad_poll"),
    ({"poll": {**POLL, "multiple": "yes"}}, "bad_poll"),
    ({"poll": {**POLL, "question": "?"}}, "bad_poll"),
    ({"poll": "Lunch?"}, "wrong_type"),
    # the rest of the command as for any send
    ({"poll": POLL, "chat_id": "abc@c.us"}, "bad_chat_id"),
    ({"poll": POLL, "chat_id": "12@lid"}, "bad_lid"),
    ({"poll": POLL, "message": 5}, "wrong_type"),
    ({"poll": POLL, "quoted_message_id": "x"}, "bad_message_id"),
]


@pytest.mark.parametrize("fields, reason", BAD)
def test_bad_content_is_refused_with_its_own_reason(fields, reason):
    with pytest.raises(Rejected) as e:
        parse("send_message", body(**fields))
    assert e.value.reason == reason and e.value.key == "k" and e.value.detail


def test_a_poll_without_a_chat_is_missing_a_field():
    with pytest.raises(Rejected) as e:
        parse("send_message", orjson.dumps({"key": "k", "poll": POLL}))
    assert e.value.reason == "missing_field"


def test_a_refused_content_is_dead_lettered_and_the_session_is_told_nothing(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    d = delivery("send_message", {"key": "k", "chat_id": CHAT, "poll": {"name": "Lunch?", "options": ["Pizza"]},
                                  "id": "p1"})
    rig.dispatch.on_command(d, 1.0)
    assert rig.broker.failed() == [(d.tag, "bad_poll")]
    [failed] = rig.broker.events("command_failed")
    assert (failed["command_id"], failed["detail"]) == ("p1", "a poll needs 2 to 12 options, not 1")
    assert rec.child.commands("send") == []


# ------------------------------------------------------------- to the session
def test_a_ready_session_is_told_the_content_instead_of_a_text_and_its_answer_is_the_send(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    for i, fields in enumerate(({"location": {**PLACE, "name": "Sé"}}, {"contacts": ["5511999990007@c.us"]},
                                {"poll": POLL})):
        rig.dispatch.on_command(delivery("send_message", {"key": "k", "chat_id": CHAT, "id": f"c{i}", **fields}), 1.0)
    lines = rec.child.commands("send")
    assert [line["text"] for line in lines] == ["", "", ""]
    assert lines[0]["location"] == {"latitude": -23.5505, "longitude": -46.6333, "name": "Sé"}
    assert lines[1]["contacts"] == ["5511999990007@c.us"]
    assert lines[2]["poll"] == {"name": "Lunch?", "options": ["Pizza", "Sushi"], "multiple": False}
    # Each line is one the session reads, and checks again the same way.
    for line in lines:
        cmd = decode_command(orjson.dumps(line))
        kind = contents.kinds_in(cmd)[0]
        assert contents.check(kind, cmd[kind]) == line[kind]
    rig.say(rec, {"event": "sent", "id": lines[2]["id"], "message_id": f"true_{CHAT}_3EB0AA"}, now=1.1)
    assert rig.broker.events("message_sent_instance") == [
        {"key": "k", "chat_id": CHAT, "message_id": f"true_{CHAT}_3EB0AA", "command_id": "c2"}]


@pytest.mark.parametrize("line", [
    {"cmd": "send", "id": "a", "chat_id": CHAT, "text": "", "location": PLACE, "poll": POLL},
    {"cmd": "send", "id": "a", "chat_id": CHAT, "text": "hi", "poll": POLL},
    {"cmd": "send", "id": "a", "chat_id": CHAT, "text": "", "poll": POLL,
     "media": {"path": "/x", "mimetype": "image/jpeg", "filename": None, "as": "image"}},
    {"cmd": "send", "id": "a", "chat_id": CHAT, "text": "", "location": "here"},
    {"cmd": "send", "id": "a", "chat_id": CHAT, "text": "", "contacts": "5511999990007@c.us"},
])
def test_the_session_refuses_a_pipe_line_with_more_than_one_content(line):
    with pytest.raises(BadCommand):
        decode_command(orjson.dumps(line))


def test_the_session_checks_the_content_again_with_the_same_rules():
    with pytest.raises(contents.ContentError) as e:
        contents.check("location", {"latitude": 0, "longitude": 200})
    assert e.value.reason == "bad_location"
    with pytest.raises(contents.ContentError) as e:
        contents.check("contacts", ["12@lid"])
    assert e.value.reason == "bad_lid"


# ------------------------------------------------------------------- votes
def test_a_vote_the_session_reports_is_passed_on_as_poll_vote_instance(rig):
    rec, _ = rig.start()
    rig.make_ready(rec)
    poll = f"true_{CHAT}_3EB0AA"
    rig.say(rec, {"event": "poll_vote", "message_id": poll, "voter": "123456789012345@lid", "selected": ["Sushi"],
                  "selected_ids": [1], "voter_pn": CHAT},
            {"event": "poll_vote", "message_id": poll, "voter": CHAT, "selected": None, "selected_ids": [0, 1]})
    assert rig.broker.events("poll_vote_instance") == [
        {"key": "k", "message_id": poll, "voter": "123456789012345@lid", "selected": ["Sushi"], "selected_ids": [1],
         "voter_pn": CHAT},
        {"key": "k", "message_id": poll, "voter": CHAT, "selected": None, "selected_ids": [0, 1]}]


def test_the_pipe_carries_votes_and_the_tracker_passes_them_on():
    line = b'{"event": "poll_vote", "message_id": "m", "voter": "1@c.us", "selected": [], "selected_ids": []}'
    assert decode_event(line)["selected"] == []
    with pytest.raises(BadEvent):
        decode_event(b'{"event": "poll_vote", "message_id": "m", "voter": "1@c.us", "selected": []}')
    tracker = Tracker("http://127.0.0.1:9/", qr_max=3, was_linked=False)
    got = tracker.feed({"type": "poll_vote", "message_id": "m", "voter": "1@c.us", "selected": ["a"],
                        "selected_ids": [0], "voter_lid": "123456789012345@lid", "other": "dropped"})
    assert got == [{"event": "poll_vote", "message_id": "m", "voter": "1@c.us", "selected": ["a"],
                    "selected_ids": [0], "voter_lid": "123456789012345@lid"}]
