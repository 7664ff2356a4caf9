"""The stand-in's locations, contact cards and polls, and votes on polls, at
the world's level and through the control API, without a browser: what a
page's send of each is kept as, what a phone's reaches the pages, who may
vote on which poll and how a vote reaches the account's open pages."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import raw
from test_fakewa_lids import events, linked
from wwnode.fakewa.client import Control, ControlError
from wwnode.fakewa.contents import card_of, sent_content
from wwnode.fakewa.world import BadRequest, NotFound, World

GROUP = "120363000000000011@g.us"
POLL_SENT = {"type": "poll_creation", "poll": {"name": "Lunch?", "options": ["Pizza", "Sushi", "Salad"],
                                               "option_ids": [0, 1, 2], "multiple": False}}


def sent_poll(world: World, device: str, to: str, msg_id: str = "3EB0AA0001", multiple: bool = False) -> dict:
    """A poll the page of ``device`` sent to ``to`` (a chat id), as the page posts it."""
    body = {**POLL_SENT, "poll": {**POLL_SENT["poll"], "multiple": multiple}}
    return world.record_sent(device, msg_id, to, "", 1, 0.0, sent_content(body))


def msgs(link) -> list[dict]:
    return [e["msg"] for e in events(link) if e["type"] == "msg"]


# -------------------------------------------------------------- from a page
def test_a_pages_location_cards_and_poll_are_kept_with_their_content():
    world = World()
    link, phone = linked(world)
    friend = new_phone()
    location = sent_content({"type": "location", "location": {"latitude": -23.55, "longitude": -46.63,
                                                              "description": "Sé\nSão Paulo", "url": None}})
    world.record_sent("dev-1", "L1", f"{friend}@c.us", "", 1, 0.0, location)
    card = card_of(friend, "Ana Souza")
    cards = sent_content({"type": "vcard", "vcards": [card["vcard"]], "names": [card["displayName"]]})
    world.record_sent("dev-1", "V1", f"{friend}@c.us", card["vcard"], 1, 0.0, cards)
    sent_poll(world, "dev-1", f"{friend}@c.us", "P1")
    records = {r["id"]: r for r in world.sent_by(phone, 0.0)}
    assert records["L1"]["type"] == "location" and records["L1"]["location"] == {
        "latitude": -23.55, "longitude": -46.63, "description": "Sé\nSão Paulo", "url": None}
    assert records["V1"]["vcards"] == [card["vcard"]] and records["V1"]["names"] == ["Ana Souza"]
    assert records["P1"]["poll"]["options"] == ["Pizza", "Sushi", "Salad"] and records["P1"]["poll"]["multiple"] is False
    # A text or a file says nothing of a content.
    assert sent_content({"body": "hi"}) == {}


@pytest.mark.parametrize("post", [
    {"type": "sticker_pack"},
    {"type": "location", "location": {"latitude": "1", "longitude": 2, "description": "", "url": None}},
    {"type": "poll_creation", "poll": {"name": "x", "options": ["a", "b"], "option_ids": [0], "multiple": False}},
    {"type": "multi_vcard", "vcards": ["a", "b"], "names": ["a"]},
    {"type": "vcard", "vcards": [], "names": []},
])
def test_a_malformed_content_from_a_page_is_refused(post):
    with pytest.raises(BadRequest):
        sent_content(post)


def test_a_page_asking_for_a_person_learns_what_its_account_may_know():
    world = World()
    _, phone = linked(world)
    _, named = linked(world, "dev-2")  # a phone that linked a browser has a push name
    stranger = new_phone()
    world.name_contact(phone, named, "Ana Souza")
    assert world.contact_info("dev-1", f"{named}@c.us") == {
        "wid": f"{named}@c.us", "pn": f"{named}@c.us", "pushname": f"Phone {named[-4:]}", "registered": True,
        "name": "Ana Souza"}
    # By LID: the number only where the account knows it.
    lid = world.lid_of(stranger)
    assert world.contact_info("dev-1", lid) == {"wid": lid}
    world.add_contact(phone, stranger)
    assert world.contact_info("dev-1", lid)["pn"] == f"{stranger}@c.us"
    assert world.contact_info("dev-1", "999999999999999@lid") == {"wid": "999999999999999@lid"}  # nobody's
    with pytest.raises(BadRequest):
        world.contact_info("dev-1", "bob")
    with pytest.raises(BadRequest):
        world.name_contact(phone, named, "two\nlines")


# ------------------------------------------------------------- from a phone
def test_a_phone_shares_a_location_sends_cards_and_a_poll_in_the_pages_field_names():
    world = World()
    link, phone = linked(world)
    friend, other = new_phone(), new_phone()
    events(link)
    world.deliver_location(phone, friend, -23.55, -46.63, name="Sé", address="São Paulo", url="https://maps.example.com/")
    world.deliver_location(phone, friend, 1, 2)
    world.deliver_cards(phone, friend, contacts=[other])
    world.deliver_cards(phone, friend, vcards=[card_of(other, "Bo")["vcard"], card_of(friend, "Cy Dee")["vcard"]])
    world.deliver_poll(phone, friend, "Lunch?", ["Pizza", "Sushi"], multiple=True, group=GROUP)
    place, bare, card, two, poll = msgs(link)
    assert place["content"] == {"type": "location", "lat": -23.55, "lng": -46.63, "loc": "Sé\nSão Paulo",
                                "clientUrl": "https://maps.example.com/"}
    assert bare["content"] == {"type": "location", "lat": 1.0, "lng": 2.0} and bare["body"] == ""
    assert card["content"] == {"type": "vcard", "vcardFormattedName": f"+{other}"}
    assert card["body"] == (f"BEGIN:VCARD\nVERSION:3.0\nN:;+{other};;;\nFN:+{other}\n"
                            f"TEL;type=CELL;waid={other}:+{other}\nEND:VCARD")
    assert two["content"]["type"] == "multi_vcard" and [c["displayName"] for c in two["content"]["vcardList"]] == [
        "Bo", "Cy Dee"]
    assert "N:Dee;Cy;;;" in two["content"]["vcardList"][1]["vcard"]
    assert poll["content"] == {"type": "poll_creation", "pollName": "Lunch?", "pollSelectableOptionsCount": 0,
                               "pollOptions": [{"name": "Pizza", "localId": 0}, {"name": "Sushi", "localId": 1}]}
    assert (poll["from"], poll["author"]) == (GROUP, f"{friend}@c.us")
    # Held for a page that is closed, as any message.
    world.close_link(link)
    msg_id = world.deliver_poll(phone, friend, "Later?", ["Yes", "No"])
    again = world.open_link("dev-1", "noise,identity,adv,WEB", claims_paired=True, now=10.0)
    world.advance(again, 1000.0)
    assert [m["content"]["pollName"] for m in msgs(again) if m["id"] == msg_id] == ["Later?"]


@pytest.mark.parametrize("call", [
    lambda w, p, f: w.deliver_location(p, f, 91, 0),
    lambda w, p, f: w.deliver_location(p, f, 0, "east"),
    lambda w, p, f: w.deliver_location(p, f, 0, 0, url="ftp://x"),
    lambda w, p, f: w.deliver_location(p, f, 0, 0, name="a\nb"),
    lambda w, p, f: w.deliver_cards(p, f),
    lambda w, p, f: w.deliver_cards(p, f, contacts=["bob"]),
    lambda w, p, f: w.deliver_cards(p, f, vcards=["hello"]),
    lambda w, p, f: w.deliver_cards(p, f, contacts=[f], vcards=["BEGIN:VCARD\nEND:VCARD"]),
    lambda w, p, f: w.deliver_poll(p, f, "Lunch?", ["Pizza"]),
    lambda w, p, f: w.deliver_poll(p, f, "Lunch?", ["Pizza", "Pizza"]),
    lambda w, p, f: w.deliver_poll(p, f, "Lunch?", ["Pizza", "Sushi"], multiple="yes"),
    lambda w, p, f: w.deliver_poll(p, f, "Lunch?", ["Pizza", "Sushi"], group="nope"),
])
def test_a_malformed_phone_send_is_refused_and_delivers_nothing(call):
    world = World()
    link, phone = linked(world)
    events(link)
    with pytest.raises(BadRequest):
        call(world, phone, new_phone())
    assert msgs(link) == []


# -------------------------------------------------------------------- votes
def test_the_other_person_votes_on_a_poll_the_account_sent_and_its_open_page_learns_it():
    world = World()
    link, phone = linked(world)
    friend = new_phone()
    sent_poll(world, "dev-1", f"{friend}@c.us")
    events(link)
    vote_id = world.vote(phone, friend, "3EB0AA0001", ["Sushi"])
    [vote] = [e for e in events(link) if e["type"] == "vote"]
    assert vote["id"] == vote_id and vote["parent_id"] == "3EB0AA0001" and vote["parent_from_me"] is True
    assert (vote["chat"], vote["voter"], vote["selected_ids"]) == (f"{friend}@c.us", f"{friend}@c.us", [1])
    assert isinstance(vote["t"], int) and isinstance(vote["sender_ts"], int)
    world.vote(phone, friend, "3EB0AA0001", [])  # taken back
    assert [e["selected_ids"] for e in events(link) if e["type"] == "vote"] == [[]]


def test_who_may_vote_on_what():
    world = World()
    link, phone = linked(world)
    friend, stranger = new_phone(), new_phone()
    sent_poll(world, "dev-1", f"{friend}@c.us")
    with pytest.raises(BadRequest):
        world.vote(phone, stranger, "3EB0AA0001", ["Pizza"])  # not in that chat
    with pytest.raises(BadRequest):
        world.vote(phone, friend, "3EB0AA0001", ["Pizza", "Sushi"])  # one choice only
    with pytest.raises(BadRequest):
        world.vote(phone, friend, "3EB0AA0001", ["Pasta"])
    with pytest.raises(BadRequest):
        world.vote(phone, friend, "3EB0AA0001", "Pizza")
    with pytest.raises(NotFound):
        world.vote(phone, friend, "3EB0FFFFFF", ["Pizza"])  # no such poll
    with pytest.raises(NotFound):
        world.vote(friend, phone, "3EB0AA0001", ["Pizza"])  # the poll is not the friend's account's
    assert [e for e in events(link) if e["type"] == "vote"] == []
    # Several choices where the poll takes them; the page closed: nobody to tell.
    sent_poll(world, "dev-1", f"{friend}@c.us", "3EB0AA0002", multiple=True)
    world.vote(phone, friend, "3EB0AA0002", ["Salad", "Pizza"])
    assert [e["selected_ids"] for e in events(link) if e["type"] == "vote"] == [[2, 0]]
    world.close_link(link)
    with pytest.raises(NotFound):
        world.vote(phone, friend, "3EB0AA0002", ["Pizza"])


def test_in_a_group_anyone_votes_shown_by_lid_where_the_group_addresses_so():
    world = World()
    link, phone = linked(world)
    creator, member, known = new_phone(), new_phone(), new_phone()
    poll_id = world.deliver_poll(phone, creator, "When?", ["Mon", "Tue"], group=GROUP)
    world.set_group_addressing(GROUP, "lid")
    world.add_contact(phone, known)
    events(link)
    world.vote(phone, member, poll_id, ["Tue"])
    world.vote(phone, known, poll_id, ["Mon"])
    first, second = [e for e in events(link) if e["type"] == "vote"]
    assert (first["chat"], first["voter"], first["parent_from_me"]) == (GROUP, world.lid_of(member), False)
    assert "lids" not in first  # the account does not know that member's number
    assert second["lids"] == [[world.lid_of(known), f"{known}@c.us"]]
    # One-to-one, a phone's poll is voted on by its sender.
    own_poll = world.deliver_poll(phone, creator, "Tea?", ["Yes", "No"])
    with pytest.raises(BadRequest):
        world.vote(phone, member, own_poll, ["Yes"])
    world.vote(phone, creator, own_poll, ["Yes"])


def test_the_control_api_plays_the_phone(control: Control, wa):
    world = wa.world
    link, phone = linked(world)
    friend = new_phone()
    events(link)
    control.share_location(phone, friend, 48.8584, 2.2945, name="Tour Eiffel")
    control.send_cards(phone, friend, contacts=[new_phone()])
    poll_id = control.send_poll(phone, friend, "Tea?", ["Yes", "No"])
    assert [m["content"]["type"] for m in msgs(link)] == ["location", "vcard", "poll_creation"]
    assert control.vote(phone, friend, poll_id, ["No"])
    assert [e["selected_ids"] for e in events(link) if e["type"] == "vote"] == [[1]]
    control.add_contact(phone, friend, name="Ana")
    assert world.contact_info("dev-1", f"{friend}@c.us")["name"] == "Ana"
    with pytest.raises(ControlError) as e:
        control.send_poll(phone, friend, "Tea?", ["Yes"])
    assert e.value.status == 400
    with pytest.raises(ControlError) as e:
        control.vote(phone, friend, "3EB0FFFFFF", ["Yes"])
    assert e.value.status == 404
    status, answer = raw(wa, "POST", "/_wa/contact", b'{"device": "dev-1", "wid": "' + f"{friend}@c.us".encode() + b'"}',
                         {"Content-Type": "application/json"})
    assert status == 200 and answer["name"] == "Ana"
