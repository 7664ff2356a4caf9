"""People by their hidden ids (LIDs) and the account's own messages, end to
end through the public contract only: RabbitMQ, Redis, a real node,
Chromium and the stand-in.

The promise tested: a reply to ``message.from`` works for every message the
node reports, a LID sender's included, one-to-one and in a group that
addresses its members by LID; events add a person's other id where the page
knows it; malformed LIDs are refused with their own reason; what the
account writes on its phone is reported as its own, and this session's own
sends never are.

One node with one linked session serves the whole module (a browser
starts once); each test uses phones and groups of its own."""

from __future__ import annotations

import base64

import pytest

from conftest import linked_node
from mediafiles import jpeg
from support import Client, NodeProcess, new_phone, wait_for
from wwnode.fakewa import FakeWA
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

KEY = "lid-1"
NODE = "node-lid"


class World:
    """What the module's tests share: the stand-in, the node, a client, the
    linked session's phone and the ids it was ready with."""

    def __init__(self, wa: FakeWA, node: NodeProcess, rabbit: Client, phone: str, ready: dict):
        self.wa, self.node, self.rabbit, self.phone, self.ready = wa, node, rabbit, phone, ready
        self.control = Control(wa.url)
        self.groups = iter(range(1, 1000))

    def new_group(self) -> str:
        return f"12036300000000{next(self.groups):04d}@g.us"


@pytest.fixture(scope="module")
def world(tmp_path_factory, rabbit_url):
    with linked_node(tmp_path_factory.mktemp("lids"), rabbit_url, NODE, KEY) as l:
        yield World(l.wa, l.node, l.rabbit, l.phone, l.ready)


def inbound(w: World, sender: str, body: str, group: str | None = None, lid: bool = False) -> dict:
    """A message from ``sender`` reaches the session; its message_instance."""
    msg_id = w.control.deliver(w.phone, sender, body, group=group, lid=lid)
    return wait_for(lambda: next((e["message"] for e in w.rabbit.find("message_instance", key=KEY)
                                  if e["message"]["id"]["id"] == msg_id), None), timeout=20, what="the inbound message")


def reply(w: World, chat_id: str, text: str, cid: str, **extra) -> dict:
    """send_message to ``chat_id``; its message_sent_instance and the stand-in's record of it."""
    w.rabbit.publish("send_message", {"key": KEY, "chat_id": chat_id, "message": text, "id": cid, **extra})
    sent = w.rabbit.expect("message_sent_instance", command_id=cid)
    [record] = [m for m in w.control.sent_by(w.phone) if sent["message_id"].startswith(f"true_{m['to']}_{m['id']}")]
    return sent | {"record": record}


def test_the_session_is_ready_with_its_lid_beside_its_number(world):
    assert world.ready["me"] == f"{world.phone}@c.us"
    assert world.ready["me_lid"] == world.control.lid(world.phone)


def test_a_reply_to_someone_known_only_by_lid_reaches_the_phone_of_that_lid(world):
    w, stranger = world, new_phone()
    lid = w.control.lid(stranger)
    msg = inbound(w, stranger, "who is this?", lid=True)
    assert (msg["from"], msg["id"]["remote"], msg["to"]) == (lid, lid, f"{w.phone}@c.us")
    assert "from_pn" not in msg  # WhatsApp hides the number from this account

    sent = reply(w, msg["from"], "your order", "lid-1to1", quoted_message_id=msg["id"]["_serialized"])
    assert sent["chat_id"] == lid and sent["message_id"].startswith(f"true_{lid}_")
    # Written as our own LID, as the page does in a chat addressed by LID.
    assert sent["record"]["from"] == w.ready["me_lid"] and sent["record"]["quoted_id"] == msg["id"]["id"]
    [got] = w.control.received_by(stranger)
    assert (got["body"], got["to"], got["sender"]) == ("your order", lid, w.phone)
    w.rabbit.expect("message_ack_instance", message_id=sent["message_id"], chat_id=lid, ack=1)


def test_events_add_the_other_id_of_a_person_where_the_page_knows_it(world):
    w, friend, writer = world, new_phone(), new_phone()
    w.control.add_contact(w.phone, friend)  # the account has the number: the page maps the LID
    msg = inbound(w, friend, "it's me", lid=True)
    assert (msg["from"], msg["from_pn"]) == (w.control.lid(friend), f"{friend}@c.us")
    assert (msg["to"], msg["to_lid"]) == (f"{w.phone}@c.us", w.ready["me_lid"])
    # Someone who writes by number: the page knows the LID too.
    msg = inbound(w, writer, "by number")
    assert (msg["from"], msg["from_lid"]) == (f"{writer}@c.us", w.control.lid(writer))
    # Replying to the number still goes to the number.
    sent = reply(w, msg["from"], "hello", "lid-pn")
    assert sent["record"]["to"] == f"{writer}@c.us" and sent["record"]["from"] == f"{w.phone}@c.us"


