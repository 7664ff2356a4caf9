"""Messaging beyond text end to end, through the public contract only:
replies and mentions, reactions out and in, marking a chat read, receipts,
number checks, pairing codes, groups, edits and deletions, and every
refusal, through RabbitMQ, Redis, a real node, Chromium and the stand-in.

One node with one linked session serves the whole module (a browser
starts once); each test uses phones of its own, so they stay independent."""

from __future__ import annotations

import pytest
import redis as redislib

from conftest import linked_node
from support import TEST_REDIS_DB, Client, NodeProcess, new_phone, wait_for
from wwnode.fakewa import FakeWA
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

KEY = "msg-1"
NODE = "node-msg"
GROUP = "120363000000000077@g.us"


class World:
    """What the module's tests share: the stand-in, the node, a client,
    Redis, and the linked session's phone."""

    def __init__(self, wa: FakeWA, node: NodeProcess, rabbit: Client, r: redislib.Redis, phone: str):
        self.wa, self.node, self.rabbit, self.redis, self.phone = wa, node, rabbit, r, phone
        self.control = Control(wa.url)


@pytest.fixture(scope="module")
def world(tmp_path_factory, rabbit_url):
    with linked_node(tmp_path_factory.mktemp("messaging"), rabbit_url, NODE, KEY) as l:
        r = redislib.Redis(db=TEST_REDIS_DB, decode_responses=True)
        try:
            yield World(l.wa, l.node, l.rabbit, r, l.phone)
        finally:
            r.close()


def inbound(w: World, sender: str, body: str, group: str | None = None) -> dict:
    """A message from ``sender`` reaches the session; its message_instance."""
    msg_id = w.control.deliver(w.phone, sender, body, group=group)
    return wait_for(lambda: next((e["message"] for e in w.rabbit.find("message_instance", key=KEY)
                                  if e["message"]["id"]["id"] == msg_id), None), timeout=20, what="the inbound message")


def test_a_reply_with_mentions_quotes_the_message_and_receipts_follow(world):
    w, friend = world, new_phone()
    msg = inbound(w, friend, "where is my order?")
    w.rabbit.publish("send_message", {"key": KEY, "chat_id": f"{friend}@c.us", "message": f"@{friend} on its way",
                                      "quoted_message_id": msg["id"]["_serialized"], "mentions": [f"{friend}@c.us"],
                                      "id": "reply-1"})
    sent = w.rabbit.expect("message_sent_instance", command_id="reply-1")
    [record] = [m for m in w.control.sent_by(w.phone) if m["to"] == f"{friend}@c.us"]
    assert record["quoted_id"] == msg["id"]["id"] and record["mentions"] == [f"{friend}@c.us"]
    assert sent["message_id"] == f"true_{friend}@c.us_{record['id']}"

    assert w.rabbit.expect("message_ack_instance", message_id=sent["message_id"], ack=1)["chat_id"] == f"{friend}@c.us"
    w.control.receipt(record["id"], "delivered")
    w.rabbit.expect("message_ack_instance", message_id=sent["message_id"], ack=2)
    w.control.receipt(record["id"], "read")
    w.rabbit.expect("message_ack_instance", message_id=sent["message_id"], ack=3)


