"""Calls on the stand-in, at the world's level and through the control API,
without a browser: a phone rings an account, its open pages see the offer,
and the call rings until a page rejects it (the stanza whatsapp-web.js's
Call.reject casts) or it is missed; the caller sees which."""

from __future__ import annotations

import pytest

from support import new_phone
from test_fakewa_control import raw
from test_fakewa_lids import events, linked
from wwnode.fakewa.calls import MISSED, REJECTED, RINGING
from wwnode.fakewa.client import Control, ControlError
from wwnode.fakewa.world import BadRequest, NotFound, Settings, World

GROUP = "120363000000000031@g.us"


def reject_stanza(call_id: str, caller: str, me: str = "5511000000000@c.us") -> dict:
    """What whatsapp-web.js's Call.reject casts: a call stanza holding a reject."""
    return {"tag": "call", "attrs": {"id": "1.1", "from": me, "to": caller},
            "content": [{"tag": "reject", "attrs": {"call-id": call_id, "call-creator": caller, "count": "0"},
                         "content": None}]}


def test_a_call_rings_on_every_open_page_of_the_account_until_a_page_rejects_it():
    world, caller = World(), new_phone()
    first, phone = linked(world, "dev-1")
    second = world.open_link("dev-2", "noise,identity,adv,WEB", claims_paired=False, now=0.0)
    world.scan(second.qr, phone, now=0.0)
    events(first), events(second)
    call_id = world.ring(phone, caller, now=10.0, video=True)
    for link in (first, second):
        [offer] = [e for e in events(link) if e["type"] == "call_offer"]
        assert offer["call"] == {"id": call_id, "from": f"{caller}@c.us", "video": True, "group": None,
                                 "t": offer["call"]["t"]}
        assert offer["lids"] == [[world.lid_of(caller), f"{caller}@c.us"]]  # the number shows with the call
    [record] = world.calls_of(caller, now=11.0)
    assert (record["from"], record["to"], record["state"]) == (caller, phone, RINGING)

    assert world.cast_stanza("dev-1", reject_stanza(call_id, f"{caller}@c.us")) == {}
    assert world.calls_of(caller, now=12.0)[0]["state"] == REJECTED
    for link in (first, second):  # both stop ringing
        assert [e for e in events(link) if e["type"] == "call_end"] == [
            {"type": "call_end", "id": call_id, "reason": REJECTED}]


def test_a_reject_of_a_call_that_no_longer_rings_or_is_not_ours_changes_nothing():
    world, caller = World(), new_phone()
    link, phone = linked(world)
    other_link, other = linked(world, "dev-2")
    call_id = world.ring(phone, caller, now=0.0)
    world.hang_up(call_id, now=1.0)
    events(link), events(other_link)
    assert "not ringing" in world.cast_stanza("dev-1", reject_stanza(call_id, f"{caller}@c.us"))["ignored"]
    assert "no call" in world.cast_stanza("dev-1", reject_stanza("ABCDEF0123", f"{caller}@c.us"))["ignored"]
    ringing = world.ring(phone, caller, now=2.0)
    assert "no call" in world.cast_stanza("dev-2", reject_stanza(ringing, f"{caller}@c.us"))["ignored"]
    assert [c["state"] for c in world.calls_of(caller, now=3.0)] == [MISSED, RINGING]
    assert [e["type"] for e in events(link)] == ["call_offer"] and events(other_link) == []
    with pytest.raises(BadRequest):  # names another caller: a page's mistake, shown
        world.cast_stanza("dev-1", reject_stanza(ringing, f"{new_phone()}@c.us"))
    assert world.calls_of(caller, now=3.0)[1]["state"] == RINGING


def test_a_call_nobody_rejects_is_missed_when_the_caller_hangs_up_or_it_rings_out():
    world, caller = World(Settings(ring_timeout=30)), new_phone()
    link, phone = linked(world)
    events(link)
    hung = world.ring(phone, caller, now=100.0)
    world.hang_up(hung, now=105.0)
    with pytest.raises(BadRequest):
        world.hang_up(hung, now=106.0)  # not ringing any more
    out = world.ring(phone, caller, now=110.0, group=GROUP)
    assert world.advance(link, 120.0) == pytest.approx(20.0)  # the next thing due: the ring's end
    world.advance(link, 140.0)
    assert [(c["id"], c["state"], c["group"]) for c in world.calls_of(phone, now=140.0)] == [
        (hung, MISSED, None), (out, MISSED, GROUP)]
    ends = [e for e in events(link) if e["type"] == "call_end"]
    assert [(e["id"], e["reason"]) for e in ends] == [(hung, MISSED), (out, MISSED)]


def test_a_call_needs_a_linked_phone_and_well_formed_fields():
    world, caller = World(), new_phone()
    with pytest.raises(NotFound):
        world.ring(new_phone(), caller, now=0.0)
    link, phone = linked(world)
    for bad in ({"to": "55"}, {"caller": "x"}, {"video": "yes"}, {"group": "not a group"}, {"caller": phone}):
        args = {"to": phone, "caller": caller, "now": 0.0} | bad
        with pytest.raises(BadRequest):
            world.ring(**args)
    with pytest.raises(NotFound):
        world.hang_up("ABC123", now=0.0)
    assert world.calls_of(phone, now=0.0) == []


def test_the_control_api_rings_hangs_up_and_lists_calls(wa):
    control, caller, phone = Control(wa.url), new_phone(), new_phone()
    link = wa.world.open_link("dev-c", "noise,identity,adv,WEB", claims_paired=False, now=0.0)
    wa.world.scan(link.qr, phone, now=0.0)
    call_id = control.ring(phone, caller, video=True)
    control.hang_up(call_id)
    assert [(c["id"], c["video"], c["state"]) for c in control.calls(caller)] == [(call_id, True, MISSED)]
    with pytest.raises(ControlError) as err:
        control.ring(new_phone(), caller)
    assert err.value.status == 404


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/_sim/calls", b'{"to": "5511999990001", "from": "5511999990002", "video": 1}', 400, "video"),
        ("/_sim/calls/end", b'{"call_id": "not an id"}', 400, "call id"),
        ("/_sim/calls/end", b'{"call_id": "ABC"}', 404, "no call"),
        ("/_wa/stanza", b'{"device": "nobody", "stanza": {"tag": "iq", "attrs": {}}}', 400, "call stanzas"),
        ("/_wa/stanza", b'{"device": "nobody", "stanza": {"tag": "call", "attrs": {"to": "x", "id": "1"}, '
                        b'"content": [{"tag": "terminate", "attrs": {}}]}}', 400, "one reject"),
        ("/_wa/stanza", b'{"device": "nobody", "stanza": {"tag": "call", "attrs": {"to": "x", "id": "1"}, '
                        b'"content": [{"tag": "reject", "attrs": {"call-id": "A1", "call-creator": "x"}}]}}',
         404, "not linked"),
    ],
)
def test_malformed_or_unknown_calls_get_a_reason(wa, path, body, status, words):
    got, answer = raw(wa, "POST", path, body, {"Content-Type": "application/json"})
    assert (got, words in answer["error"]) == (status, True)
