"""The stand-in's hidden ids (LIDs) and the account's own messages written
on the phone, at the world's level and through the control API, without a
browser: who shows by LID, which page can map a LID to a number, what a
phone received whichever id it was written to."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import raw
from test_fakewa_messaging import page
from wwnode.fakewa.client import ControlError
from wwnode.fakewa.world import BadRequest, NotFound, World

GROUP = "120363000000000009@g.us"


def linked(world: World, device: str = "dev-1"):
    """A page of ``device``, linked to a new phone; (its link, the phone)."""
    link, phone = page(world, device), new_phone()
    world.scan(link.qr, phone, now=0.0)
    return link, phone


def events(link) -> list[dict]:
    out = []
    while not link.events.empty():
        out.append(link.events.get())
    return out


def test_every_phone_has_one_lid_that_never_changes():
    world, phone, other = World(), new_phone(), new_phone()
    lid = world.lid_of(phone)
    assert lid.endswith("@lid") and lid[:-4].isdigit() and len(lid) == 15 + 4
    assert world.lid_of(phone) == lid and world.lid_of(other) != lid
    chosen = new_phone()
    assert world.lid_of(chosen, lid="123456789012345") == "123456789012345@lid"
    assert world.lid_of(chosen, lid="123456789012345") == "123456789012345@lid"  # the same again: fine
    for bad in ({"lid": "98765432109876"}, {"lid": "abc"}, {"lid": "0123456789"}):
        with pytest.raises(BadRequest):
            world.lid_of(chosen, **bad)  # another LID, or not digits
    with pytest.raises(BadRequest):
        world.lid_of(new_phone(), lid="123456789012345")  # another phone's


def test_the_page_learns_its_own_lid_and_the_people_the_account_knows_with_the_pairing():
    world, friend = World(), new_phone()
    link, phone = linked(world)
    paired = [e for e in events(link) if e["type"] == "paired"][0]
    own = [world.lid_of(phone), f"{phone}@c.us"]
    assert paired["lid"] == own[0] and paired["lids"] == [own] and paired["lid_groups"] == []
    world.add_contact(phone, friend)
    world.set_group_addressing(GROUP, "lid")
    # A restored page (the same profile again) has it all at once.
    world.close_link(link)
    again = world.open_link("dev-1", "noise,identity,adv,WEB", claims_paired=True, now=1.0)
    paired = events(again)[0]
    assert paired["restored"] is True and paired["lids"] == [own, [world.lid_of(friend), f"{friend}@c.us"]]
    assert paired["lid_groups"] == [GROUP]


def test_someone_known_only_by_lid_writes_from_the_lid_and_the_page_cannot_map_it():
    world, stranger = World(), new_phone()
    link, phone = linked(world)
    events(link)
    world.deliver(phone, stranger, "hi", by_lid=True)
    [msg] = [e["msg"] for e in events(link)]
    assert msg["from"] == world.lid_of(stranger) and "lids" not in msg
    # Once the account has the number, the page learns both ids at once,
    # and later messages carry them.
    world.add_contact(phone, stranger)
    assert events(link) == [{"type": "lids", "pairs": [[world.lid_of(stranger), f"{stranger}@c.us"]]},
                            {"type": "contact", "contact": {"wid": f"{stranger}@c.us", "pn": f"{stranger}@c.us"}}]
    world.add_contact(phone, stranger)
    assert events(link) == []  # known already: nothing new
    world.deliver(phone, stranger, "again", by_lid=True)
    assert events(link)[0]["msg"]["lids"] == [[world.lid_of(stranger), f"{stranger}@c.us"]]


def test_someone_who_writes_by_number_is_known_by_both_ids():
    world, friend = World(), new_phone()
    link, phone = linked(world)
    events(link)
    world.deliver(phone, friend, "hi")
    msg = events(link)[0]["msg"]
    assert msg["from"] == f"{friend}@c.us" and msg["lids"] == [[world.lid_of(friend), f"{friend}@c.us"]]


def test_a_group_in_lid_addressing_mode_shows_its_members_by_lid():
    world, member = World(), new_phone()
    link, phone = linked(world)
    other_link, _ = linked(world, "dev-2")
    events(link), events(other_link)
    world.deliver(phone, member, "by number", group=GROUP)
    assert events(link)[0]["msg"]["author"] == f"{member}@c.us"
    world.set_group_addressing(GROUP, "lid")
    # No members are kept: every open page hears of it.
    assert events(link) == events(other_link) == [{"type": "group", "id": GROUP, "addressing": "lid"}]
    stranger = new_phone()
    world.deliver(phone, stranger, "by lid", group=GROUP)
    msg = events(link)[0]["msg"]
    assert (msg["from"], msg["author"], msg["addressing"]) == (GROUP, world.lid_of(stranger), "lid")
    assert "lids" not in msg  # a member the account does not know
    world.deliver(phone, member, "known one", group=GROUP)
    assert events(link)[0]["msg"]["lids"] == [[world.lid_of(member), f"{member}@c.us"]]
    with pytest.raises(BadRequest):
        world.deliver(phone, member, "x", group=GROUP, by_lid=True)  # the group's mode decides
    with pytest.raises(BadRequest):
        world.set_group_addressing(GROUP, "phone")
    with pytest.raises(BadRequest):
        world.set_group_addressing("not-a-group", "lid")


def test_asking_for_a_number_tells_its_lid_and_a_lid_tells_its_number_only_to_who_knows_it():
    world, friend, stranger = World(), new_phone(), new_phone()
    link, phone = linked(world)
    # Their numbers have WhatsApp: they linked a device.
    world.scan(page(world, "dev-3").qr, friend, now=0.0)
    world.scan(page(world, "dev-4").qr, stranger, now=0.0)
    assert world.query_exists("dev-1", world.lid_of(stranger)) == {"wid": world.lid_of(stranger),
                                                                    "lid": world.lid_of(stranger)}
    assert world.query_exists("dev-1", f"{friend}@c.us") == {
        "wid": f"{friend}@c.us", "lid": world.lid_of(friend), "pn": f"{friend}@c.us"}
    # Having asked for the number, the account knows it.
    assert world.query_exists("dev-1", world.lid_of(friend))["pn"] == f"{friend}@c.us"
    assert world.query_exists("dev-1", "999999999999999@lid") is None  # nobody's
    assert world.query_exists("dev-1", f"{new_phone()}@c.us") is None
    with pytest.raises(BadRequest):
        world.query_exists("dev-1", f"{GROUP}")


def test_the_phone_writing_itself_reaches_its_pages_as_the_accounts_own():
    world, friend = World(), new_phone()
    link, phone = linked(world)
    friends_page = page(world, "dev-2")
    world.scan(friends_page.qr, friend, now=0.0)
    events(link), events(friends_page)
    msg_id = world.write_own(phone, f"{friend}@c.us", "from my phone")
    [own] = [e["msg"] for e in events(link)]
    assert own == {"id": msg_id, "from": f"{phone}@c.us", "to": f"{friend}@c.us", "from_me": True,
                   "body": "from my phone", "t": own["t"], "lids": [[world.lid_of(friend), f"{friend}@c.us"]]}
    # The friend's own browser gets it from the phone, with the same id.
    [got] = [e["msg"] for e in events(friends_page)]
    assert (got["id"], got["from"], got["to"], "from_me" in got) == (msg_id, f"{phone}@c.us", f"{friend}@c.us",
                                                                     False)
    # Into a chat addressed by LID the phone writes as its LID.
    world.write_own(phone, world.lid_of(friend), "by lid")
    assert events(link)[0]["msg"]["from"] == world.lid_of(phone)
    assert events(friends_page)[0]["msg"]["from"] == world.lid_of(phone)
    world.set_group_addressing(GROUP, "lid")
    events(link)
    world.write_own(phone, GROUP, "in the group")
    msg = events(link)[0]["msg"]
    assert (msg["from"], msg["to"], msg["author"], msg["from_me"]) == (world.lid_of(phone), GROUP,
                                                                       world.lid_of(phone), True)
    # A page closed meanwhile gets it when it comes back (held, as others' messages are).
    world.close_link(link)
    held = world.write_own(phone, f"{friend}@c.us", "while closed")
    again = world.open_link("dev-1", "noise,identity,adv,WEB", claims_paired=True, now=1.0)
    world.advance(again, now=100.0)
    assert held in [e["msg"]["id"] for e in events(again) if e["type"] == "msg"]
    with pytest.raises(NotFound):
        world.write_own(new_phone(), f"{friend}@c.us", "nobody linked")
    for bad in ({"chat": "friend"}, {"chat": f"{friend}@c.us", "body": 7}):
        with pytest.raises(BadRequest):
            world.write_own(phone, **({"chat": f"{friend}@c.us", "body": "x"} | bad))


def test_what_a_phone_received_counts_sends_to_its_number_and_to_its_lid():
    world, friend = World(), new_phone()
    link, phone = linked(world)
    lid = world.lid_of(friend)
    world.record_sent("dev-1", "A1", f"{friend}@c.us", "by number", 1, 0.0)
    world.record_sent("dev-1", "A2", lid, "by lid", 2, 0.0, {"from": world.lid_of(phone)})
    world.record_sent("dev-1", "A3", GROUP, "in a group", 3, 0.0)
    got = world.received_by(friend, 0.0)
    assert [(m["id"], m["to"], m["sender"], m.get("from")) for m in got] == [
        ("A1", f"{friend}@c.us", phone, None), ("A2", lid, phone, world.lid_of(phone))]
    assert world.received_by(new_phone(), 0.0) == []


def test_the_control_api_speaks_lids_and_own_messages(wa, control):
    phone, friend = new_phone(), new_phone()
    lid = control.lid(friend)
    assert control.lid(friend) == lid and control.lid(new_phone(), "555555555555555") == "555555555555555@lid"
    control.add_contact(phone, friend)
    control.group_addressing(GROUP, "lid")
    control.group_addressing(GROUP, "pn")
    with pytest.raises(ControlError) as e:
        control.write_own(phone, f"{friend}@c.us", "no page")
    assert e.value.status == 404
    with pytest.raises(ControlError) as e:
        control.deliver(phone, friend, "x", group=GROUP, lid=True)
    assert e.value.status == 400
    assert control.received_by(friend) == []


@pytest.mark.parametrize(
    "method, path, body, words",
    [
        ("POST", "/_sim/lids", b'{"phone": "55"}', "phone"),
        ("POST", "/_sim/lids", b'{"phone": "5511999990001", "lid": "x"}', "lid"),
        ("POST", "/_sim/contacts", b'{"phone": "5511999990001"}', "contact"),
        ("POST", "/_sim/groups", b'{"group": "5511@g.us", "addressing": "lid"}', "group"),
        ("POST", "/_sim/groups", b'{"group": "120363000000000009@g.us"}', "addressing"),
        ("POST", "/_sim/own", b'{"phone": "5511999990001", "chat": "bob", "body": "x"}', "chat"),
        ("POST", "/_sim/messages", b'{"to": "5511999990001", "from": "5511999990002", "body": "x", "lid": 1}',
         "lid"),
        ("GET", "/_sim/received", None, "phone"),
    ],
)
def test_malformed_lid_requests_get_a_reason(wa, method, path, body, words):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    got, answer = raw(wa, method, path, body, headers)
    assert (got, words in answer["error"]) == (400, True)
