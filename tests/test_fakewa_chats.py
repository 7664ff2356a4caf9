"""What an account has on the stand-in's server, without a browser: its
chats and their messages kept over the session's life, what a page is
given when it links or comes back (held messages left out: they come as
new ones), earlier messages and messages by id, archiving, pinning and
muting (by the phone or by a page: one chat model), and profile pictures;
and the account's presence and chat states: whether other phones see it
online, what the other side sees of typing and recording (and for how
long)."""

from __future__ import annotations

import urllib.request

import pytest

from support import new_phone
from test_fakewa_control import TAIL, raw
from test_fakewa_lids import events, linked, page
from wwnode.fakewa import FakeWA
from wwnode.fakewa.chats import page_content
from wwnode.fakewa.client import Control, ControlError
from wwnode.fakewa.presence import CHAT_STATE_LIFETIME
from wwnode.fakewa.world import BadRequest, NotFound, World

GROUP = "120363000000000031@g.us"


def history_of(link) -> dict:
    [history] = [e for e in events(link) if e["type"] == "history"]
    return history


def test_every_message_of_the_account_is_kept_in_its_chat_in_order():
    world = World()
    link, phone = linked(world)
    friend, other = new_phone(), new_phone()
    a = world.deliver(phone, friend, "hello")
    world.record_sent("dev-1", "S1", f"{friend}@c.us", "hi back", 5, 0.0)
    b = world.write_own(phone, f"{friend}@c.us", "from the phone")
    g = world.deliver(phone, other, "in a group", group=GROUP)
    chats = {c["id"]: c for c in world.chats_of(phone)}
    assert set(chats) == {f"{friend}@c.us", GROUP}
    assert (chats[f"{friend}@c.us"]["messages"], chats[f"{friend}@c.us"]["unreadCount"]) == (3, 1)
    assert (chats[GROUP]["messages"], chats[GROUP]["unreadCount"]) == (1, 1)
    page = world.earlier_messages("dev-1", f"{friend}@c.us", None, 10)
    assert [(m["id"], bool(m.get("from_me"))) for m in page["messages"]] == [(a, False), ("S1", True), (b, True)]
    assert page["more"] is False
    [mine] = [m for m in page["messages"] if m["id"] == "S1"]
    assert (mine["from"], mine["to"], mine["body"], mine["ack"]) == (f"{phone}@c.us", f"{friend}@c.us", "hi back", 1)
    world.receipt("S1", "read")  # a page given it later shows it read
    assert world.messages_by_id("dev-1", ["S1"])[0]["ack"] == 3
    world.forget_messages("dev-1", ["S1"])  # deleted for this account only
    assert world.messages_by_id("dev-1", ["S1"]) == []
    [in_group] = world.messages_by_id("dev-1", [g])
    assert (in_group["from"], in_group["author"]) == (GROUP, f"{other}@c.us")
    # The page marks the chat read: no unread message there any more.
    world.mark_seen("dev-1", f"{friend}@c.us")
    assert {c["id"]: c["unreadCount"] for c in world.chats_of(phone)}[f"{friend}@c.us"] == 0


def test_a_page_that_comes_back_is_given_the_chats_without_what_it_still_has_to_get_as_new():
    world = World()
    link, phone = linked(world)
    friend = new_phone()
    world.add_contact(phone, friend)
    world.name_contact(phone, friend, "Ana Souza")
    seen = world.deliver(phone, friend, "seen before")
    world.ack("dev-1", [seen])
    world.close_link(link)
    held = world.deliver(phone, friend, "while closed")

    again = world.open_link("dev-1", TAIL, True, now=10.0)
    history = history_of(again)
    assert [m["id"] for m in history["messages"]] == [seen]  # the held one comes as new, once
    # Unread: the one seen before; the held one counts when it comes.
    assert history["chats"] == [{"id": f"{friend}@c.us", "t": history["chats"][0]["t"], "unreadCount": 1,
                                 "archive": False, "pin": 0, "muteExpiration": 0}]
    assert {"wid": f"{friend}@c.us", "pn": f"{friend}@c.us", "name": "Ana Souza"}.items() <= \
        next(c for c in history["contacts"] if c["wid"] == f"{friend}@c.us").items()
    world.advance(again, 100.0)
    assert [e["msg"]["id"] for e in events(again) if e["type"] == "msg"] == [held]


def test_a_page_is_given_each_chats_latest_messages_and_loads_earlier_ones_in_pages():
    world = World()
    link, phone = linked(world)
    friend = new_phone()
    ids = [world.deliver(phone, friend, f"m{i}") for i in range(75)]
    world.ack("dev-1", ids)
    world.close_link(link)
    again = world.open_link("dev-1", TAIL, True, now=10.0)
    assert [m["id"] for m in history_of(again)["messages"]] == ids[-20:]
    page = world.earlier_messages("dev-1", f"{friend}@c.us", ids[-20], 50)
    assert ([m["id"] for m in page["messages"]], page["more"]) == (ids[5:55], True)
    page = world.earlier_messages("dev-1", f"{friend}@c.us", ids[5], 50)
    assert ([m["id"] for m in page["messages"]], page["more"]) == (ids[:5], False)
    with pytest.raises(NotFound):
        world.earlier_messages("dev-1", f"{friend}@c.us", "NOSUCHID", 50)
    assert world.earlier_messages("dev-1", f"{new_phone()}@c.us", None, 50) == {"messages": [], "more": False}
    with pytest.raises(BadRequest):
        world.earlier_messages("dev-1", f"{friend}@c.us", None, 501)


