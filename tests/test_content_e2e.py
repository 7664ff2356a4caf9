"""Locations, contact cards and polls end to end, through the public
contract only: RabbitMQ in, events out, a real node, Chromium and the
stand-in.

The promise tested: ``send_message`` with a ``location``, ``contacts`` or a
``poll`` reaches the other phone as the page sends each (what the stand-in
recorded); the same sent to the account is reported in ``message_instance``
with its content; a vote on a poll (ours or another's) is reported as
``poll_vote_instance`` with the options chosen; bad input is refused with
its own reason and sends nothing.

One node with one linked session serves the whole module (a browser starts
once); each test uses phones of its own.  The last test restarts the
session."""

from __future__ import annotations

import pytest

from conftest import linked_node
from support import Client, NodeProcess, new_phone, wait_for
from wwnode.fakewa import FakeWA
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

KEY = "content-1"
NODE = "node-content"
GROUP = "120363000000000021@g.us"
VCARD = "BEGIN:VCARD\nVERSION:3.0\nN:Dee;Cy;;;\nFN:Cy Dee\nTEL;type=CELL;waid=5511999990077:+5511999990077\nEND:VCARD"


class World:
    """What the module's tests share: the stand-in, the node, a client and
    the linked session's phone."""

    def __init__(self, wa: FakeWA, node: NodeProcess, rabbit: Client, phone: str):
        self.wa, self.node, self.rabbit, self.phone = wa, node, rabbit, phone
        self.control = Control(wa.url)


@pytest.fixture(scope="module")
def world(tmp_path_factory, rabbit_url):
    with linked_node(tmp_path_factory.mktemp("contents"), rabbit_url, NODE, KEY) as l:
        yield World(l.wa, l.node, l.rabbit, l.phone)


def send(w: World, chat_id: str, cid: str, **content) -> dict:
    """send_message with ``content``; its message_sent_instance and the stand-in's record of it."""
    w.rabbit.publish("send_message", {"key": KEY, "chat_id": chat_id, "id": cid, **content})
    sent = w.rabbit.expect("message_sent_instance", command_id=cid)
    [record] = [m for m in w.control.sent_by(w.phone) if sent["message_id"] == f"true_{m['to']}_{m['id']}"]
    return sent | {"record": record}


def inbound(w: World, msg_id: str) -> dict:
    """The message_instance of the message ``msg_id`` (bare id) a phone sent."""
    return wait_for(lambda: next((e["message"] for e in w.rabbit.find("message_instance", key=KEY)
                                  if e["message"]["id"]["id"] == msg_id), None), timeout=20, what="the inbound message")


def refused(w: World, cid: str, **fields) -> dict:
    w.rabbit.publish("send_message", {"key": KEY, "id": cid, **fields})
    return w.rabbit.expect("command_failed", command_id=cid)


def test_a_location_goes_out_as_the_page_sends_one_and_one_shared_with_us_is_reported(world):
    w, friend = world, new_phone()
    sent = send(w, f"{friend}@c.us", "loc-1", location={
        "latitude": -23.5505, "longitude": -46.6333, "name": "Praça da Sé", "address": "Sé, São Paulo",
        "url": "https://maps.example.com/?q=se"})
    assert sent["chat_id"] == f"{friend}@c.us" and sent["record"]["type"] == "location"
    assert sent["record"]["location"] == {"latitude": -23.5505, "longitude": -46.6333,
                                          "description": "Praça da Sé\nSé, São Paulo",
                                          "url": "https://maps.example.com/?q=se"}
    # A link alone describes the place, as whatsapp-web.js sends it.
    bare = send(w, f"{friend}@c.us", "loc-2", location={"latitude": 1.5, "longitude": 2, "url": "https://maps.example.com/x"})
    assert bare["record"]["location"]["description"] == "https://maps.example.com/x"

    msg_id = w.control.share_location(w.phone, friend, 48.8584, 2.2945, name="Tour Eiffel",
                                      address="Champ de Mars, Paris", url="https://maps.example.com/eiffel")
    msg = inbound(w, msg_id)
    assert (msg["type"], msg["from"], msg["hasMedia"]) == ("location", f"{friend}@c.us", False)
    assert msg["location"] == {"latitude": 48.8584, "longitude": 2.2945, "name": "Tour Eiffel",
                               "address": "Champ de Mars, Paris", "url": "https://maps.example.com/eiffel",
                               "description": "Tour Eiffel\nChamp de Mars, Paris"}


