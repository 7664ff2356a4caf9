"""The stand-in's phones beyond text (pairing codes, numbers, reactions,
chats read, groups), at the world's level and through the control API,
without a browser."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import raw
from wwnode.fakewa.messaging import CODE_ALPHABET, CODE_LENGTH
from wwnode.fakewa.world import BadRequest, NotFound, World

TAIL = "noise,identity,adv,WEB"


def page(world: World, device: str = "dev-1"):
    link = world.open_link(device, TAIL, claims_paired=False, now=0.0)
    while not link.events.empty():
        link.events.get()
    return link


def test_a_pairing_code_replaces_the_qr_codes_and_links_the_page_when_typed():
    world, phone = World(), new_phone()
    link = page(world)
    code = world.request_pairing_code("dev-1", phone)
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    assert world.pending_qr() == [] and world.advance(link, 10_000.0) is None  # no QR rotation any more
    newer = world.request_pairing_code("dev-1", phone)
    with pytest.raises(NotFound):
        world.pair(phone, code if code != newer else "ZZZZZZZZ", now=1.0)  # replaced
    with pytest.raises(NotFound):
        world.pair(new_phone(), newer, now=1.0)  # the code is for another number
    # The page's live link is cut and comes back (QR codes again): the
    # code it asked for is still good.
    world.close_link(link)
    link = page(world)
    assert link.mode == "qr"
    assert world.pair(phone, newer[:4] + "-" + newer[4:].lower(), now=1.0) == f"{phone}@c.us"
    assert link.events.get()["type"] == "paired" and link.mode == "paired"
    with pytest.raises(NotFound):
        world.request_pairing_code("dev-1", phone)  # linked: nothing to ask for
    with pytest.raises(BadRequest):
        world.pair(phone, "", now=1.0)


def test_a_message_is_held_for_a_device_until_its_page_takes_it():
    world, phone, friend = World(), new_phone(), new_phone()
    link = page(world)
    world.scan(link.qr, phone, now=0.0)
    msg_id = world.deliver(phone, friend, "held until taken")
    assert world.held_for(msg_id) == [{"device": "dev-1", "phone": phone, "page": "paired"}]
    world.close_link(link)  # the page closed before it took it: held for the next one
    assert world.held_for(msg_id) == [{"device": "dev-1", "phone": phone, "page": None}]
    world.ack("dev-1", [msg_id])  # the next page took it
    assert world.held_for(msg_id) == []


def test_numbers_have_whatsapp_when_linked_or_declared():
    world, phone, other, moved = World(), new_phone(), new_phone(), new_phone()
    link = page(world)
    world.scan(link.qr, phone, now=0.0)
    assert world.query_exists("dev-1", f"{phone}@c.us")["wid"] == f"{phone}@c.us"
    assert world.query_exists("dev-1", f"{other}@c.us") is None
    world.set_number(moved, True, wid=f"{moved}1@c.us")
    world.set_number(phone, False)
    assert world.query_exists("dev-1", f"{moved}@c.us")["wid"] == f"{moved}1@c.us"
    assert world.query_exists("dev-1", f"{phone}@c.us") is None
    with pytest.raises(BadRequest):
        world.query_exists("dev-1", "someone")
    with pytest.raises(BadRequest):
        world.set_number(moved, "yes")


def test_reactions_and_reads_are_recorded_per_phone_and_group_messages_have_an_author():
    world, phone, friend = World(), new_phone(), new_phone()
    link = page(world)
    world.scan(link.qr, phone, now=0.0)
    world.record_reaction("dev-1", "ABC", f"{friend}@c.us", "👍")
    world.mark_seen("dev-1", f"{friend}@c.us")
    assert [(r["message_id"], r["reaction"]) for r in world.reactions_by(phone)] == [("ABC", "👍")]
    assert [c["chat"] for c in world.seen_by(phone)] == [f"{friend}@c.us"]
    with pytest.raises(BadRequest):
        world.record_reaction("dev-1", "ABC", "not a chat", "👍")
    while not link.events.empty():
        link.events.get()
    world.react(phone, friend, "ABC", "")
    assert link.events.get() | {"reaction_id": None, "t": None} == {
        "type": "reaction", "id": "ABC", "from": f"{friend}@c.us", "reaction": "", "reaction_id": None, "t": None,
        "lids": [[world.lid_of(friend), f"{friend}@c.us"]]}  # the number is on it: the account learns the pair
    # From someone the account knows only by LID; then, once it has the
    # number, with the pair for its page to map.
    stranger = new_phone()
    world.react(phone, stranger, "ABC", "👍", by_lid=True)
    event = link.events.get()
    assert event["from"] == world.lid_of(stranger) and "lids" not in event
    world.deliver(phone, stranger, "by number")
    link.events.get()
    world.react(phone, stranger, "ABC", "", by_lid=True)
    assert link.events.get()["lids"] == [[world.lid_of(stranger), f"{stranger}@c.us"]]
    with pytest.raises(BadRequest):
        world.react(phone, stranger, "ABC", "", by_lid="yes")
    world.deliver(phone, friend, "hi all", group="120363000000000001@g.us")
    msg = link.events.get()["msg"]
    assert (msg["from"], msg["author"]) == ("120363000000000001@g.us", f"{friend}@c.us")
    with pytest.raises(BadRequest):
        world.deliver(phone, friend, "hi", group="not-a-group")


@pytest.mark.parametrize(
    "method, path, body, status, words",
    [
        ("POST", "/_sim/pair", b'{"phone": "5511999990001", "code": "ABCD2345"}', 404, "no page waits"),
        ("POST", "/_sim/pair", b'{"phone": "55", "code": "ABCD2345"}', 400, "phone"),
        ("POST", "/_sim/reactions", b'{"to": "5511999990001", "from": "5511999990002", "message_id": "A",'
                                    b' "reaction": "x"}', 404, "no open page"),
        ("POST", "/_sim/reactions", b'{"to": "5511999990001", "from": "5511999990002", "message_id": "A B",'
                                    b' "reaction": ""}', 400, "message_id"),
        ("POST", "/_sim/numbers", b'{"phone": "5511999990001"}', 400, "registered"),
        ("GET", "/_sim/reactions", None, 400, "from"),
        ("GET", "/_sim/seen", None, 400, "phone"),
        ("POST", "/_wa/pair-code", b'{"device": "nobody", "phone": "5511999990001"}', 404, "not waiting"),
    ],
)
def test_malformed_or_unknown_requests_get_a_reason(wa, method, path, body, status, words):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    got, answer = raw(wa, method, path, body, headers)
    assert (got, words in answer["error"]) == (status, True)
