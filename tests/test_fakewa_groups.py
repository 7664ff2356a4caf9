"""The stand-in's groups without a browser: who may do what (WhatsApp's
rules), the codes a person who cannot be added gets, invite codes, and how
each change reaches the members' pages (the new metadata, then a
notification, held for a closed page); through the world and the control
API."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import TAIL
from test_fakewa_lids import events, linked
from wwnode.fakewa import FakeWA
from wwnode.fakewa.client import Control, ControlError
from wwnode.fakewa.errors import Forbidden
from wwnode.fakewa.world import BadRequest, NotFound, World


def registered(world: World, *phones: str) -> None:
    for phone in phones:
        world.set_number(phone, True)


def notifications(link, world: World | None = None) -> list[tuple]:
    """(subtype, author, recipients, body) of the notifications pushed, in
    order; acknowledged by the page of ``world`` given, as a page does."""
    msgs = [e["msg"] for e in events(link) if e["type"] == "msg" and "notification" in e["msg"]]
    if world is not None:
        world.ack("dev-1", [m["id"] for m in msgs])
    return [(m["notification"]["subtype"], m["author"], m["notification"]["recipients"], m["body"]) for m in msgs]


def test_a_phone_puts_the_account_in_a_group_and_its_page_learns_the_metadata_then_the_notification():
    world = World()
    link, me = linked(world)
    owner, other = new_phone(), new_phone()
    registered(world, owner, other)
    events(link)
    group, codes = world.phone_group("create", {"phone": owner, "subject": "Shop team",
                                                "participants": [me, other]}).values()
    assert codes == {me: 200, other: 200}
    pushed = events(link)
    assert [e["type"] for e in pushed] == ["group_meta", "msg"]
    meta = pushed[0]["meta"]
    assert (meta["id"], meta["subject"], meta["owner"], meta["size"]) == (group, "Shop team", f"{owner}@c.us", 3)
    assert {p["id"]: (p["isAdmin"], p["isSuperAdmin"]) for p in meta["participants"]} == {
        f"{owner}@c.us": (True, True), f"{me}@c.us": (False, False), f"{other}@c.us": (False, False)}
    msg = pushed[1]["msg"]
    assert (msg["from"], msg["type"], msg["notification"]) == (group, "gp2", {
        "subtype": "create", "recipients": [f"{me}@c.us", f"{other}@c.us"]})
    world.ack("dev-1", [msg["id"]])

    world.phone_group("promote", {"group": group, "by": owner, "participants": [me]})
    world.phone_group("subject", {"group": group, "by": owner, "subject": "Shop team 2"})
    world.phone_group("settings", {"group": group, "by": owner, "announce": True})
    world.phone_group("remove", {"group": group, "by": owner, "participants": [other]})
    assert notifications(link, world) == [("promote", f"{owner}@c.us", [f"{me}@c.us"], ""),
                                          ("subject", f"{owner}@c.us", [], "Shop team 2"),
                                          ("announce", f"{owner}@c.us", [], "on"),
                                          ("remove", f"{owner}@c.us", [f"{other}@c.us"], "")]
    info = world.group_info(group)
    assert (info["members"], info["announce"]) == ({owner: "superadmin", me: "admin"}, True)

    # A page that comes back has the group's state, and the chat with the
    # notifications (no unread messages: notifications are none).
    world.close_link(link)
    world.phone_group("demote", {"group": group, "by": owner, "participants": [me]})
    again = world.open_link("dev-1", TAIL, True, now=10.0)
    [history] = [e for e in events(again) if e["type"] == "history"]
    [meta] = history["groups"]
    assert {p["id"]: p["isAdmin"] for p in meta["participants"]}[f"{me}@c.us"] is False
    assert [c for c in history["chats"] if c["id"] == group][0]["unreadCount"] == 0
    world.advance(again, 100.0)
    assert [s for s, *_ in notifications(again)] == ["demote"]  # held while closed: comes as new


def test_only_admins_add_and_a_person_who_cannot_be_added_gets_wordless_codes():
    world = World()
    owner, member, stranger, private, friend = (new_phone() for _ in range(5))
    registered(world, owner, member, private, friend)
    group = world.phone_group("create", {"phone": owner, "subject": "G", "participants": [member],
                                         "limit": 4})["id"]
    with pytest.raises(Forbidden):
        world.phone_group("add", {"group": group, "by": member, "participants": [friend]})
    world.phone_group("privacy", {"phone": private, "groups_add": "nobody"})
    codes = world.phone_group("add", {"group": group, "by": owner,
                                      "participants": [member, stranger, private, friend]})["participants"]
    assert codes == {member: 409, stranger: 404, private: 403, friend: 200}
    another = new_phone()
    registered(world, another)
    assert world.phone_group("add", {"group": group, "by": owner, "participants": [another]})["participants"] == {
        another: 200}
    late = new_phone()
    registered(world, late)
    assert world.phone_group("add", {"group": group, "by": owner, "participants": [late]})["participants"] == {
        late: 419}  # full: four members
    # Privacy "contacts": only people whose number they have may add them.
    picky = new_phone()
    registered(world, picky)
    world.phone_group("privacy", {"phone": picky, "groups_add": "contacts"})
    world.phone_group("remove", {"group": group, "by": owner, "participants": [another]})
    assert world.phone_group("add", {"group": group, "by": owner, "participants": [picky]})["participants"] == {
        picky: 403}
    world.add_contact(picky, owner)
    assert world.phone_group("add", {"group": group, "by": owner, "participants": [picky]})["participants"] == {
        picky: 200}


def test_the_creator_stays_and_members_change_the_info_unless_it_is_restricted():
    world = World()
    owner, admin, member = new_phone(), new_phone(), new_phone()
    registered(world, owner, admin, member)
    group = world.phone_group("create", {"phone": owner, "subject": "G", "participants": [admin, member]})["id"]
    world.phone_group("promote", {"group": group, "by": owner, "participants": [admin]})
    outsider = new_phone()
    assert world.phone_group("remove", {"group": group, "by": admin, "participants": [owner, outsider]})[
        "participants"] == {owner: 403, outsider: 404}
    codes = world.phone_group("demote", {"group": group, "by": admin, "participants": [owner, member]})["participants"]
    assert codes == {owner: 403, member: 200}
    world.phone_group("subject", {"group": group, "by": member, "subject": "By a member"})
    world.phone_group("settings", {"group": group, "by": admin, "restrict": True})
    with pytest.raises(Forbidden):
        world.phone_group("description", {"group": group, "by": member, "description": "no"})
    world.phone_group("description", {"group": group, "by": admin, "description": "Rules:\nbe kind"})
    with pytest.raises(Forbidden):
        world.phone_group("settings", {"group": group, "by": member, "announce": True})
    info = world.group_info(group)
    assert (info["subject"], info["description"], info["restrict"]) == ("By a member", "Rules:\nbe kind", True)
    for bad in ({"subject": ""}, {"subject": "x" * 101}, {"subject": "two\nlines"}):
        with pytest.raises(BadRequest):
            world.phone_group("subject", {"group": group, "by": owner, **bad})
    with pytest.raises(NotFound):
        world.phone_group("subject", {"group": "120363999999999999@g.us", "by": owner, "subject": "x"})


def test_invite_codes_let_people_join_until_reset_and_announce_groups_take_admins_messages_only():
    world = World()
    link, me = linked(world)
    owner = new_phone()
    registered(world, owner)
    group = world.phone_group("create", {"phone": owner, "subject": "Open", "participants": []})["id"]
    code = world.phone_group("invite", {"group": group, "by": owner})["code"]
    assert world.phone_group("invite", {"group": group, "by": owner})["code"] == code  # the same until reset
    assert world.page_group("dev-1", "join", {"code": f"https://chat.whatsapp.com/{code}"}) == {"id": group}
    assert world.group_info(group)["members"] == {owner: "superadmin", me: "member"}
    world.record_sent("dev-1", "G1", group, "hello all", 1, 0.0)  # a member writes
    world.phone_group("settings", {"group": group, "by": owner, "announce": True})
    with pytest.raises(Forbidden):
        world.record_sent("dev-1", "G2", group, "may I?", 1, 0.0)
    new = world.phone_group("invite", {"group": group, "by": owner, "reset": True})["code"]
    assert new != code
    with pytest.raises(NotFound):
        world.phone_group("join", {"phone": new_phone(), "code": code})
    world.page_group("dev-1", "leave", {"group": group})
    with pytest.raises(Forbidden):
        world.record_sent("dev-1", "G3", group, "still here?", 1, 0.0)
    assert [a["action"] for a in world.group_actions_of(me)] == ["join", "leave"]


def test_a_pages_group_is_in_lid_addressing_mode_and_its_actions_are_recorded():
    world = World()
    link, me = linked(world)
    ana, bo = new_phone(), new_phone()
    registered(world, ana, bo)
    made = world.page_group("dev-1", "create", {"subject": "From the page", "participants": [f"{ana}@c.us"],
                                                "addressing": "lid"})
    group = made["id"]
    assert made["participants"] == [{"id": world.lid_of(ana), "code": 200, "invite_code": None},
                                    {"id": world.lid_of(me), "code": 200, "type": "superadmin"}]
    assert world.page_group("dev-1", "add", {"group": group, "participant": world.lid_of(bo)}) == {
        "code": 200, "invite_code": None}
    assert world.page_group("dev-1", "promote", {"group": group, "participants": [f"{bo}@c.us"]}) == {
        "participants": {world.lid_of(bo): 200}}
    world.page_group("dev-1", "property", {"group": group, "property": "announcement", "value": 1})
    meta = world.page_group("dev-1", "meta", {"group": group})
    assert (meta["isLidAddressingMode"], meta["announce"], meta["owner"]) == (True, True, world.lid_of(me))
    assert [a["action"] for a in world.group_actions_of(me)] == ["create", "add", "promote", "property"]
    with pytest.raises(NotFound):
        world.page_group("dev-1", "meta", {"group": world.phone_group(
            "create", {"phone": ana, "subject": "Not ours", "participants": []})["id"]})


def test_the_control_api_plays_the_phones_of_a_group():
    with FakeWA() as wa:
        control = Control(wa.url)
        owner, member = new_phone(), new_phone()
        control.number(owner, True)
        control.number(member, True)
        group, codes = control.create_group(owner, "Via HTTP", [member])
        assert codes == {member: 200}
        assert control.group("promote", group, owner, participants=[member]) == {"participants": {member: 200}}
        control.group("subject", group, member, subject="Renamed")
        code = control.group("invite", group, owner)["code"]
        joiner = new_phone()
        assert control.join_group(code, joiner) == group
        control.leave_group(group, joiner)
        info = control.group_info(group)
        assert (info["subject"], info["members"]) == ("Renamed", {owner: "superadmin", member: "admin"})
        with pytest.raises(ControlError) as e:
            control.group("add", group, joiner, participants=[owner])
        assert e.value.status == 403  # no longer in it
        control.privacy(member, "contacts")
        with pytest.raises(ControlError) as e:
            control.privacy(member, "friends")
        assert e.value.status == 400