def test_contact_cards_go_out_as_the_page_writes_them_and_cards_sent_to_us_are_reported(world):
    w, friend, ana, bo = world, new_phone(), new_phone(), new_phone()
    w.control.add_contact(w.phone, ana, name="Ana Souza")
    one = send(w, f"{friend}@c.us", "card-1", contacts=[f"{ana}@c.us"])
    ana_card = f"BEGIN:VCARD\nVERSION:3.0\nN:Souza;Ana;;;\nFN:Ana Souza\nTEL;type=CELL;waid={ana}:+{ana}\nEND:VCARD"
    assert (one["record"]["type"], one["record"]["vcards"], one["record"]["names"]) == ("vcard", [ana_card],
                                                                                         ["Ana Souza"])
    two = send(w, f"{friend}@c.us", "card-2", contacts=[f"{ana}@c.us", f"{bo}@c.us"])
    assert (two["record"]["type"], two["record"]["names"]) == ("multi_vcard", ["Ana Souza", f"+{bo}"])
    given = send(w, f"{friend}@c.us", "card-3", contacts={"vcard": VCARD})
    assert (given["record"]["type"], given["record"]["vcards"], given["record"]["names"]) == ("vcard", [VCARD],
                                                                                               ["Cy Dee"])
    # A vCard the page cannot read: refused by the page's own parser, nothing sent.
    before = len(w.control.sent_by(w.phone))
    failed = refused(w, "card-bad", chat_id=f"{friend}@c.us",
                     contacts={"vcard": "BEGIN:VCARD\nFN:Broken\nno colon on this line\nEND:VCARD"})
    assert failed["reason"] == "bad_contacts" and "vCard" in failed["detail"]
    assert len(w.control.sent_by(w.phone)) == before

    msg = inbound(w, w.control.send_cards(w.phone, friend, contacts=[bo]))
    assert (msg["type"], msg["vCards"]) == ("vcard", [f"BEGIN:VCARD\nVERSION:3.0\nN:;+{bo};;;\nFN:+{bo}\n"
                                                      f"TEL;type=CELL;waid={bo}:+{bo}\nEND:VCARD"])
    assert msg["body"] == msg["vCards"][0]
    msg = inbound(w, w.control.send_cards(w.phone, friend, vcards=[VCARD, ana_card]))
    assert (msg["type"], msg["vCards"]) == ("multi_vcard", [VCARD, ana_card])


def test_a_poll_goes_out_and_votes_on_it_come_back_with_the_options_chosen(world):
    w, friend = world, new_phone()
    w.control.add_contact(w.phone, friend)  # the page maps the voter's LID
    sent = send(w, f"{friend}@c.us", "poll-1", poll={"name": "Lunch?", "options": ["Pizza", "Sushi", "Salad"]})
    record = sent["record"]
    assert (record["type"], record["poll"]) == ("poll_creation", {"name": "Lunch?", "options": ["Pizza", "Sushi", "Salad"],
                                                                  "option_ids": [0, 1, 2], "multiple": False})
    w.control.vote(w.phone, friend, record["id"], ["Sushi"])
    vote = w.rabbit.expect("poll_vote_instance", key=KEY, message_id=sent["message_id"])
    assert (vote["voter"], vote["selected"], vote["selected_ids"]) == (f"{friend}@c.us", ["Sushi"], [1])
    assert vote["voter_lid"] == w.control.lid(friend)
    w.control.vote(w.phone, friend, record["id"], [])  # the vote taken back
    assert w.rabbit.expect("poll_vote_instance", key=KEY, message_id=sent["message_id"])["selected"] == []

    several = send(w, f"{friend}@c.us", "poll-2", poll={"name": "Toppings", "options": ["Olives", "Ham", "Basil"],
                                                        "multiple": True})
    assert several["record"]["poll"]["multiple"] is True
    w.control.vote(w.phone, friend, several["record"]["id"], ["Basil", "Olives"])
    vote = w.rabbit.expect("poll_vote_instance", key=KEY, message_id=several["message_id"])
    assert (vote["selected"], vote["selected_ids"]) == (["Basil", "Olives"], [2, 0])