def test_a_sent_location_poll_or_cards_is_given_back_in_the_pages_field_names():
    assert page_content({"type": "location", "location": {"latitude": 1.5, "longitude": 2.0, "description": "Sé",
                                                          "url": None}}) == {
        "type": "location", "lat": 1.5, "lng": 2.0, "loc": "Sé", "clientUrl": None}
    assert page_content({"type": "poll_creation", "poll": {"name": "Q", "options": ["a", "b"], "option_ids": [0, 1],
                                                            "multiple": True}}) == {
        "type": "poll_creation", "pollName": "Q", "pollOptions": [{"name": "a", "localId": 0},
                                                                  {"name": "b", "localId": 1}],
        "pollSelectableOptionsCount": 0}
    assert page_content({"type": "multi_vcard", "vcards": ["V1", "V2"], "names": ["A", "B"]})["vcardList"] == [
        {"displayName": "A", "vcard": "V1"}, {"displayName": "B", "vcard": "V2"}]
    assert page_content({"body": "text"}) == {}


def test_the_phone_archives_pins_and_mutes_and_the_open_pages_follow():
    world = World()
    link, phone = linked(world)
    chat = f"{new_phone()}@c.us"
    events(link)
    state = world.set_chat_state(phone, chat, archive=True, pin=True, mute_until=-1)
    assert (state["archive"], state["pin"] > 0, state["muteExpiration"]) == (True, True, -1)
    [pushed] = events(link)
    assert pushed == state
    state = world.set_chat_state(phone, chat, archive=False, pin=False, mute_until=1_900_000_000_000)
    assert (state["archive"], state["pin"], state["muteExpiration"]) == (False, 0, 1_900_000_000)
    for bad in ({"archive": "yes"}, {"mute_until": -2}, {"pin": 1}):
        with pytest.raises(BadRequest):
            world.set_chat_state(phone, chat, **bad)
    with pytest.raises(NotFound):
        world.set_chat_state(new_phone(), chat, archive=True)


def test_a_profile_picture_is_a_url_of_the_stand_in_while_there_is_one():
    with FakeWA() as wa:
        control = Control(wa.url)
        link, phone = linked(wa.world)
        friend = new_phone()
        with pytest.raises(NotFound):
            wa.world.picture_of("dev-1", f"{friend}@c.us")
        control.picture(b"\xff\xd8 a jpeg", phone=friend)
        path = wa.world.picture_of("dev-1", f"{friend}@c.us")
        assert wa.world.picture_of("dev-1", wa.world.lid_of(friend)) == path  # the same person by LID
        with urllib.request.urlopen(wa.url.rstrip("/") + path) as resp:
            assert resp.read() == b"\xff\xd8 a jpeg"
        control.picture(None, phone=friend)
        with pytest.raises(NotFound):
            wa.world.picture_of("dev-1", f"{friend}@c.us")
        control.picture(b"group picture", group=GROUP)
        assert wa.world.picture_of("dev-1", GROUP).startswith("/_wa/pps?t=")
        with pytest.raises(ControlError) as e:
            control.picture(b"x", phone="12")
        assert e.value.status == 400
        assert control.chat_state(phone, GROUP, archive=True)["archive"] is True
        assert list(control.chats(phone)) == [GROUP]


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
    assert [(c["id"], c["archive"], c["pin"], c["mute"]) for c in world.chats_of(phone)] == [
        (chat, False, 0, 1_770_003_600), (GROUP, False, 0, -1)]
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
    assert control.chats(phone) == {chat: {"t": 0, "unreadCount": 0, "archive": True, "pin": 0, "mute": 0,
                                           "messages": 0}}


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


def test_what_a_page_archives_pins_and_mutes_is_the_chat_its_history_keeps():
    """One model of a chat: a page's change is what the account's other
    open pages are told, what a page that links later is given, and what
    the phone shows; the phone's own change after it stacks on it."""
    world, friend = World(), new_phone()
    first, phone = linked(world)
    other = page(world, "dev-2")
    world.scan(other.qr, phone, now=0.0)
    chat = f"{friend}@c.us"
    world.deliver(phone, friend, "hello")
    events(first), events(other)
    world.record_chat_change("dev-1", chat, {"archive": True, "pin": 1_770_000_000, "mute": -1})
    assert events(first) == []  # the page that changed it knows
    [told] = [e for e in events(other) if e["type"] == "chat_state"]
    assert (told["id"], told["archive"], told["pin"], told["muteExpiration"], told["unreadCount"]) == (
        chat, True, 1_770_000_000, -1, 1)
    [kept] = world.chats_of(phone)
    assert (kept["archive"], kept["pin"], kept["mute"], kept["messages"]) == (True, 1_770_000_000, -1, 1)
    world.close_link(other)
    again = world.open_link("dev-2", TAIL, True, now=10.0)
    [given] = history_of(again)["chats"]
    assert (given["archive"], given["pin"], given["muteExpiration"]) == (True, 1_770_000_000, -1)
    world.set_chat_state(phone, chat, archive=False)
    assert (world.chats_of(phone)[0]["archive"], world.chats_of(phone)[0]["pin"]) == (False, 1_770_000_000)