def test_reactions_out_and_back_and_in(world):
    w, friend = world, new_phone()
    msg = inbound(w, friend, "rate us")
    w.rabbit.publish("message_action", {"key": KEY, "action": "react", "message_id": msg["id"]["_serialized"],
                                        "emoji": "👍", "id": "react-1"})
    done = w.rabbit.expect("message_action_done_instance", command_id="react-1")
    assert done["action"] == "react" and done["emoji"] == "👍" and done["message_id"] == msg["id"]["_serialized"]
    w.rabbit.publish("message_action", {"key": KEY, "action": "react", "message_id": msg["id"]["_serialized"],
                                        "emoji": "", "id": "react-2"})
    w.rabbit.expect("message_action_done_instance", command_id="react-2")
    assert [(r["message_id"], r["chat"], r["reaction"]) for r in w.control.reactions_by(w.phone)
            if r["chat"] == f"{friend}@c.us"] == [(msg["id"]["id"], f"{friend}@c.us", "👍"),
                                                  (msg["id"]["id"], f"{friend}@c.us", "")]

    # The contact reacts to a message the session sent.
    w.rabbit.publish("send_message", {"key": KEY, "chat_id": f"{friend}@c.us", "message": "thanks", "id": "r-sent"})
    sent = w.rabbit.expect("message_sent_instance", command_id="r-sent")
    w.control.react(w.phone, friend, sent["message_id"].rsplit("_", 1)[1], "❤️")
    got = w.rabbit.expect("message_reaction_instance", message_id=sent["message_id"])
    assert got["reaction"] == "❤️" and got["sender"] == f"{friend}@c.us"


def test_read_marks_the_chat_of_the_message_read(world):
    w, friend = world, new_phone()
    msg = inbound(w, friend, "hello?")
    assert not [c for c in w.control.seen_by(w.phone) if c["chat"] == f"{friend}@c.us"]
    w.rabbit.publish("message_action", {"key": KEY, "action": "read", "message_id": msg["id"]["_serialized"],
                                        "id": "read-1"})
    done = w.rabbit.expect("message_action_done_instance", command_id="read-1")
    assert done["action"] == "read" and "emoji" not in done
    assert [c["chat"] for c in w.control.seen_by(w.phone) if c["chat"] == f"{friend}@c.us"] == [f"{friend}@c.us"]


def test_check_number_says_registered_and_the_id_to_write_to(world):
    w = world
    known, moved, unknown = new_phone(), new_phone(), new_phone()
    w.control.number(known, True)
    w.control.number(moved, True, wid=f"{moved}9@c.us")
    for phone, cid in ((known, "n1"), (moved, "n2"), (unknown, "n3")):
        w.rabbit.publish("check_number", {"key": KEY, "phone": phone, "id": cid})
    answers = {cid: w.rabbit.expect("number_checked_instance", command_id=cid) for cid in ("n1", "n2", "n3")}
    assert (answers["n1"]["registered"], answers["n1"]["wid"]) == (True, f"{known}@c.us")
    assert (answers["n2"]["registered"], answers["n2"]["wid"]) == (True, f"{moved}9@c.us")
    assert (answers["n3"]["registered"], answers["n3"]["wid"], answers["n3"]["phone"]) == (False, None, unknown)


def test_groups_send_and_inbound_messages_carry_their_author(world):
    w, member = world, new_phone()
    msg = inbound(w, member, "hi all", group=GROUP)
    assert msg["from"] == GROUP and msg["author"] == f"{member}@c.us" and msg["id"]["remote"] == GROUP
    w.rabbit.publish("send_message", {"key": KEY, "chat_id": GROUP, "message": "hello group",
                                      "quoted_message_id": msg["id"]["_serialized"], "id": "g-1"})
    sent = w.rabbit.expect("message_sent_instance", command_id="g-1")
    assert sent["message_id"].startswith(f"true_{GROUP}_") and sent["chat_id"] == GROUP
    [record] = [m for m in w.control.sent_by(w.phone) if m["to"] == GROUP]
    assert record["body"] == "hello group" and record["quoted_id"] == msg["id"]["id"]