def test_a_poll_sent_to_us_is_reported_with_its_options_and_votes_on_it_too(world):
    w, friend, creator, member = world, new_phone(), new_phone(), new_phone()
    poll_id = w.control.send_poll(w.phone, friend, "Tea?", ["Yes", "No"])
    msg = inbound(w, poll_id)
    assert (msg["type"], msg["body"], msg["pollName"], msg["allowMultipleAnswers"]) == ("poll_creation", "Tea?", "Tea?",
                                                                                         False)
    assert msg["pollOptions"] == [{"name": "Yes", "localId": 0}, {"name": "No", "localId": 1}]
    w.control.vote(w.phone, friend, poll_id, ["No"])
    vote = w.rabbit.expect("poll_vote_instance", key=KEY, message_id=msg["id"]["_serialized"])
    assert (vote["voter"], vote["selected"]) == (f"{friend}@c.us", ["No"])

    # In a group that shows its members by LID: voters come by LID.
    w.control.group_addressing(GROUP, "lid")
    group_poll = w.control.send_poll(w.phone, creator, "When?", ["Mon", "Tue", "Wed"], multiple=True, group=GROUP)
    msg = inbound(w, group_poll)
    assert (msg["from"], msg["author"], msg["allowMultipleAnswers"]) == (GROUP, w.control.lid(creator), True)
    w.control.vote(w.phone, member, group_poll, ["Wed", "Mon"])
    vote = w.rabbit.expect("poll_vote_instance", key=KEY, message_id=msg["id"]["_serialized"])
    assert (vote["voter"], vote["selected"]) == (w.control.lid(member), ["Wed", "Mon"])
    assert "voter_pn" not in vote  # the account does not know that member's number


def test_bad_content_is_refused_with_its_own_reason_and_sends_nothing(world):
    w, chat = world, f"{new_phone()}@c.us"
    before, answered = len(w.control.sent_by(w.phone)), len(w.rabbit.find("message_sent_instance", key=KEY))
    cases = [({"poll": {"name": "Lunch?", "options": ["Pizza"]}}, "bad_poll"),
             ({"location": {"latitude": 123, "longitude": 0}}, "bad_location"),
             ({"location": {"latitude": 1, "longitude": 2}, "poll": {"name": "x", "options": ["a", "b"]}},
              "conflicting_content"),
             ({"contacts": ["12@lid"]}, "bad_lid"),
             ({"contacts": {"vcard": "hello"}}, "bad_contacts")]
    got = [refused(w, f"bad-{i}", chat_id=chat, **fields)["reason"] for i, (fields, _) in enumerate(cases)]
    assert got == [reason for _, reason in cases]
    assert len(w.control.sent_by(w.phone)) == before
    assert len(w.rabbit.find("message_sent_instance", key=KEY)) == answered


def test_a_vote_on_a_poll_sent_before_a_restart_still_names_the_options(world):
    """The page keeps its messages in its store across a restart (the
    stand-in's server gives them back): a vote on an older poll finds it,
    and names the options chosen."""
    w, friend = world, new_phone()
    sent = send(w, f"{friend}@c.us", "poll-old", poll={"name": "Still?", "options": ["Yes", "No"]})
    w.rabbit.publish("destroy_instance", {"key": KEY})
    w.rabbit.expect("state_instance", key=KEY, state="stopped")
    w.rabbit.publish("create_instance", {"key": KEY})
    w.rabbit.expect("ready_instance", key=KEY)
    w.control.vote(w.phone, friend, sent["record"]["id"], ["No"])
    vote = w.rabbit.expect("poll_vote_instance", key=KEY, message_id=sent["message_id"])
    assert (vote["selected"], vote["selected_ids"]) == (["No"], [1])
