"""Sends paced as a person's (the ``pacing`` setting, ``wwnode/sendpace.py``
and the send desk): a key's sends spaced from the end of one to the start
of the next, at most so many a minute, never reordered; another key's
never held; a paced send still bounded by SEND_HOLD and sent at most once.
No browser: the node's rules on the unit rig, time handed in."""

from __future__ import annotations

import orjson

from support import delivery, node_rig
from wwnode.commands import Command, parse
from wwnode.sendpace import SendPace
from wwnode.sessionsettings import Pacing

FRIEND = "5511999990001@c.us"


def ready_with(rig, key: str, settings: dict, now: float = 0.0):
    assert rig.node.ownership.claim(key)
    rig.carry_out(parse("create_instance", orjson.dumps({"key": key, "settings": settings})), delivery(), now)
    rec = rig.sessions.get(key)
    rig.make_ready(rec, now=now)
    return rec


def send(rig, key: str, cid: str, now: float, text: str = "hi"):
    d = delivery("send_message")
    rig.sends.send(Command("send_message", key, cid, chat_id=FRIEND, text=text), d, now)
    return d


def answer(rig, rec, now: float) -> None:
    """The session answers every send it was given and not answered yet."""
    done = rec.child.__dict__.setdefault("answered", set())
    for line in rec.child.commands("send"):
        if line["id"] not in done:
            done.add(line["id"])
            rig.say(rec, {"event": "sent", "id": line["id"], "message_id": f"true_{FRIEND}_{line['id']}"}, now=now)


def sent_texts(rec) -> list[str]:
    return [line["text"] for line in rec.child.commands("send")]


def test_the_rule_gap_from_the_end_jitter_drawn_per_send_and_a_cap_per_minute():
    pacing = {"k": Pacing(min_gap_ms=1000, jitter_ms=500, per_minute=3)}
    draws = iter([0.5, 0.0, 0.9])
    pace = SendPace(pacing.get, draw=lambda: next(draws))
    assert pace.due("k", 0.0, busy=False)  # the first goes at once
    pace.started("k", 0.0)
    assert not pace.due("k", 0.1, busy=True)  # one at a time
    pace.ended("k", 2.0)
    assert not pace.due("k", 3.2, busy=False) and pace.due("k", 3.25, busy=False)  # 2 + 1 + 0.5 * 0.5
    pace.started("k", 3.3)
    pace.ended("k", 3.4)
    assert not pace.due("k", 4.35, busy=False) and pace.due("k", 4.45, busy=False)  # no jitter this time
    pace.started("k", 4.4)
    pace.ended("k", 4.5)
    assert not pace.due("k", 59.0, busy=False)  # three started in the last minute
    assert pace.due("k", 60.0, busy=False)  # the first has left the window
    assert pace.due("other", 0.0, busy=True)  # no pacing: never held


def test_a_paced_keys_sends_are_spaced_and_in_order_while_another_keys_go_at_once(tmp_path):
    rig = node_rig(tmp_path)
    paced = ready_with(rig, "paced", {"pacing": {"min_gap_ms": 2000}})
    free = ready_with(rig, "free", {})
    rig.sends.pace.draw = lambda: 0.0
    for i in range(3):
        send(rig, "paced", f"p{i}", now=0.0, text=f"p{i}")
        send(rig, "free", f"f{i}", now=0.0, text=f"f{i}")
    assert sent_texts(free) == ["f0", "f1", "f2"]  # not held by the other's pace
    assert sent_texts(paced) == ["p0"]
    answer(rig, paced, now=0.5)
    rig.node._tick(2.4)
    assert sent_texts(paced) == ["p0"]  # 2 s from the end of the first: 2.5
    rig.node._tick(2.5)
    assert sent_texts(paced) == ["p0", "p1"]
    rig.node._tick(10.0)
    assert sent_texts(paced) == ["p0", "p1"]  # the second not answered yet: one at a time
    answer(rig, paced, now=10.0)
    rig.node._tick(12.0)
    assert sent_texts(paced) == ["p0", "p1", "p2"]
    answer(rig, paced, now=12.1)
    rig.broker.confirm_all()
    assert [e["command_id"] for e in rig.broker.events("message_sent_instance") if e["key"] == "paced"] == [
        "p0", "p1", "p2"]
    # A new send of the paced key while nothing waits: after the gap too.
    send(rig, "paced", "p3", now=13.0)
    assert len(sent_texts(paced)) == 3
    rig.node._tick(14.1)
    assert len(sent_texts(paced)) == 4