def test_own_messages_are_edited_and_deleted_and_changes_by_others_are_reported(world):
    w, friend = world, new_phone()
    w.rabbit.publish("send_message", {"key": KEY, "chat_id": f"{friend}@c.us", "message": "helo", "id": "ed-sent"})
    sent = w.rabbit.expect("message_sent_instance", command_id="ed-sent")
    mid = sent["message_id"]
    w.rabbit.publish("message_action", {"key": KEY, "action": "edit", "message_id": mid, "text": "hello", "id": "ed-1"})
    assert w.rabbit.expect("message_action_done_instance", command_id="ed-1")["action"] == "edit"
    edited = w.rabbit.expect("message_edit_instance", key=KEY)
    assert (edited["message"]["id"]["_serialized"], edited["message"]["body"], edited["message"]["fromMe"],
            edited["previous_body"]) == (mid, "hello", True, "helo")
    [record] = [m for m in w.control.sent_by(w.phone) if mid.endswith(m["id"])]
    assert (record["body"], record["previous_bodies"]) == ("hello", ["helo"])

    w.rabbit.publish("message_action", {"key": KEY, "action": "revoke", "message_id": mid, "id": "rv-1"})
    assert w.rabbit.expect("message_action_done_instance", command_id="rv-1")["for_me"] is False
    revoked = w.rabbit.expect("message_revoke_instance", key=KEY, message_id=mid)
    assert (revoked["chat_id"], revoked["from_me"]) == (f"{friend}@c.us", True)
    assert [m.get("revoked") for m in w.control.sent_by(w.phone) if mid.endswith(m["id"])] == [True]
    # Again (a command carried out twice): done, nothing more.
    w.rabbit.publish("message_action", {"key": KEY, "action": "revoke", "message_id": mid, "id": "rv-2"})
    w.rabbit.expect("message_action_done_instance", command_id="rv-2")

    # Someone else's message: theirs to edit or delete for everyone, not ours.
    msg = inbound(w, friend, "typo hre")
    theirs = msg["id"]["_serialized"]
    for action, extra in (("edit", {"text": "mine now"}), ("revoke", {})):
        w.rabbit.publish("message_action", {"key": KEY, "action": action, "message_id": theirs,
                                            "id": f"not-own-{action}", **extra})
        assert w.rabbit.expect("command_failed", command_id=f"not-own-{action}")["reason"] == "not_own_message"
    # ... which they do from their phone: reported.
    w.control.edit(w.phone, msg["id"]["id"], "typo here")
    edited = w.rabbit.expect("message_edit_instance", key=KEY)
    assert (edited["message"]["id"]["_serialized"], edited["message"]["body"], edited["previous_body"],
            edited["message"]["fromMe"]) == (theirs, "typo here", "typo hre", False)
    w.control.revoke(w.phone, msg["id"]["id"])
    revoked = w.rabbit.expect("message_revoke_instance", key=KEY)
    assert (revoked["message_id"], revoked["from_me"]) == (theirs, False)
    # Deleted here only: gone from the page (a reaction to it then finds nothing).
    other = inbound(w, friend, "delete me here")
    w.rabbit.publish("message_action", {"key": KEY, "action": "revoke", "message_id": other["id"]["_serialized"],
                                        "for_me": True, "id": "rv-me"})
    w.rabbit.expect("message_action_done_instance", command_id="rv-me")
    w.rabbit.publish("message_action", {"key": KEY, "action": "react", "message_id": other["id"]["_serialized"],
                                        "emoji": "👍", "id": "rv-gone"})
    assert w.rabbit.expect("command_failed", command_id="rv-gone")["reason"] == "unknown_message"


REFUSALS = [
    ("message_action", {"action": "react", "message_id": "false_5511999990002@c.us_NOTTHERE", "emoji": "👍"},
     "unknown_message"),
    ("message_action", {"action": "read", "message_id": "false_5511999990002@c.us_NOTTHERE"}, "unknown_message"),
    ("send_message", {"chat_id": "5511999990002@c.us", "message": "x",
                      "quoted_message_id": "false_5511999990002@c.us_NOTTHERE"}, "unknown_message"),
    ("message_action", {"action": "react", "message_id": "nonsense", "emoji": "👍"}, "bad_message_id"),
    ("message_action", {"action": "react", "message_id": "false_5511999990002@c.us_AB", "emoji": "yes"}, "bad_emoji"),
    ("message_action", {"action": "pin", "message_id": "false_5511999990002@c.us_AB"}, "bad_action"),
    ("message_action", {"action": "react", "message_id": "false_5511999990002@c.us_AB"}, "missing_field"),
    ("check_number", {"phone": "+55 (11) 9999"}, "bad_phone"),
    ("check_number", {}, "missing_field"),
    ("send_message", {"chat_id": "5511999990002@c.us", "message": "x", "mentions": ["@bob"]}, "bad_mentions"),
    ("send_message", {"chat_id": "5511999990002@c.us", "message": "x", "quoted_message_id": 7}, "wrong_type"),
    ("create_instance", {"pair_with_phone": "phone"}, "bad_phone"),
]


