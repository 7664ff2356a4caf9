"""Reading back what the account has, and groups, end to end through the
public contract only: RabbitMQ in, events out, a real node, Chromium and
the stand-in.

The promises tested: ``query`` gives the account's chats (with their
state), a chat's messages newest first in pages, its contacts, a group,
people's ids and a profile picture, each answer bounded by
``QUERY_MAX_ITEMS``; ``group_action`` does each group action as the page
does it and answers ``group_action_done_instance``, the page's rules
answered as refusals with their own reasons; ``group_update_instance``
tells what happens in the account's groups; bad input is refused with its
own reason.  Last, a CRM's catch-up: the node stops while phones write
and a group changes; once it is back, every message came once, and
``query`` gives every message and the group's new state.

One node with one linked session serves the whole module (a browser starts
once); each test uses phones and groups of its own.  The last test stops
and starts the node."""

from __future__ import annotations

import urllib.request

import pytest

from conftest import linked_node
from support import Client, NodeProcess, all_gone, chrome_processes_under, new_phone, wait_for
from wwnode.fakewa import FakeWA
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

KEY = "groups-1"
NODE = "node-groups"
MAX_ITEMS = 40  # the node's QUERY_MAX_ITEMS here


class World:
    """What the module's tests share: the stand-in, the node, a client and
    the linked session's phone."""

    def __init__(self, wa: FakeWA, node: NodeProcess, rabbit: Client, phone: str):
        self.wa, self.node, self.rabbit, self.phone = wa, node, rabbit, phone
        self.control = Control(wa.url)
        self.me = f"{phone}@c.us"
        self.n = 0

    def cid(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def query(self, **fields) -> dict:
        """query_result_instance of a query (AssertionError if it failed)."""
        cid = self.cid("q")
        self.rabbit.publish("query", {"key": KEY, "id": cid, **fields})
        return self.rabbit.expect("query_result_instance", command_id=cid)

    def query_all(self, **fields) -> list[dict]:
        """Every item, page after page (``before``: the last item's id)."""
        items, before = [], None
        while True:
            page = self.query(**fields, **({"before": before} if before else {}))
            items += page["items"]
            if not page["more"]:
                return items
            last = page["items"][-1]["id"]
            before = last["_serialized"] if isinstance(last, dict) else last

    def group(self, **fields) -> dict:
        cid = self.cid("g")
        self.rabbit.publish("group_action", {"key": KEY, "id": cid, **fields})
        return self.rabbit.expect("group_action_done_instance", command_id=cid)

    def refused(self, queue: str, **fields) -> dict:
        cid = self.cid("x")
        self.rabbit.publish(queue, {"key": KEY, "id": cid, **fields})
        return self.rabbit.expect("command_failed", command_id=cid)

    def registered(self, *phones: str) -> None:
        for phone in phones:
            self.control.number(phone, True)


@pytest.fixture(scope="module")
def world(tmp_path_factory, rabbit_url):
    with linked_node(tmp_path_factory.mktemp("groups"), rabbit_url, NODE, KEY, env={"QUERY_MAX_ITEMS": str(MAX_ITEMS)}) as l:
        yield World(l.wa, l.node, l.rabbit, l.phone)


def inbound(w: World, msg_id: str, name: str = "message_instance") -> dict:
    """The message_instance of the message ``msg_id`` (bare id) a phone sent."""
    return wait_for(lambda: next((e["message"] for e in w.rabbit.find(name, key=KEY)
                                  if e["message"]["id"]["id"] == msg_id), None), timeout=20, what="the message")


def updates(w: World, group: str) -> list[tuple]:
    """(type, participants, by, value) of the group's group_update_instance events so far."""
    return [(e["type"], e["participants"], e["by"], e.get("value"))
            for e in w.rabbit.find("group_update_instance", key=KEY, group_id=group)]


# ------------------------------------------------------------ reading back
def test_chats_come_back_with_their_state_newest_first_in_pages(world):
    w, ana, bo = world, new_phone(), new_phone()
    inbound(w, w.control.deliver(w.phone, ana, "first"))
    last = w.control.deliver(w.phone, bo, "second")
    inbound(w, last)
    w.control.chat_state(w.phone, f"{ana}@c.us", archive=True, pin=True, mute_until=-1)
    chats = {c["id"]: c for c in w.query_all(what="chats")}
    assert {f"{ana}@c.us", f"{bo}@c.us"} <= set(chats)
    assert chats[f"{ana}@c.us"] | {"timestamp": 0} == {
        "id": f"{ana}@c.us", "name": f"+{ana}", "isGroup": False, "unreadCount": 1, "timestamp": 0,
        "archived": True, "pinned": True, "isMuted": True, "muteExpiration": -1}
    assert (chats[f"{bo}@c.us"]["archived"], chats[f"{bo}@c.us"]["isMuted"]) == (False, False)
    # Pages of one: the newest chat first; `before` pages on.
    first = w.query(what="chats", limit=1)
    assert (len(first["items"]), first["more"]) == (1, True)
    second = w.query(what="chats", limit=1, before=first["items"][0]["id"])
    assert second["items"][0]["id"] != first["items"][0]["id"]
    assert second["items"][0]["timestamp"] <= first["items"][0]["timestamp"]
    # Read on the page: no unread message any more.
    w.rabbit.publish("message_action", {"key": KEY, "id": "read-1", "action": "read",
                                        "message_id": f"false_{bo}@c.us_{last}"})
    w.rabbit.expect("message_action_done_instance", command_id="read-1")
    assert {c["id"]: c for c in w.query_all(what="chats")}[f"{bo}@c.us"]["unreadCount"] == 0


def test_query_chats_reads_what_chat_action_did(world):
    """One model of a chat: what our session's chat_action archives, pins
    and mutes is what the chats read back show, and what the phone keeps."""
    w, cy = world, new_phone()
    chat = f"{cy}@c.us"
    inbound(w, w.control.deliver(w.phone, cy, "hello"))

    def chat_action(action: str, **extra) -> None:
        cid = w.cid("chat")
        w.rabbit.publish("chat_action", {"key": KEY, "id": cid, "action": action, "chat_id": chat, **extra})
        w.rabbit.expect("chat_action_done_instance", command_id=cid)

    def read_back() -> tuple:
        c = {c["id"]: c for c in w.query_all(what="chats")}[chat]
        return c["archived"], c["pinned"], c["isMuted"], c["muteExpiration"]

    assert read_back() == (False, False, False, 0)
    chat_action("archive")
    chat_action("pin")
    chat_action("mute", until=4_102_444_800_000)  # 2100-01-01
    assert read_back() == (True, True, True, 4_102_444_800)
    kept = w.control.chats(w.phone)[chat]
    assert (kept["archive"], kept["pin"] > 0, kept["mute"]) == (True, True, 4_102_444_800)
    chat_action("unarchive")
    chat_action("unpin")
    chat_action("unmute")
    assert read_back() == (False, False, False, 0)


def test_a_chats_messages_come_back_newest_first_every_kind_in_the_message_shape(world):
    w, friend = world, new_phone()
    chat = f"{friend}@c.us"
    ids = []
    for i in range(7):
        ids.append(("in", w.control.deliver(w.phone, friend, f"from friend {i}")))
        w.rabbit.publish("send_message", {"key": KEY, "chat_id": chat, "message": f"from us {i}", "id": f"m-{friend}-{i}"})
        ids.append(("out", w.rabbit.expect("message_sent_instance", command_id=f"m-{friend}-{i}")["message_id"]))
    ids.append(("own", w.control.write_own(w.phone, chat, "from the phone")))
    inbound(w, ids[-1][1], "own_message_instance")
    loc = w.control.share_location(w.phone, friend, 48.85, 2.29, name="Tour Eiffel")
    inbound(w, loc)
    got = w.query_all(what="messages", chat_id=chat, limit=4)
    assert len(got) == 16
    bodies = [m["body"] for m in got]
    assert bodies[:2] == ["", "from the phone"]  # the location, then the phone's: newest first
    # Newest first, in the order the page took them: a friend's message and
    # our send of the same round may reach the page either way round.
    assert [set(bodies[2 + 2 * k:4 + 2 * k]) for k in range(7)] == [
        {f"from us {i}", f"from friend {i}"} for i in reversed(range(7))]
    assert got[0]["type"] == "location" and got[0]["location"]["name"] == "Tour Eiffel"
    assert (got[1]["fromMe"], got[1]["from"]) == (True, w.me)
    ours = [m for m in got if m["body"].startswith("from us")]
    assert [m["id"]["_serialized"] for m in reversed(ours)] == [i for kind, i in ids if kind == "out"]
    assert {m["from"] for m in got if m["body"].startswith("from friend")} == {chat}
    page = w.query(what="messages", chat_id=chat, limit=3)
    assert (len(page["items"]), page["more"], page["chat_id"]) == (3, True, chat)
    before = page["items"][-1]["id"]["_serialized"]
    nxt = w.query(what="messages", chat_id=chat, limit=3, before=before)
    assert nxt["before"] == before and [m["body"] for m in nxt["items"]] == bodies[3:6]
    # Without limit: QUERY_MAX_ITEMS at most.
    assert len(w.query(what="messages", chat_id=chat)["items"]) == 16


def test_contacts_ids_and_profile_pictures_come_back(world):
    w, ana, bo, stranger = world, new_phone(), new_phone(), new_phone()
    w.control.add_contact(w.phone, ana, name="Ana Souza")
    inbound(w, w.control.deliver(w.phone, bo, "hi"))
    contacts = {c["id"]: c for c in w.query_all(what="contacts", limit=1)}
    assert {k: contacts[f"{ana}@c.us"][k] for k in ("name", "shortName", "isMyContact", "pn", "lid")} == {
        "name": "Ana Souza", "shortName": "Ana", "isMyContact": True, "pn": f"{ana}@c.us", "lid": w.control.lid(ana)}
    assert (contacts[f"{bo}@c.us"]["isMyContact"], contacts[f"{bo}@c.us"]["name"]) == (False, None)

    lid = w.control.lid(stranger)
    assert w.query(what="ids", ids=[f"{ana}@c.us", lid])["items"] == [
        {"id": f"{ana}@c.us", "pn": f"{ana}@c.us", "lid": w.control.lid(ana)},
        {"id": lid, "pn": None, "lid": lid}]  # the account does not know that LID's number

    w.control.picture(b"\xff\xd8\xff a picture", phone=ana)
    [item] = w.query(what="profile_picture", chat_id=f"{ana}@c.us")["items"]
    assert item["id"] == f"{ana}@c.us"
    with urllib.request.urlopen(item["url"]) as resp:
        assert resp.read() == b"\xff\xd8\xff a picture"
    assert w.query(what="profile_picture", chat_id=f"{bo}@c.us")["items"] == [{"id": f"{bo}@c.us", "url": None}]


def test_bad_queries_are_refused_each_with_its_own_reason(world):
    w = world
    cases = [({"what": "everything"}, "unknown_query"),
             ({"what": "messages"}, "missing_field"),
             ({"what": "messages", "chat_id": "hello"}, "bad_chat_id"),
             ({"what": "chats", "limit": 10 ** 9}, "bad_limit"),
             ({"what": "chats", "limit": MAX_ITEMS + 1}, "bad_limit"),  # the node's QUERY_MAX_ITEMS
             ({"what": "chats", "limit": 0}, "bad_limit"),
             ({"what": "group", "chat_id": f"{new_phone()}@c.us"}, "bad_group_id"),
             ({"what": "ids", "ids": ["12@lid"]}, "bad_lid"),
             ({"what": "messages", "chat_id": f"{new_phone()}@c.us"}, "unknown_chat"),
             ({"what": "chats", "before": f"{new_phone()}@c.us"}, "unknown_before"),
             ({"what": "group", "chat_id": "120363999999999999@g.us"}, "unknown_group")]
    assert [w.refused("query", **fields)["reason"] for fields, _ in cases] == [reason for _, reason in cases]
    assert w.query(what="chats", limit=MAX_ITEMS)["what"] == "chats"  # the bound itself is fine


# ------------------------------------------------------------------ groups
def test_a_group_is_created_and_managed_as_the_page_does_it(world):
    w, ana, bo, cy, private, nobody = world, *(new_phone() for _ in range(5))
    w.registered(ana, bo, cy, private)
    done = w.group(action="create", value="Corner Shop team",
                   participants=[f"{ana}@c.us", f"{bo}@c.us", f"{nobody}@c.us"])
    group = done["group_id"]
    assert group.endswith("@g.us") and done["action"] == "create"
    assert done["result"]["participants"] == [
        {"id": f"{nobody}@c.us", "ok": False, "reason": "not_registered"},
        {"id": f"{ana}@c.us", "ok": True}, {"id": f"{bo}@c.us", "ok": True}]
    info = w.control.group_info(group)
    assert (info["subject"], info["owner"], info["members"]) == (
        "Corner Shop team", w.phone, {w.phone: "superadmin", ana: "member", bo: "member"})

    w.control.privacy(private, "nobody")
    added = w.group(action="add", group_id=group, participants=[f"{cy}@c.us", f"{private}@c.us", f"{ana}@c.us"])
    people = {p["id"]: p for p in added["result"]["participants"]}
    assert people[f"{cy}@c.us"] == {"id": f"{cy}@c.us", "ok": True}
    assert (people[f"{private}@c.us"]["reason"], bool(people[f"{private}@c.us"]["invite_code"])) == (
        "invite_only", True)
    assert people[f"{ana}@c.us"]["reason"] == "already_member"
    w.group(action="promote", group_id=group, participants=[f"{ana}@c.us"])
    w.group(action="remove", group_id=group, participants=[f"{bo}@c.us"])
    w.group(action="subject", group_id=group, value="Corner Shop crew")
    w.group(action="description", group_id=group, value="Opening hours:\n9 to 5")
    w.group(action="settings", group_id=group, value={"announce": True, "restrict": True})
    link = w.group(action="invite_link", group_id=group)["result"]
    assert link["link"] == f"https://chat.whatsapp.com/{link['code']}"
    renewed = w.group(action="revoke_invite", group_id=group)["result"]
    assert renewed["code"] != link["code"]

    [state] = w.query(what="group", chat_id=group)["items"]
    assert (state["subject"], state["description"], state["announce"], state["restrict"]) == (
        "Corner Shop crew", "Opening hours:\n9 to 5", True, True)
    roles = {p["pn"]: p["role"] for p in state["participants"]}
    assert roles == {w.me: "superadmin", f"{ana}@c.us": "admin", f"{cy}@c.us": "member"}
    assert state["owner"] == w.control.lid(w.phone)  # a group the page makes shows people by LID
    info = w.control.group_info(group)
    assert (info["members"], info["invite"]) == ({w.phone: "superadmin", ana: "admin", cy: "member"}, renewed["code"])
    assert [a["action"] for a in w.control.group_actions(w.phone) if a["group"] == group] == [
        "create", "add", "add", "promote", "remove", "subject", "description", "property", "property", "invite",
        "reset_invite"]
    # The group's chat is among the chats, by its subject.
    assert {c["id"]: c["name"] for c in w.query_all(what="chats")}[group] == "Corner Shop crew"
    # Its changes are reported too, with the account as their author.
    me_lid = w.control.lid(w.phone)
    wait_for(lambda: ("subject", [], me_lid, "Corner Shop crew") in updates(w, group), timeout=20,
             what="the subject's change reported")

    w.group(action="leave", group_id=group)
    assert w.phone not in w.control.group_info(group)["members"]


def test_the_pages_rules_come_back_as_refusals(world):
    w, owner, friend = world, new_phone(), new_phone()
    w.registered(owner, friend)
    group, _ = w.control.create_group(owner, "Not ours to run", [w.phone])
    wait_for(lambda: updates(w, group), timeout=20, what="the account added")
    cases = [({"action": "add", "group_id": group, "participants": [f"{friend}@c.us"]}, "not_admin"),
             ({"action": "settings", "group_id": group, "value": {"announce": True}}, "not_admin"),
             ({"action": "invite_link", "group_id": group}, "not_admin"),
             ({"action": "remove", "group_id": group, "participants": [f"{owner}@c.us"]}, "not_admin"),
             ({"action": "subject", "group_id": "120363999999999998@g.us", "value": "x"}, "unknown_group"),
             ({"action": "join", "value": "https://chat.whatsapp.com/AAAAAAAAAAAAAAAAAAAAAA"}, "invite_not_found")]
    for fields, reason in cases:
        assert w.refused("group_action", **fields)["reason"] == reason, fields
    # Members change the subject while the group is not restricted.
    w.group(action="subject", group_id=group, value="Renamed by a member")
    w.control.group("settings", group, owner, restrict=True)
    assert w.refused("group_action", action="description", group_id=group, value="no")["reason"] == "not_admin"
    w.control.group("remove", group, owner, participants=[w.phone])
    assert w.refused("group_action", action="subject", group_id=group, value="x")["reason"] == "not_in_group"
    # Bad input, refused by the node before anything happens.
    bad = [({"action": "create", "value": "", "participants": []}, "bad_subject"),
           ({"action": "explode", "group_id": group}, "bad_action"),
           ({"action": "add", "group_id": f"{friend}@c.us", "participants": [f"{friend}@c.us"]}, "bad_group_id"),
           ({"action": "add", "group_id": group, "participants": []}, "bad_participants"),
           ({"action": "settings", "group_id": group, "value": {"open": True}}, "bad_settings"),
           ({"action": "join", "value": "not a code!"}, "bad_invite")]
    assert [w.refused("group_action", **f)["reason"] for f, _ in bad] == [r for _, r in bad]


def test_what_others_do_in_a_group_is_reported(world):
    w, owner, ana, bo = world, new_phone(), new_phone(), new_phone()
    w.registered(owner, ana, bo)
    group, _ = w.control.create_group(owner, "The others' group", [w.phone, ana])
    wait_for(lambda: updates(w, group), timeout=20, what="the account added")
    w.control.group("promote", group, owner, participants=[w.phone])
    w.control.group("subject", group, owner, subject="New name")
    w.control.group("description", group, owner, description="About us")
    w.control.group("settings", group, owner, announce=True)
    code = w.control.group("invite", group, owner)["code"]
    w.control.join_group(code, bo)
    w.control.leave_group(group, bo)
    w.control.group("remove", group, owner, participants=[ana])
    w.control.group("demote", group, owner, participants=[w.phone])
    o, me, a, b = f"{owner}@c.us", w.me, f"{ana}@c.us", f"{bo}@c.us"
    expected = [("add", [me, a], o, None), ("promote", [me], o, None), ("subject", [], o, "New name"),
                ("description", [], o, "About us"), ("settings", [], o, {"announce": True, "restrict": False}),
                ("join", [b], b, None), ("leave", [b], b, None), ("remove", [a], o, None),
                ("demote", [me], o, None)]
    wait_for(lambda: updates(w, group) == expected, timeout=20, what=f"the changes reported: {updates(w, group)}")
    # No notification came as a message.
    assert not [e for e in w.rabbit.find("message_instance", key=KEY) if e["message"]["from"] == group]
    # The account joins a group by its link.
    other, _ = w.control.create_group(owner, "Open group", [])
    link = f"https://chat.whatsapp.com/{w.control.group('invite', other, owner)['code']}"
    assert w.group(action="join", value=link)["group_id"] == other
    assert w.phone in w.control.group_info(other)["members"]


# -------------------------------------------------------- a CRM's catch-up
def test_after_the_node_was_down_every_message_came_once_and_query_gives_all_and_the_groups_state(world):
    w, friend, owner, newcomer, quiet = world, new_phone(), new_phone(), new_phone(), new_phone()
    w.registered(owner, newcomer, friend)
    chat = f"{friend}@c.us"
    before = [w.control.deliver(w.phone, friend, f"before {i}") for i in range(30)]
    inbound(w, before[-1])
    inbound(w, w.control.deliver(w.phone, quiet, "nothing since"))
    group, _ = w.control.create_group(owner, "Catch-up group", [w.phone, friend])
    wait_for(lambda: updates(w, group), timeout=20, what="the account added")

    assert w.node.terminate() == 0
    wait_for(lambda: all_gone(chrome_processes_under(w.node.data_dir)), timeout=15, what="no Chrome left")
    away = [w.control.deliver(w.phone, friend, f"while away {i}") for i in range(3)]
    own = w.control.write_own(w.phone, chat, "from the phone while away")
    w.control.group("subject", group, owner, subject="Renamed while away")
    w.control.group("add", group, owner, participants=[newcomer])
    w.control.group("remove", group, owner, participants=[friend])

    w.node.start()
    w.rabbit.expect("ready_instance", key=KEY, timeout=60)
    for msg_id in away:
        inbound(w, msg_id)
    inbound(w, own, "own_message_instance")
    wait_for(lambda: [t for t, *_ in updates(w, group)] == ["add", "subject", "add", "remove"], timeout=20,
             what="the group's changes reported")

    got = w.query_all(what="messages", chat_id=chat, limit=7)
    assert [m["body"] for m in got] == ["from the phone while away"] + [f"while away {i}" for i in (2, 1, 0)] + [
        f"before {i}" for i in reversed(range(30))]
    # Every chat is there, those nothing came to meanwhile too.
    chats = {c["id"]: c for c in w.query_all(what="chats")}
    assert (chats[f"{quiet}@c.us"]["unreadCount"], chats[chat]["unreadCount"]) == (1, 33)  # the phone's own: read
    assert chats[group]["name"] == "Renamed while away"
    [state] = w.query(what="group", chat_id=group)["items"]
    assert state["subject"] == "Renamed while away"
    assert {p["id"] for p in state["participants"]} == {w.me, f"{owner}@c.us", f"{newcomer}@c.us"}
    # Each came once: nothing was reported twice, nothing from before again.
    reported = [e["message"]["id"]["id"] for e in w.rabbit.find("message_instance", key=KEY)
                if e["message"]["from"] == chat]
    assert sorted(reported) == sorted(before + away)
    assert [e["message"]["id"]["id"] for e in w.rabbit.find("own_message_instance", key=KEY)
            if e["message"]["to"] == chat] == [own]