def test_a_paced_send_honours_send_hold_and_at_most_once(tmp_path):
    rig = node_rig(tmp_path, send_hold=20)
    rec = ready_with(rig, "k", {"pacing": {"min_gap_ms": 60_000}})
    send(rig, "k", "c1", now=0.0)
    answer(rig, rec, now=0.1)
    late = send(rig, "k", "c2", now=1.0)
    again = delivery("send_message")  # the broker delivers c2 again meanwhile: it joins the first
    rig.sends.send(Command("send_message", "k", "c2", chat_id=FRIEND, text="hi"), again, 2.0)
    rig.node._tick(20.9)
    assert not rig.broker.failed()
    rig.node._tick(21.0)  # SEND_HOLD after it came: it fails, with its copy, never sent
    failed = rig.broker.events("command_failed")
    assert [(f["command_id"], f["reason"]) for f in failed] == [("c2", "pacing_backlog")]
    assert len(rec.child.commands("send")) == 1
    rig.broker.confirm_all()
    assert {late.tag, again.tag} <= set(rig.broker.acked)
    # A send done before (its record in Redis) is answered again, not sent.
    rig.store.sends[("k", "c9")] = "done:true_x_OLD"
    rig.node._tick(61.0)
    send(rig, "k", "c9", now=61.0)
    rig.node._tick(62.0)
    assert len(rec.child.commands("send")) == 1
    rig.broker.confirm_all()
    dup = [e for e in rig.broker.events("message_sent_instance") if e["command_id"] == "c9"]
    assert dup and dup[0]["duplicate"] is True


def test_waiting_paced_sends_wait_through_a_restart_and_go_in_order_after(tmp_path):
    rig = node_rig(tmp_path)
    rec = ready_with(rig, "k", {"pacing": {"min_gap_ms": 1000}})
    send(rig, "k", "a", now=0.0, text="a")
    send(rig, "k", "b", now=0.0, text="b")
    send(rig, "k", "c", now=0.0, text="c")
    first = rec.child
    rig.exit(rec, 1, now=0.5)  # crashed with "a" in flight: "a" goes back to its queue
    assert rig.broker.requeued
    rig.node._tick(2.0)  # restarted after its back-off
    rig.make_ready(rec, now=2.0)
    assert rec.child is not first
    rig.node._tick(2.1)
    answer(rig, rec, now=2.2)
    rig.node._tick(3.3)
    assert sent_texts(rec) == ["b", "c"]


def test_paced_sends_waiting_are_bounded_so_other_keys_always_find_room(tmp_path):
    rig = node_rig(tmp_path, command_prefetch=6)  # at most 3 paced sends wait here
    ready_with(rig, "k", {"pacing": {"per_minute": 1}})
    free = ready_with(rig, "free", {})
    for i in range(5):
        send(rig, "k", f"c{i}", now=0.0)
    assert [(f["command_id"], f["reason"]) for f in rig.broker.events("command_failed")] == [
        ("c4", "pacing_backlog")]  # c0 went, c1-c3 wait, c4 is refused at once
    send(rig, "free", "f0", now=0.0)
    assert sent_texts(free) == ["hi"]


def test_an_update_of_pacing_applies_to_the_next_send(tmp_path):
    rig = node_rig(tmp_path)
    rec = ready_with(rig, "k", {})
    send(rig, "k", "a", now=0.0)
    send(rig, "k", "b", now=0.0)
    assert len(sent_texts(rec)) == 2
    d = delivery("update_settings")
    rig.dispatch._carry_out(parse("update_settings", orjson.dumps({"key": "k", "settings": {
        "pacing": {"min_gap_ms": 5000}}})), d, 0.1)
    answer(rig, rec, now=0.2)
    send(rig, "k", "c", now=0.3)
    assert len(sent_texts(rec)) == 2
    rig.node._tick(5.3)
    assert len(sent_texts(rec)) == 3
