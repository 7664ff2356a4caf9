"""An account's presence, chat states and chat list on the stand-in, at the
world's level and through the control API, without a browser: whether
other phones see it online, what the other side sees of typing and
recording (and for how long), and what the account's phone keeps of
archived, pinned and muted chats."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import raw
from test_fakewa_lids import linked
from wwnode.fakewa.client import Control
from wwnode.fakewa.presence import CHAT_STATE_LIFETIME
from wwnode.fakewa.world import BadRequest, NotFound, World

GROUP = "120363000000000041@g.us"


def test_the_other_side_sees_the_last_chat_state_and_typing_lapses_unless_sent_again():
    world, friend = World(), new_phone()
    _, phone = linked(world)
    chat = f"{friend}@c.us"
    world.record_chat_state("dev-1", chat, "composing", now=100.0)
    world.record_chat_state("dev-1", GROUP, "recording", now=101.0)
    got = world.chat_states_of(phone, now=102.0)
    assert [(s["chat"], s["state"]) for s in got["states"]] == [(chat, "composing"), (GROUP, "recording")]
    assert got["now"] == {chat: "composing", GROUP: "recording"}
    assert world.chat_states_of(phone, now=100.0 + CHAT_STATE_LIFETIME)["now"] == {chat: "paused", GROUP: "recording"}
    world.record_chat_state("dev-1", chat, "composing", now=120.0)  # sent again: shows again
    world.record_chat_state("dev-1", GROUP, "paused", now=121.0)
    assert world.chat_states_of(phone, now=130.0)["now"] == {chat: "composing", GROUP: "paused"}
    assert world.chat_states_of(new_phone(), now=130.0) == {"states": [], "now": {}}


def test_a_chat_state_needs_a_linked_page_a_chat_and_a_known_state():
    world = World()
    with pytest.raises(NotFound):
        world.record_chat_state("nobody", f"{new_phone()}@c.us", "composing", now=0.0)
    _, phone = linked(world)
    for chat, state in (("not a chat", "composing"), (f"{new_phone()}@c.us", "typing"), (None, "paused")):
        with pytest.raises(BadRequest):
            world.record_chat_state("dev-1", chat, state, now=0.0)
    assert world.chat_states_of(phone, now=0.0)["states"] == []


def test_the_phone_keeps_what_its_pages_archived_pinned_and_muted():
    world, friend = World(), new_phone()
    _, phone = linked(world)
    chat = f"{friend}@c.us"
    world.record_chat_change("dev-1", chat, {"archive": True})
    world.record_chat_change("dev-1", chat, {"pin": 1_770_000_000})
    world.record_chat_change("dev-1", GROUP, {"mute": -1})
    assert world.record_chat_change("dev-1", chat, {"mute": 1_770_003_600}) == {
        "archive": True, "pin": 1_770_000_000, "mute": 1_770_003_600}
    world.record_chat_change("dev-1", chat, {"archive": False, "pin": 0})
    assert world.chats_of(phone) == [{"chat": chat, "archive": False, "pin": 0, "mute": 1_770_003_600},
                                     {"chat": GROUP, "archive": False, "pin": 0, "mute": -1}]
    for change in ({}, {"archive": 1}, {"pin": -1}, {"mute": -2}, {"mute": True}, {"star": True}, {"pin": "soon"}):
        with pytest.raises(BadRequest):
            world.record_chat_change("dev-1", chat, change)
    with pytest.raises(BadRequest):
        world.record_chat_change("dev-1", "nobody@x", {"archive": True})
    assert world.chats_of(phone)[0]["mute"] == 1_770_003_600  # nothing changed


def test_the_control_api_reads_chat_states_and_chats(wa):
    control, friend = Control(wa.url), new_phone()
    link = wa.world.open_link("dev-c", "noise,identity,adv,WEB", claims_paired=False, now=0.0)
    phone = new_phone()
    wa.world.scan(link.qr, phone, now=0.0)
    chat = f"{friend}@c.us"
    body = f'{{"device": "dev-c", "chat": "{chat}", "state": "recording"}}'.encode()
    got, answer = raw(wa, "POST", "/_wa/chatstate", body, {"Content-Type": "application/json"})
    assert got == 200 and control.chat_states(phone)["now"] == {chat: "recording"}
    got, answer = raw(wa, "POST", "/_wa/chat", f'{{"device": "dev-c", "chat": "{chat}", "archive": true}}'.encode(),
                      {"Content-Type": "application/json"})
    assert (got, answer["archive"]) == (200, True)
    assert control.chats(phone) == {chat: {"archive": True, "pin": 0, "mute": 0}}


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/_wa/chatstate", b'{"device": "nobody", "chat": "5511999990001@c.us", "state": "composing"}', 404,
         "not linked"),
        ("/_wa/chatstate", b'{"device": "nobody", "chat": "5511999990001@c.us", "state": "typing"}', 400, "state"),
        ("/_wa/chat", b'{"device": "nobody", "chat": "5511999990001@c.us"}', 400, "archive, pin and mute"),
        ("/_wa/chat", b'{"device": "nobody", "chat": "5511999990001@c.us", "pin": 1.5}', 400, "pin"),
    ],
)
def test_malformed_chat_posts_get_a_reason(wa, path, body, status, words):
    got, answer = raw(wa, "POST", path, body, {"Content-Type": "application/json"})
    assert (got, words in answer["error"]) == (status, True)


def test_other_phones_see_the_presence_the_accounts_pages_said_last():
    world = World()
    _, phone = linked(world)
    assert world.presence_of(phone) == {"presence": None, "changes": []}
    world.record_presence("dev-1", "available")
    world.record_presence("dev-1", "unavailable")
    got = world.presence_of(phone)
    assert got["presence"] == "unavailable" and [c["state"] for c in got["changes"]] == ["available", "unavailable"]
    for bad in ("online", None, 1):
        with pytest.raises(BadRequest):
            world.record_presence("dev-1", bad)
    with pytest.raises(NotFound):
        world.record_presence("nobody", "available")
    with pytest.raises(BadRequest):
        world.presence_of("not a phone")
    assert world.presence_of(phone)["presence"] == "unavailable"


def test_the_control_api_reads_presence(wa):
    control, phone = Control(wa.url), new_phone()
    link = wa.world.open_link("dev-p", "noise,identity,adv,WEB", claims_paired=False, now=0.0)
    wa.world.scan(link.qr, phone, now=0.0)
    got, _ = raw(wa, "POST", "/_wa/presence", b'{"device": "dev-p", "state": "available"}',
                 {"Content-Type": "application/json"})
    assert got == 200 and control.presence(phone)["presence"] == "available"
    got, answer = raw(wa, "POST", "/_wa/presence", b'{"device": "dev-p", "state": "away"}',
                      {"Content-Type": "application/json"})
    assert (got, "state" in answer["error"]) == (400, True)
