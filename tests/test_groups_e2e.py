"""Reading back what the account has end to end through the public
contract only: RabbitMQ in, events out, a real node, Chromium and the
stand-in.

The promises tested: ``query`` gives the account's chats (with their
state), a chat's messages newest first in pages, its contacts, people's
ids and a profile picture, each answer bounded by ``QUERY_MAX_ITEMS``;
bad input is refused with its own reason.

One node with one linked session serves the whole module (a browser starts
once); each test uses phones of its own."""

from __future__ import annotations

import urllib.request

import pytest
import redis as redislib

from conftest import _node_queues
from support import (TEST_REDIS_DB, Client, NodeProcess, all_gone, chrome_processes_under, create_ready, idle_cgroup,
                     new_phone, purge_queues, wait_for)
from wwnode.amqp.topology import COMMAND_QUEUES, DEAD_LETTER_QUEUE, LEGACY_EVENT_QUEUES, REROUTE_QUEUE, node_queue_name
from wwnode.fakewa import FakeWA, Settings
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
    tmp = tmp_path_factory.mktemp("groups")
    r = redislib.Redis(db=TEST_REDIS_DB, decode_responses=True)
    r.flushdb()
    r.close()
    _node_queues.add(node_queue_name(NODE))
    rabbit = Client(rabbit_url)
    queues = COMMAND_QUEUES + LEGACY_EVENT_QUEUES + (DEAD_LETTER_QUEUE, REROUTE_QUEUE)
    for queue in queues:
        rabbit.ch.queue_declare(queue, durable=True)
    purge_queues(rabbit.conn, queues + tuple(sorted(_node_queues)))
    wa = FakeWA(settings=Settings(sync_delay=0.25)).start()
    node = NodeProcess(NODE, tmp / NODE, {"RABBIT_MQ_URL": rabbit_url, "REDIS_URL": f"redis://127.0.0.1:6379/{TEST_REDIS_DB}",
                                          "WA_URL": wa.url, "LOAD_CGROUP_ROOT": str(idle_cgroup(tmp / "cgroup")),
                                          "QUERY_MAX_ITEMS": str(MAX_ITEMS)})
    phone = new_phone()
    try:
        create_ready(rabbit, Control(wa.url), KEY, phone)
        yield World(wa, node, rabbit, phone)
    finally:
        node.terminate()
        wait_for(lambda: all_gone(chrome_processes_under(node.data_dir)), timeout=15, what="no Chrome left")
        rabbit.close()
        wa.stop()


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
    assert bodies[2:] == [b for i in reversed(range(7)) for b in (f"from us {i}", f"from friend {i}")]
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