def test_every_refusal_has_its_reason_and_changes_nothing(world):
    w = world
    before = len(w.control.sent_by(w.phone)), len(w.control.reactions_by(w.phone)), len(w.control.seen_by(w.phone))
    for i, (queue, body, _) in enumerate(REFUSALS):
        w.rabbit.publish(queue, {"key": KEY, **body, "id": f"refuse-{i}"})
    got = [w.rabbit.expect("command_failed", command_id=f"refuse-{i}") for i in range(len(REFUSALS))]
    assert [(f["command"], f["reason"]) for f in got] == [(q, reason) for q, _, reason in REFUSALS]
    assert all(f["detail"] for f in got)
    after = len(w.control.sent_by(w.phone)), len(w.control.reactions_by(w.phone)), len(w.control.seen_by(w.phone))
    assert after == before
    # A key no node runs.
    w.rabbit.publish("check_number", {"key": "nobody-here", "phone": "5511999990001", "id": "refuse-nobody"})
    assert w.rabbit.expect("command_failed", command_id="refuse-nobody")["reason"] == "unknown_instance"
    # The session still works.
    w.rabbit.publish("check_number", {"key": KEY, "phone": w.phone, "id": "still-fine"})
    assert w.rabbit.expect("number_checked_instance", command_id="still-fine")["registered"] is True


def test_pairing_code_links_the_session_as_a_scan_would(world):
    w, phone = world, new_phone()
    w.rabbit.publish("create_instance", {"key": "msg-pair", "pair_with_phone": phone})
    code = w.rabbit.expect("pairing_code_instance", key="msg-pair")
    assert len(code["code"]) == 8 and code["attempt"] == 1
    stored = wait_for(lambda: w.redis.get("instances:msg-pair:pairing_code"), what="the code in Redis")
    assert stored == code["code"] and 0 < w.redis.ttl("instances:msg-pair:pairing_code") <= 60
    assert w.redis.get("instances:msg-pair:qr_code") is None and not w.rabbit.find("qr_instance", key="msg-pair")
    assert w.redis.hget("instances:msg-pair:state", "state") == "qr"  # written before the event

    w.control.pair(phone, code["code"])
    w.rabbit.expect("authenticated_instance", key="msg-pair")
    assert w.rabbit.expect("ready_instance", key="msg-pair")["me"] == f"{phone}@c.us"
    wait_for(lambda: w.redis.get("instances:msg-pair:pairing_code") is None, what="the code gone from Redis")

    w.rabbit.publish("destroy_instance", {"key": "msg-pair", "logout": True})
    w.rabbit.expect("state_instance", key="msg-pair", state="stopped")
    assert sorted(w.redis.scan_iter(match="instances:msg-pair:*")) == []


def test_a_page_without_the_reaction_table_still_sends_and_receives(sessions, make_wa):
    # whatsapp-web.js tolerates its absence; so does the session, and says so.
    wa = make_wa(drop_modules=("WAWebAddonReactionTableMode",))
    control, phone, friend = Control(wa.url), new_phone(), new_phone()
    s = sessions("k1", url=wa.url)
    control.scan(s.expect("qr", attempt=1, timeout=60)["qr"], phone)  # a browser's start: slow on a busy machine
    s.expect("ready", timeout=30)
    control.deliver(phone, friend, "still here")
    assert s.expect("message")["message"]["body"] == "still here"
    s.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": "yes"})
    s.expect("sent", id="c1")
    assert "reactions_unavailable" in s.log_text()
