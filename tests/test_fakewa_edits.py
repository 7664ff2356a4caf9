"""Edits and deletions on the stand-in, at the world's level and through
the control API, without a browser: what a page's edit or deletion leaves
in the record of its message, and what a phone's reaches the pages."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import raw
from test_fakewa_lids import events, linked
from wwnode.fakewa.world import BadRequest, NotFound, World


def test_a_pages_edits_and_deletion_are_kept_in_its_messages_record():
    world, friend = World(), new_phone()
    link, phone = linked(world)
    world.record_sent("dev-1", "A1", f"{friend}@c.us", "helo", 1, 0.0)
    world.record_edit("dev-1", "A1", "hello")
    world.record_edit("dev-1", "A1", "hello!")
    world.record_revoke("dev-1", "A1")
    [record] = world.sent_by(phone, 0.0)
    assert (record["body"], record["previous_bodies"], record["revoked"]) == ("hello!", ["helo", "hello"], True)
    linked(world, "dev-2")
    with pytest.raises(NotFound):
        world.record_edit("dev-2", "A1", "not yours")  # another account's message
    with pytest.raises(NotFound):
        world.record_revoke("dev-1", "NOSUCH")
    with pytest.raises(BadRequest):
        world.record_edit("dev-1", "A1", None)


def test_a_phones_edit_and_deletion_reach_the_open_pages_of_the_chat():
    world = World()
    link, phone = linked(world)
    events(link)
    world.phone_edits(phone, "ABC", "new words")
    world.phone_revokes(phone, "ABC")
    got = events(link)
    assert [(e["type"], e["id"], e.get("body")) for e in got] == [("edit", "ABC", "new words"), ("revoke", "ABC", None)]
    with pytest.raises(NotFound):
        world.phone_edits(new_phone(), "ABC", "x")  # no open page
    with pytest.raises(BadRequest):
        world.phone_revokes(phone, "not an id")


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/_sim/edit", b'{"to": "5511999990001", "message_id": "ABC"}', 400, "body"),
        ("/_sim/edit", b'{"to": "5511999990001", "message_id": "ABC", "body": "x"}', 404, "no open page"),
        ("/_sim/revoke", b'{"to": "55", "message_id": "ABC"}', 400, "to"),
        ("/_wa/edit", b'{"device": "nobody", "id": "ABC", "body": "x"}', 404, "not linked"),
        ("/_wa/revoke", b'{"device": "nobody", "id": "A B"}', 400, "message_id"),
    ],
)
def test_malformed_or_unknown_edits_get_a_reason(wa, path, body, status, words):
    got, answer = raw(wa, "POST", path, body, {"Content-Type": "application/json"})
    assert (got, words in answer["error"]) == (status, True)