def test_a_reaction_by_lid_names_the_sender_as_the_page_does_and_its_number_where_known(world):
    w, friend, stranger = world, new_phone(), new_phone()
    w.control.add_contact(w.phone, friend)
    sent = reply(w, f"{friend}@c.us", "how was it?", "lid-react")
    w.control.react(w.phone, friend, sent["record"]["id"], "❤️", lid=True)
    got = w.rabbit.expect("message_reaction_instance", message_id=sent["message_id"], reaction="❤️")
    assert (got["sender"], got["sender_pn"]) == (w.control.lid(friend), f"{friend}@c.us")
    # Someone the account knows only by LID: the LID alone, as the page has it.
    msg = inbound(w, stranger, "hello", lid=True)
    w.control.react(w.phone, stranger, msg["id"]["id"], "👍", lid=True)
    got = w.rabbit.expect("message_reaction_instance", message_id=msg["id"]["_serialized"], reaction="👍")
    assert got["sender"] == w.control.lid(stranger) and "sender_pn" not in got and "sender_lid" not in got


def test_a_group_addressing_its_members_by_lid_gives_authors_by_lid_and_replies_reach_them(world):
    w, group, stranger, friend = world, world.new_group(), new_phone(), new_phone()
    w.control.group_addressing(group, "lid")
    w.control.add_contact(w.phone, friend)
    msg = inbound(w, stranger, "hi all", group=group)
    lid = w.control.lid(stranger)
    assert (msg["from"], msg["author"], msg["id"]["remote"]) == (group, lid, group)
    assert msg["id"]["_serialized"].endswith(f"_{lid}") and "author_pn" not in msg
    known = inbound(w, friend, "me too", group=group)
    assert (known["author"], known["author_pn"]) == (w.control.lid(friend), f"{friend}@c.us")

    # To the group (message.from): in a LID group we write as our LID.
    sent = reply(w, msg["from"], f"@{lid[:-4]} welcome", "lid-group", mentions=[lid],
                 quoted_message_id=msg["id"]["_serialized"])
    assert sent["chat_id"] == group and sent["message_id"].endswith(f"_{w.ready['me_lid']}")
    assert (sent["record"]["to"], sent["record"]["from"], sent["record"]["mentions"]) == (group, w.ready["me_lid"],
                                                                                           [lid])
    # To the author alone (message.author): the phone of that LID gets it.
    reply(w, msg["author"], "a word in private", "lid-author")
    assert [m["body"] for m in w.control.received_by(stranger)] == ["a word in private"]


def test_malformed_lids_have_their_own_reason_and_change_nothing(world):
    w = world
    before = len(w.control.sent_by(w.phone))
    bad = [{"chat_id": "abc@lid"}, {"chat_id": "12@lid"}, {"chat_id": "123456789012345@lid\n"},
           {"chat_id": "5511999990002@c.us", "mentions": ["5511999990002@c.us", "x9@lid"]}]
    for i, body in enumerate(bad):
        w.rabbit.publish("send_message", {"key": KEY, "message": "x", "id": f"badlid-{i}", **body})
    got = [w.rabbit.expect("command_failed", command_id=f"badlid-{i}") for i in range(len(bad))]
    assert [f["reason"] for f in got] == ["bad_lid", "bad_lid", "bad_chat_id", "bad_lid"]
    assert all("@lid" in f["detail"] for f in got)
    # Nothing went out; the session still sends (a later send is answered).
    reply(w, f"{new_phone()}@c.us", "still here", "lid-after")
    assert len(w.control.sent_by(w.phone)) == before + 1


def test_what_the_account_writes_on_its_phone_is_its_own_message_and_our_sends_never_are(world):
    w, friend, stranger = world, new_phone(), new_phone()
    ours = reply(w, f"{friend}@c.us", "sent by the bot", "own-ours")
    photo = reply(w, f"{friend}@c.us", "a photo", "own-photo",
                  media={"data": base64.b64encode(jpeg(3000)).decode(), "as": "image"})
    msg_id = w.control.write_own(w.phone, f"{friend}@c.us", "typed on the phone")
    own = w.rabbit.expect("own_message_instance", key=KEY)["message"]
    assert (own["id"]["id"], own["fromMe"], own["id"]["fromMe"], own["body"]) == (msg_id, True, True,
                                                                                  "typed on the phone")
    assert (own["from"], own["to"], own["id"]["_serialized"]) == (f"{w.phone}@c.us", f"{friend}@c.us",
                                                                  f"true_{friend}@c.us_{msg_id}")
    assert own["to_lid"] == w.control.lid(friend)  # it wrote to the number: both ids known
    # The bot's own sends (text, file) came before it, on the same path: not reported.
    reported = [e["message"]["id"]["_serialized"] for e in w.rabbit.find("own_message_instance", key=KEY)]
    assert ours["message_id"] not in reported and photo["message_id"] not in reported and len(reported) == 1
    # Never a message_instance either: old clients see no echo of the account.
    assert not [e for e in w.rabbit.find("message_instance", key=KEY) if e["message"]["fromMe"]]

    # Into a chat addressed by LID the phone writes as the account's LID.
    lid = w.control.lid(stranger)
    msg_id = w.control.write_own(w.phone, lid, "by lid")
    own = w.rabbit.expect("own_message_instance", key=KEY)["message"]
    assert (own["id"]["id"], own["from"], own["to"]) == (msg_id, w.ready["me_lid"], lid)
    assert own["from_pn"] == f"{w.phone}@c.us" and "to_pn" not in own
