"""The stand-in's control API and its rules, without a browser."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from support import new_phone
from wwnode.fakewa.client import ControlError
from wwnode.fakewa.world import BadRequest, NotFound, Settings, World


def raw(wa, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", wa.port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else None


def test_health(control):
    assert control.health()


def test_nothing_pending_without_pages(control):
    assert control.pending_qr() == []


@pytest.mark.parametrize(
    "method, path, body, status, words",
    [
        ("POST", "/_sim/scan", b"not json", 400, "not JSON"),
        ("POST", "/_sim/scan", b"[1, 2]", 400, "JSON object"),
        ("POST", "/_sim/scan", b'{"qr": "2@x,a,b,c,WEB"}', 400, "phone"),
        ("POST", "/_sim/scan", b'{"qr": "2@x,a,b,c,WEB", "phone": "12 34"}', 400, "phone"),
        ("POST", "/_sim/scan", b'{"qr": 5, "phone": "5511999990001"}', 400, "qr"),
        ("POST", "/_sim/scan", b'{"qr": "2@unknown,a,b,c,WEB", "phone": "5511999990001"}', 404, "QR"),
        ("POST", "/_sim/messages", b'{"to": "5511999990001", "from": "5511888880002"}', 400, "body"),
        ("POST", "/_sim/messages", b'{"to": "5511999990001", "from": "x", "body": "hi"}', 400, "from"),
        ("POST", "/_sim/messages", b'{"to": "5511999990001", "from": "5511888880002", "body": "hi"}', 404, "no device"),
        ("GET", "/_sim/messages", None, 400, "from"),
        ("POST", "/_sim/logout", b'{"phone": "5511999990001"}', 404, "no device"),
        ("POST", "/_sim/logout", b"{}", 400, "phone"),
        ("POST", "/_sim/conflict", b'{"phone": "5511999990001"}', 404, "no open page"),
        ("GET", "/_sim/nothing", None, 404, "no such endpoint"),
        ("POST", "/_sim/health", b"{}", 404, "no such endpoint"),
    ],
)
def test_malformed_or_unknown_requests_get_a_reason(wa, method, path, body, status, words):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    got, answer = raw(wa, method, path, body, headers)
    assert got == status
    assert words in answer["error"]


def test_post_without_length_is_refused(wa):
    conn = http.client.HTTPConnection("127.0.0.1", wa.port, timeout=5)
    conn.putrequest("POST", "/_sim/scan")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and "Content-Length" in json.loads(resp.read())["error"]


def test_a_bad_request_changes_nothing(wa, control):
    raw(wa, "POST", "/_sim/messages", b'{"to": "1", "from": "2", "body": "x"}', {"Content-Type": "application/json"})
    assert control.pending_qr() == []
    assert control.sent_by(new_phone()) == []


def test_client_raises_with_status_and_reason(control):
    with pytest.raises(ControlError) as err:
        control.scan("2@nope,a,b,c,WEB", new_phone())
    assert err.value.status == 404 and "QR" in err.value.error


# ---------------------------------------------------------------- rules


TAIL = "bm9pc2U=,aWRlbnRpdHk=,YWR2,WEB"


def test_qr_rotation_follows_the_configured_timings():
    world = World(Settings(qr_first=60, qr_next=20, qr_count=3))
    link = world.open_link("dev1", TAIL, claims_paired=False, now=1000.0)
    first = link.events.get_nowait()
    assert first["type"] == "ref" and world.pending_qr()[0]["qr"] == f"{first['ref']},{TAIL}"

    assert world.advance(link, 1059.0) == pytest.approx(1.0)  # not yet
    assert link.events.empty()
    assert world.advance(link, 1060.0) == pytest.approx(20.0)  # second code, lives 20 s
    second = link.events.get_nowait()
    assert second["type"] == "ref" and second["ref"] != first["ref"]
    world.advance(link, 1080.0)
    third = link.events.get_nowait()
    assert third["type"] == "ref"
    assert world.advance(link, 1100.0) is None  # ran out: idle
    assert link.events.get_nowait() == {"type": "idle"}
    assert world.pending_qr() == []


def drain(link) -> list[dict]:
    events = []
    while not link.events.empty():
        events.append(link.events.get_nowait())
    return events


def test_scan_links_the_device_and_restores_it_later():
    world = World()
    link = world.open_link("dev1", TAIL, False, now=0.0)
    ref = link.events.get_nowait()["ref"]
    assert world.scan(f"{ref},{TAIL}", "5511999990001", now=1.0, pushname="Ana") == "5511999990001@c.us"
    assert drain(link) == [{"type": "paired", "wid": "5511999990001@c.us", "restored": False,
                            "pushname": "Ana", "platform": "android"}]
    world.close_link(link)

    again = world.open_link("dev1", TAIL, claims_paired=True, now=5.0)
    assert again.events.get_nowait() == {"type": "paired", "wid": "5511999990001@c.us", "restored": True,
                                         "pushname": "Ana", "platform": "android"}


def test_the_page_syncs_before_it_is_ready_on_pairing_and_on_restore():
    world = World(Settings(sync_delay=2.0))
    link = world.open_link("dev1", TAIL, False, now=0.0)
    world.scan(f"{link.events.get_nowait()['ref']},{TAIL}", "5511999990001", now=10.0)
    assert [e["type"] for e in drain(link)] == ["paired"]
    assert world.advance(link, 11.0) == pytest.approx(1.0)  # still syncing
    assert drain(link) == []
    assert world.advance(link, 12.0) is None
    assert drain(link) == [{"type": "synced"}]
    world.close_link(link)

    again = world.open_link("dev1", TAIL, claims_paired=True, now=20.0)
    assert [e["type"] for e in drain(again)] == ["paired", "offline"]
    assert world.advance(again, 20.0) == pytest.approx(1.0)
    world.advance(again, 21.0)
    assert drain(again) == [{"type": "offline", "progress": 100}]  # nothing was held
    world.advance(again, 22.0)
    assert drain(again) == [{"type": "synced"}]


def test_pushname_and_platform_are_checked():
    world = World()
    link = world.open_link("dev1", TAIL, False, now=0.0)
    qr = f"{link.events.get_nowait()['ref']},{TAIL}"
    for bad in ({"pushname": ""}, {"pushname": "x" * 26}, {"pushname": 5}, {"platform": "nokia"}):
        with pytest.raises(BadRequest):
            world.scan(qr, "5511999990001", now=0.0, **bad)
    assert world.pending_qr() != []  # nothing was linked


def test_unlinked_profile_is_told_to_start_over():
    world = World()
    link = world.open_link("dev1", TAIL, False, now=0.0)
    world.scan(f"{link.events.get_nowait()['ref']},{TAIL}", "5511999990001", now=0.0)
    world.close_link(link)
    world.logout("5511999990001")
    again = world.open_link("dev1", TAIL, claims_paired=True, now=1.0)
    assert again.events.get_nowait() == {"type": "unpaired", "reason": "unlinked"}


def test_unacknowledged_messages_are_pushed_again_during_the_sync_with_progress():
    world = World(Settings(sync_delay=2.0))
    link = world.open_link("dev1", TAIL, False, now=0.0)
    world.scan(f"{link.events.get_nowait()['ref']},{TAIL}", "5511999990001", now=0.0)
    link.events.get_nowait()  # paired
    a = world.deliver("5511999990001", "5511888880002", "a")
    b = world.deliver("5511999990001", "5511888880002", "b")
    c = world.deliver("5511999990001", "5511888880002", "c")
    assert [link.events.get_nowait()["msg"]["id"] for _ in range(3)] == [a, b, c]
    world.ack("dev1", [a])
    world.close_link(link)

    again = world.open_link("dev1", TAIL, True, now=10.0)
    assert [e["type"] for e in drain(again)] == ["paired", "offline"]
    world.advance(again, 11.0)  # halfway through the sync
    assert [(e["type"], e.get("msg", {}).get("id"), e.get("progress")) for e in drain(again)] == [
        ("msg", b, None), ("offline", None, 50), ("msg", c, None), ("offline", None, 100)]
    world.advance(again, 12.0)
    assert drain(again) == [{"type": "synced"}]


def test_retried_send_is_recorded_once():
    world = World()
    link = world.open_link("dev1", TAIL, False, now=0.0)
    world.scan(f"{link.events.get_nowait()['ref']},{TAIL}", "5511999990001", now=0.0)
    t = int(time.time())
    world.record_sent("dev1", "ABC", "5511888880002@c.us", "hi", t, now=0.0)
    world.record_sent("dev1", "ABC", "5511888880002@c.us", "hi", t, now=0.0)
    assert len(world.sent_by("5511999990001", now=0.0)) == 1


def test_send_from_an_unlinked_device_is_refused():
    world = World()
    world.open_link("dev1", TAIL, False, now=0.0)
    with pytest.raises(NotFound):
        world.record_sent("dev1", "ABC", "5511888880002@c.us", "hi", 0, now=0.0)


def test_bad_link_parameters():
    world = World()
    with pytest.raises(BadRequest):
        world.open_link("dev1", "only,three,parts", False, now=0.0)
    with pytest.raises(BadRequest):
        world.open_link("", TAIL, False, now=0.0)
