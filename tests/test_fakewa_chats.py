"""What an account has on the stand-in's server, without a browser: its
chats and their messages kept over the session's life, what a page is
given when it links or comes back (held messages left out: they come as
new ones), earlier messages and messages by id, the phone's archiving,
pinning and muting, and profile pictures."""

from __future__ import annotations

import urllib.request

import pytest

from support import new_phone
from test_fakewa_control import TAIL
from test_fakewa_lids import events, linked
from wwnode.fakewa import FakeWA
from wwnode.fakewa.chats import page_content
from wwnode.fakewa.client import Control, ControlError
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
        assert [c["id"] for c in control.chats(phone)] == [GROUP]
