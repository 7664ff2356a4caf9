"""The stand-in's control API and its rules, without a browser."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from support import new_phone, wait_for
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
    lid = world.lid_of("5511999990001")
    ids = {"lid": lid, "lids": [[lid, "5511999990001@c.us"]], "lid_groups": []}  # the account's own LID
    # Then what the account has (nothing yet), as the page loads it with the sync.
    assert drain(link) == [{"type": "paired", "wid": "5511999990001@c.us", "restored": False,
                            "pushname": "Ana", "platform": "android", **ids},
                           {"type": "history", "chats": [], "messages": [], "contacts": [], "groups": []}]
    world.close_link(link)

    again = world.open_link("dev1", TAIL, claims_paired=True, now=5.0)
    assert again.events.get_nowait() == {"type": "paired", "wid": "5511999990001@c.us", "restored": True,
                                         "pushname": "Ana", "platform": "android", **ids}


def test_a_scan_without_a_code_takes_the_only_one_shown():
    world = World()
    with pytest.raises(NotFound, match="no page shows a QR code"):
        world.scan(None, "5511999990001", now=0.5)
    link = world.open_link("dev1", TAIL, False, now=0.0)
    assert world.scan(None, "5511999990001", now=1.0) == "5511999990001@c.us"
    assert drain(link)[1]["type"] == "paired"
    assert world.pending_qr() == []
    world.close_link(link)


def test_a_scan_without_a_code_is_refused_with_the_list_when_several_are_shown(wa, control):
    first = wa.world.open_link("dev1", TAIL, False, now=0.0)
    second = wa.world.open_link("dev2", TAIL, False, now=0.0)
    try:
        shown = control.pending_qr()
        status, answer = raw(wa, "POST", "/_sim/scan", b'{"phone": "5511999990001"}',
                             {"Content-Type": "application/json"})
        assert status == 409
        assert '2 pages show a QR code now' in answer["error"] and '"qr"' in answer["error"]
        assert sorted(p["qr"] for p in answer["pending"]) == sorted(p["qr"] for p in shown)
        assert control.pending_qr() == shown  # nothing scanned
        # Naming one still works, and then the other is the only one left.
        assert control.scan(shown[0]["qr"], "5511999990001") == "5511999990001@c.us"
        assert control.scan(None, "5511999990002") == "5511999990002@c.us"
        assert control.pending_qr() == []
    finally:
        wa.world.close_link(first)
        wa.world.close_link(second)


def test_the_page_syncs_before_it_is_ready_on_pairing_and_on_restore():
    world = World(Settings(sync_delay=2.0))
    link = world.open_link("dev1", TAIL, False, now=0.0)
    world.scan(f"{link.events.get_nowait()['ref']},{TAIL}", "5511999990001", now=10.0)
    assert [e["type"] for e in drain(link)] == ["paired", "history"]
    assert world.advance(link, 11.0) == pytest.approx(1.0)  # still syncing
    assert drain(link) == []
    assert world.advance(link, 12.0) is None
    assert drain(link) == [{"type": "synced"}]
    world.close_link(link)

    again = world.open_link("dev1", TAIL, claims_paired=True, now=20.0)
    assert [e["type"] for e in drain(again)] == ["paired", "history", "offline"]
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
    assert [link.events.get_nowait()["type"] for _ in range(2)] == ["paired", "history"]
    a = world.deliver("5511999990001", "5511888880002", "a")
    b = world.deliver("5511999990001", "5511888880002", "b")
    c = world.deliver("5511999990001", "5511888880002", "c")
    assert [link.events.get_nowait()["msg"]["id"] for _ in range(3)] == [a, b, c]
    world.ack("dev1", [a])
    world.close_link(link)

    again = world.open_link("dev1", TAIL, True, now=10.0)
    assert [e["type"] for e in drain(again)] == ["paired", "history", "offline"]
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


# ------------------------------------------------------------- receipts


def linked_world(**settings) -> tuple[World, object]:
    """A world with one linked, synced page."""
    world = World(Settings(sync_delay=0, **settings))
    link = world.open_link("dev1", TAIL, False, now=0.0)
    world.scan(f"{link.events.get_nowait()['ref']},{TAIL}", "5511999990001", now=0.0)
    world.advance(link, 0.0)
    assert [e["type"] for e in drain(link)] == ["paired", "history", "synced"]
    return world, link


def test_receipts_raise_the_ack_and_reach_the_senders_page():
    world, link = linked_world()
    world.record_sent("dev1", "ABC", "5511888880002@c.us", "hi", 0, now=0.0)
    assert world.sent_by("5511999990001", now=0.0)[0]["ack"] == 1  # the server took it
    assert world.receipt("ABC", "delivered") == 2
    assert world.receipt("ABC", "read") == 3
    assert world.receipt("ABC", "delivered") == 3  # acks never go down
    assert drain(link) == [{"type": "receipt", "id": "ABC", "to": "5511888880002@c.us", "ack": 2},
                           {"type": "receipt", "id": "ABC", "to": "5511888880002@c.us", "ack": 3}]
    assert world.sent_by("5511999990001", now=0.0)[0]["ack"] == 3


def test_read_first_implies_delivered():
    world, link = linked_world()
    world.record_sent("dev1", "ABC", "5511888880002@c.us", "hi", 0, now=0.0)
    assert world.receipt("ABC", "read") == 3
    assert [e["ack"] for e in drain(link)] == [3]


def test_receipts_can_come_by_themselves():
    world, link = linked_world(auto_delivered=1.0, auto_read=3.0)
    world.record_sent("dev1", "ABC", "5511888880002@c.us", "hi", 0, now=10.0)
    assert world.advance(link, 10.5) == pytest.approx(0.5)
    assert drain(link) == []
    assert world.advance(link, 11.0) == pytest.approx(2.0)
    assert [e["ack"] for e in drain(link)] == [2]
    assert world.advance(link, 13.0) is None
    assert [e["ack"] for e in drain(link)] == [3]


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b'{"ack": "read"}', 400, "message_id"),
        (b'{"message_id": 7, "ack": "read"}', 400, "message_id"),
        (b'{"message_id": "ABC", "ack": "seen"}', 400, "delivered"),
        (b'{"message_id": "ABC"}', 400, "delivered"),
        (b'{"message_id": "ABC", "ack": "read"}', 404, "ABC"),
    ],
)
def test_bad_receipts_get_a_reason(wa, body, status, words):
    got, answer = raw(wa, "POST", "/_sim/receipts", body, {"Content-Type": "application/json"})
    assert got == status and words in answer["error"]


# ------------------------------------------------- the page and the site


def page_html(wa, user_agent: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", wa.port, timeout=5)
    conn.request("GET", "/", headers={"User-Agent": user_agent})
    resp = conn.getresponse()
    assert resp.status == 200
    text = resp.read().decode()
    conn.close()
    return text


WWEBJS_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_0) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/101.0.4951.67 Safari/537.36")
HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "HeadlessChrome/156.0.0.0 Safari/537.36")


def test_headless_chrome_gets_the_unsupported_browser_page(wa):
    assert "/_wa/page.js" in page_html(wa, WWEBJS_UA)
    unsupported = page_html(wa, HEADLESS_UA)
    assert "WhatsApp works with Google Chrome" in unsupported and "<script" not in unsupported


def test_dropped_modules_reach_the_page_as_data(make_wa):
    wa = make_wa(drop_modules=("WAWebCallCollection", "WALinkify"), edit_window=60)
    html = page_html(wa, WWEBJS_UA)
    block = html.split('<script id="fakewa-config" type="application/json">')[1].split("</script>")[0]
    config = json.loads(block)
    assert config.pop("run") == wa.world.run_id
    assert config == {"dropModules": ["WAWebCallCollection", "WALinkify"], "editWindow": 60,
                      "revokeWindow": 60 * 3600}


def page_config(wa) -> dict:
    html = page_html(wa, WWEBJS_UA)
    return json.loads(html.split('<script id="fakewa-config" type="application/json">')[1].split("</script>")[0])


def test_a_page_another_run_of_the_stand_in_served_is_turned_away(wa, control):
    """A browser left open on a port a new run took (a test's stand-in
    gone, the next one given its port) reconnects its live link every
    half second: refused, it shows no QR code a scan without a code could
    link."""
    tail = "a,b,c,WEB"
    for run in ("", "0123456789abcdef"):
        status, answer = raw(wa, "GET", f"/_wa/link?device=stray{len(run)}&tail={tail}&run={run}")
        assert status == 410 and "another run of the stand-in" in answer["error"]
    assert control.pending_qr() == []
    conn = http.client.HTTPConnection("127.0.0.1", wa.port, timeout=5)
    conn.request("GET", f"/_wa/link?device=ours&tail={tail}&run={page_config(wa)['run']}")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    conn.close()
    wait_for(lambda: len(control.pending_qr()) == 1, what="this run's page showing its code")


def test_unknown_or_malformed_modules_cannot_be_dropped():
    from wwnode.fakewa import FakeWA
    from wwnode.fakewa.cli import main

    with pytest.raises(ValueError, match="no module WAWebNope"):
        FakeWA(settings=Settings(drop_modules=("WAWebNope",)))
    with pytest.raises(ValueError, match="not module names"):
        Settings(drop_modules=("WAWeb'); alert(1",))
    with pytest.raises(SystemExit) as done:
        main(["--drop-module", "WAWebNope", "--port", "0"])
    assert done.value.code == 2


@pytest.mark.parametrize("bad", [{"sync_delay": -1}, {"auto_read": -0.5}, {"qr_count": 0}, {"qr_first": 0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Settings(**bad)


def test_tls_serves_a_certificate_for_web_whatsapp_com(make_wa):
    import socket
    import ssl

    from wwnode.fakewa.client import Control

    wa = make_wa(tls=True)
    assert wa.url.startswith("https://") and Control(wa.url).health()
    # Trusting exactly the stand-in's certificate, the name checks out.
    pem = ssl.get_server_certificate(("127.0.0.1", wa.port))
    context = ssl.create_default_context(cadata=pem)
    with socket.create_connection(("127.0.0.1", wa.port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="web.whatsapp.com") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # Plain HTTP on the TLS port is not served.
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        raw(wa, "GET", "/_sim/health")


def test_a_second_front_shares_the_world(make_wa, wa):
    from wwnode.fakewa.client import Control

    tls = make_wa(tls=True, world=wa.world)
    world = wa.world
    link = world.open_link("dev1", TAIL, False, now=0.0)
    ref = link.events.get_nowait()["ref"]
    assert Control(tls.url).pending_qr() == Control(wa.url).pending_qr() == [{"ref": ref, "qr": f"{ref},{TAIL}"}]
    world.close_link(link)


def test_the_fakewa_command_serves_tls_with_its_options(tmp_path):
    import re
    import ssl
    import subprocess
    import sys

    from wwnode.fakewa.client import Control

    proc = subprocess.Popen(
        [sys.executable, "-m", "wwnode.fakewa.cli", "--port", "0", "--tls", "--sync-delay", "0.5",
         "--auto-read", "1", "--drop-module", "WALinkify", "--edit-window", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()
        url = re.search(r"serving (https://\S+/) ", first).group(1)
        assert "web.whatsapp.com" in proc.stdout.readline()  # how a browser reaches it
        assert Control(url).health()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ssl._create_unverified_context())
        conn.request("GET", "/", headers={"User-Agent": WWEBJS_UA})
        assert '{"dropModules":["WALinkify"],"editWindow":0.0,' in conn.getresponse().read().decode()
        conn.close()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_a_freeze_is_pushed_to_the_open_pages_and_counts_once_each_says_it_hung():
    world = World()
    link = world.open_link("dev1", TAIL, False, now=0.0)
    ref = link.events.get_nowait()["ref"]
    world.scan(f"{ref},{TAIL}", "5511999990002", now=1.0)
    drain(link)
    [pushed] = world.freeze("5511999990002")
    assert pushed is link and drain(link) == [{"type": "freeze"}]
    assert not link.frozen.is_set()  # pushed, not yet taken: the page may still run a script
    world.page_frozen("dev1")
    assert link.frozen.is_set()
    with pytest.raises(NotFound):
        world.page_frozen("no-such-device")
