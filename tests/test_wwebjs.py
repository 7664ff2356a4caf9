"""The real whatsapp-web.js 1.34.7, unmodified, on the stand-in, over the
path a bot walks: QR, scan at once, ready, send, receipts, inbound, a reply,
a reaction out and one in, a number check, a message from a LID and the
reply to it, what the phone writes itself, an edit and a deletion each way,
a restart on the same profile, a phone logout, a conflict; linking with
a pairing code; locations, contact cards and polls, both ways, with
the votes on polls; a call that rings and its reject; presence, typing,
recording and the chat list (archive, pin, mute); and reading back (chats,
messages, contacts, profile pictures) and groups (every GroupChat method,
and what others do).  Our own session process walks the same path on the
same stand-in, so the suite shows where the two differ.

whatsapp-web.js is installed in tests/wwebjs by deploy/setup-debian.sh
(npm, PUPPETEER_SKIP_DOWNLOAD=1, Debian's Chromium); this module installs
nothing.  It always opens https://web.whatsapp.com/: the stand-in serves
that name over TLS on a second front (same phones and messages) and the
client's Chromium is sent there with --host-resolver-rules.  The page syncs
for the stand-in's default delay, as the real page does.

Run with ``-s`` to see the time of each step for both clients.
"""

from __future__ import annotations

import base64
import itertools
import time

import pytest

from mediafiles import jpeg, mp4, ogg, pdf
from support import SessionProcess, WwebjsClient, all_gone, chrome_processes_under, new_phone, wait_for
from wwnode.fakewa import FakeWA, Settings
from wwnode.fakewa.client import Control

pytestmark = pytest.mark.browser

TEXT = 'from a bot: "quotes", \\backslash, </script>, emoji 😀, 中文\nsecond line'
STEPS = ("qr", "ready", "send", "ack delivered", "ack read", "inbound", "reply", "react", "reaction in", "number",
         "lid", "own", "edit", "restart ready")


class Stopwatch:
    """Seconds from the client's start to each step, for the closing table."""

    def __init__(self, table: dict, client: str):
        self.start = time.monotonic()
        self.marks = table.setdefault(client, {})

    def mark(self, step: str) -> None:
        self.marks[step] = time.monotonic() - self.start

    def restart(self) -> None:
        self.start = time.monotonic()


def ready_without_qr(client, clock: Stopwatch) -> None:
    """A client restarted on a linked profile: authenticated and ready, no QR."""
    client.expect("authenticated", timeout=60)
    client.expect("ready", timeout=30)
    clock.mark("restart ready")
    assert "qr" not in client.names()


@pytest.fixture(scope="module")
def stand_in():
    """One stand-in with the real page's timings, over HTTP (our session)
    and HTTPS (whatsapp-web.js, as web.whatsapp.com)."""
    plain = FakeWA(settings=Settings()).start()
    tls = FakeWA(tls=True, world=plain.world).start()
    yield plain, tls
    tls.stop()
    plain.stop()


@pytest.fixture(scope="module")
def timings():
    table: dict[str, dict[str, float]] = {}
    yield table
    print(f"\nSeconds from the client's start (restart: from the second start), sync delay {Settings().sync_delay} s")
    clients = list(table)
    print(f"{'step':<15}" + "".join(f"{c:>18}" for c in clients))
    for step in STEPS:
        print(f"{step:<15}" + "".join(f"{table[c].get(step, float('nan')):>18.3f}" for c in clients))


def test_whatsapp_web_js_walks_the_whole_path(stand_in, timings, tmp_path):
    plain, tls = stand_in
    control = Control(plain.url)
    phone, friend = new_phone(), new_phone()
    clock = Stopwatch(timings, "whatsapp-web.js")

    first = WwebjsClient(tls.port, tmp_path / "auth", "bot")
    try:
        qr = first.expect("qr", timeout=60)["qr"]
        clock.mark("qr")
        control.scan(qr, phone, pushname="Corner Shop", platform="iphone")  # at once, as a quick phone would
        first.expect("authenticated", timeout=30)
        ready = first.expect("ready", timeout=30)
        clock.mark("ready")
        assert (ready["wid"], ready["pushname"], ready["platform"]) == (f"{phone}@c.us", "Corner Shop", "iphone")

        first.send({"cmd": "send", "ref": "s1", "chat_id": f"{friend}@c.us", "text": TEXT})
        sent = first.expect("sent", ref="s1")
        clock.mark("send")
        recorded = wait_for(lambda: control.sent_by(phone), what="the stand-in to record the send")
        assert [(m["to"], m["body"]) for m in recorded] == [(f"{friend}@c.us", TEXT)]
        assert sent["id"] == f"true_{friend}@c.us_{recorded[0]['id']}"

        control.receipt(recorded[0]["id"], "delivered")
        first.expect("message_ack", id=sent["id"], ack=2)
        clock.mark("ack delivered")
        control.receipt(recorded[0]["id"], "read")
        first.expect("message_ack", id=sent["id"], ack=3)
        clock.mark("ack read")

        inbound_id = control.deliver(phone, friend, "hello, bot")
        message = first.expect("message")["message"]
        clock.mark("inbound")
        assert message["id"] == f"false_{friend}@c.us_{inbound_id}"
        assert (message["from"], message["to"], message["body"]) == (f"{friend}@c.us", f"{phone}@c.us", "hello, bot")
        assert (message["type"], message["fromMe"], message["deviceType"], message["hasMedia"]) == ("chat", False, "web", False)

        # Message.reply, Message.react, a reaction from the phone, Client.getNumberId.
        first.send({"cmd": "reply", "ref": "r1", "message_id": message["id"], "text": "on it"})
        reply = first.expect("sent", ref="r1")
        clock.mark("reply")
        assert reply["hasQuotedMsg"] is True
        # The page resolves a send once it holds the message, as the real
        # one does; the server records it a moment later.
        [record] = wait_for(lambda: [m for m in control.sent_by(phone) if m["body"] == "on it"],
                            what="the stand-in to record the reply")
        assert record["quoted_id"] == inbound_id and reply["id"] == f"true_{friend}@c.us_{record['id']}"
        first.send({"cmd": "react", "ref": "x1", "message_id": message["id"], "emoji": "👍"})
        first.expect("reacted", ref="x1")
        clock.mark("react")
        wait_for(lambda: [(r["message_id"], r["reaction"]) for r in control.reactions_by(phone)] == [(inbound_id, "👍")],
                 what="the stand-in to record the reaction")
        control.react(phone, friend, record["id"], "❤️")
        reaction = first.expect("message_reaction")
        clock.mark("reaction in")
        assert (reaction["msgId"], reaction["reaction"], reaction["senderId"]) == (reply["id"], "❤️", f"{friend}@c.us")
        control.number(friend, True)
        first.send({"cmd": "number", "ref": "n1", "phone": friend})
        assert first.expect("number", ref="n1")["wid"] == f"{friend}@c.us"
        clock.mark("number")
        first.send({"cmd": "number", "ref": "n2", "phone": new_phone()})
        assert first.expect("number", ref="n2")["wid"] is None

        # Someone known only by LID writes; Message.reply answers from our
        # own LID and reaches that person's phone; the page maps what it knows
        # (Client.getContactLidAndPhone: the friend wrote by number).
        stranger = new_phone()
        lid = control.lid(stranger)
        lid_msg_id = control.deliver(phone, stranger, "by lid", lid=True)
        by_lid = first.expect("message")["message"]
        assert (by_lid["id"], by_lid["from"]) == (f"false_{lid}_{lid_msg_id}", lid)
        first.send({"cmd": "reply", "ref": "r2", "message_id": by_lid["id"], "text": "to a lid"})
        assert first.expect("sent", ref="r2")["id"].startswith(f"true_{lid}_")
        # The page resolves a send once it holds the message; the stand-in
        # records it a moment later.
        [got] = wait_for(lambda: control.received_by(stranger), what="the stand-in's record of the reply")
        assert (got["body"], got["from"]) == ("to a lid", control.lid(phone))
        first.send({"cmd": "lid_and_phone", "ref": "l1", "ids": [lid, f"{friend}@c.us"]})
        assert first.expect("lid_and_phone", ref="l1")["result"] == [
            {"lid": lid}, {"lid": control.lid(friend), "pn": f"{friend}@c.us"}]
        clock.mark("lid")
        # What the phone writes itself: message_create, fromMe, and no message.
        own_id = control.write_own(phone, f"{friend}@c.us", "from the phone")
        own = first.expect("message_create", match=lambda e: e["message"]["body"] == "from the phone")["message"]
        assert (own["id"], own["fromMe"], own["from"]) == (f"true_{friend}@c.us_{own_id}", True, f"{phone}@c.us")
        clock.mark("own")

        # Message.edit and Message.delete for everyone of its reply; the
        # phone's edit and deletion of its message: message_edit and
        # message_revoke_everyone.
        first.send({"cmd": "edit", "ref": "e1", "id": reply["id"], "text": "on it, now"})
        assert first.expect("edited", ref="e1")["body"] == "on it, now"
        first.send({"cmd": "delete", "ref": "d1", "id": reply["id"], "everyone": True})
        first.expect("deleted", ref="d1")
        [mine] = wait_for(lambda: [m for m in control.sent_by(phone) if m["id"] == record["id"] and m["revoked"]],
                          what="the stand-in's record of the deletion")
        assert (mine["body"], mine["previous_bodies"], mine["revoked"]) == ("on it, now", ["on it"], True)
        control.edit(phone, inbound_id, "hello again, bot")
        edit = first.expect("message_edit", match=lambda e: e["id"] == message["id"])
        assert (edit["newBody"], edit["prevBody"]) == ("hello again, bot", "hello, bot")
        control.revoke(phone, inbound_id)
        assert first.expect("message_revoke_everyone", match=lambda e: e["id"] == message["id"])["type"] == "revoked"
        clock.mark("edit")
    finally:
        assert first.stop() == 0
    assert [e for e in first.seen if e["event"] in ("page_error", "init_error", "send_failed", "react_failed",
                                                  "number_failed", "lid_and_phone_failed", "edit_failed",
                                                  "delete_failed")] == []
    assert not [e for e in first.seen if e["event"] == "message" and e["message"]["fromMe"]]
    assert [e["qr"] for e in first.seen if e["event"] == "qr"] == [qr]  # one code, scanned

    # The same LocalAuth profile again: linked, so no QR, straight to ready.
    second = WwebjsClient(tls.port, tmp_path / "auth", "bot")
    clock.restart()
    try:
        ready_without_qr(second, clock)
        assert [e["percent"] for e in second.seen if e["event"] == "loading_screen"][-1:] == [100]

        control.logout(phone)
        second.expect("disconnected", reason="LOGOUT")
        # whatsapp-web.js stays up and shows the page's next QR code.
        control.scan(second.expect("qr", timeout=30)["qr"], phone)
        second.expect("ready", timeout=30)

        control.conflict(phone)
        second.expect("change_state", state="CONFLICT")
        second.expect("disconnected", reason="CONFLICT")
    finally:
        second.stop()
    assert [e for e in second.seen if e["event"] in ("page_error", "init_error")] == []


def test_whatsapp_web_js_links_with_a_pairing_code(stand_in, tmp_path):
    plain, tls = stand_in
    control, phone = Control(plain.url), new_phone()
    client = WwebjsClient(tls.port, tmp_path / "auth", "paired", pair_with_phone=phone)
    try:
        code = client.expect("code", timeout=60)["code"]
        assert len(code) == 8
        assert control.pair(phone, code) == f"{phone}@c.us"
        client.expect("authenticated", timeout=30)
        assert client.expect("ready", timeout=30)["wid"] == f"{phone}@c.us"
        assert "qr" not in client.names()
    finally:
        assert client.stop() == 0
    assert [e for e in client.seen if e["event"] in ("page_error", "init_error")] == []


def test_our_session_walks_the_same_path(stand_in, timings, tmp_path):
    plain, _ = stand_in
    control = Control(plain.url)
    phone, friend = new_phone(), new_phone()
    clock = Stopwatch(timings, "our session")
    profile = tmp_path / "profile"

    def session(key: str, profile) -> SessionProcess:
        return SessionProcess(key, profile, plain.url, tmp_path / f"{key}.log")

    first = session("fidelity-1", profile)
    try:
        qr = first.expect("qr", attempt=1, timeout=60)["qr"]
        clock.mark("qr")
        control.scan(qr, phone)  # at once
        first.expect("authenticated", timeout=30)
        assert first.expect("ready", timeout=30)["me"] == f"{phone}@c.us"
        clock.mark("ready")

        first.send({"cmd": "send", "id": "c1", "chat_id": f"{friend}@c.us", "text": TEXT})
        sent = first.expect("sent", id="c1")
        clock.mark("send")
        recorded = wait_for(lambda: control.sent_by(phone), what="the stand-in to record the send")
        assert [(m["to"], m["body"]) for m in recorded] == [(f"{friend}@c.us", TEXT)]
        assert sent["message_id"] == f"true_{friend}@c.us_{recorded[0]['id']}"
        assert control.receipt(recorded[0]["id"], "delivered") == 2
        first.expect("ack", message_id=sent["message_id"], ack=2)
        clock.mark("ack delivered")
        assert control.receipt(recorded[0]["id"], "read") == 3
        first.expect("ack", message_id=sent["message_id"], ack=3)
        clock.mark("ack read")

        inbound_id = control.deliver(phone, friend, "hello, bot")
        message = first.expect("message")["message"]
        clock.mark("inbound")
        assert message["id"]["_serialized"] == f"false_{friend}@c.us_{inbound_id}"
        assert (message["from"], message["to"], message["body"]) == (f"{friend}@c.us", f"{phone}@c.us", "hello, bot")
        assert (message["type"], message["fromMe"], message["deviceType"], message["hasMedia"]) == ("chat", False, "web", False)

        msg_id = message["id"]["_serialized"]
        first.send({"cmd": "send", "id": "r1", "chat_id": f"{friend}@c.us", "text": "on it", "quoted_message_id": msg_id})
        reply = first.expect("sent", id="r1")
        clock.mark("reply")
        # The page resolves a send once it holds the message, as the real
        # one does; the server records it a moment later.
        [record] = wait_for(lambda: [m for m in control.sent_by(phone) if m["body"] == "on it"],
                            what="the stand-in to record the reply")
        assert record["quoted_id"] == inbound_id
        first.send({"cmd": "action", "id": "x1", "action": "react", "message_id": msg_id, "emoji": "👍"})
        first.expect("action_done", id="x1")
        clock.mark("react")
        wait_for(lambda: [(r["message_id"], r["reaction"]) for r in control.reactions_by(phone)] == [(inbound_id, "👍")],
                 what="the stand-in to record the reaction")
        control.react(phone, friend, record["id"], "❤️")
        reaction = first.expect("reaction")
        clock.mark("reaction in")
        assert (reaction["message_id"], reaction["reaction"], reaction["sender"]) == (
            reply["message_id"], "❤️", f"{friend}@c.us")
        control.number(friend, True)
        first.send({"cmd": "check_number", "id": "n1", "phone": friend})
        assert first.expect("action_done", id="n1")["result"] == {"registered": True, "wid": f"{friend}@c.us"}
        clock.mark("number")

        stranger = new_phone()
        lid = control.lid(stranger)
        lid_msg_id = control.deliver(phone, stranger, "by lid", lid=True)
        by_lid = first.expect("message")["message"]
        assert (by_lid["id"]["_serialized"], by_lid["from"]) == (f"false_{lid}_{lid_msg_id}", lid)
        first.send({"cmd": "send", "id": "l1", "chat_id": by_lid["from"], "text": "to a lid"})
        assert first.expect("sent", id="l1")["message_id"].startswith(f"true_{lid}_")
        # The page resolves a send once it holds the message; the stand-in
        # records it a moment later.
        [got] = wait_for(lambda: control.received_by(stranger), what="the stand-in's record of the reply")
        assert (got["body"], got["from"]) == ("to a lid", control.lid(phone))
        clock.mark("lid")
        own_id = control.write_own(phone, f"{friend}@c.us", "from the phone")
        own = first.expect("message", match=lambda e: e["message"]["fromMe"])["message"]
        assert (own["id"]["_serialized"], own["from"], own["body"]) == (f"true_{friend}@c.us_{own_id}",
                                                                        f"{phone}@c.us", "from the phone")
        clock.mark("own")

        first.send({"cmd": "action", "id": "e1", "action": "edit", "message_id": reply["message_id"],
                    "text": "on it, now"})
        first.expect("action_done", id="e1")
        first.send({"cmd": "action", "id": "d1", "action": "revoke", "message_id": reply["message_id"]})
        first.expect("action_done", id="d1")
        [mine] = wait_for(lambda: [m for m in control.sent_by(phone) if m["id"] == record["id"] and m["revoked"]],
                          what="the stand-in's record of the deletion")
        assert (mine["body"], mine["previous_bodies"], mine["revoked"]) == ("on it, now", ["on it"], True)
        control.edit(phone, inbound_id, "hello again, bot")
        edit = first.expect("message_edit", match=lambda e: e["message"]["id"]["_serialized"] == msg_id)
        assert (edit["message"]["body"], edit["previous_body"]) == ("hello again, bot", "hello, bot")
        control.revoke(phone, inbound_id)
        assert first.expect("message_revoke", message_id=msg_id)["from_me"] is False
        clock.mark("edit")
    finally:
        assert first.stop() == 0

    second = session("fidelity-1", profile)
    clock.restart()
    try:
        ready_without_qr(second, clock)
        control.logout(phone)
        second.expect("disconnected", reason="LOGOUT")
        assert second.wait() == 3
    finally:
        second.stop()

    third = session("fidelity-2", tmp_path / "profile-2")
    try:
        control.scan(third.expect("qr", attempt=1, timeout=60)["qr"], phone)
        third.expect("ready", timeout=30)
        control.conflict(phone)
        third.expect("disconnected", reason="CONFLICT")
    finally:
        third.stop()
    for s in (first, second, third):
        wait_for(lambda: all_gone(chrome_processes_under(s.profile)), timeout=15, what="Chrome to exit")


def test_whatsapp_web_js_sends_and_downloads_media(stand_in, tmp_path):
    """whatsapp-web.js's own media calls on the stand-in: sendMessage with a
    MessageMedia (image with a caption, voice note, document), then
    downloadMedia of files a phone sent, byte for byte."""
    plain, tls = stand_in
    control = Control(plain.url, timeout=60)
    phone, friend = new_phone(), new_phone()
    client = WwebjsClient(tls.port, tmp_path / "auth", "media")
    try:
        control.scan(client.expect("qr", timeout=60)["qr"], phone)
        client.expect("ready", timeout=60)
        files = [("img", jpeg(200 * 1024), "image/jpeg", None, {}, "a caption 😀", "image"),
                 ("ptt", ogg(30 * 1024), "audio/ogg; codecs=opus", None, {"sendAudioAsVoice": True}, "", "ptt"),
                 ("doc", pdf(100 * 1024), "application/pdf", "Überweisung März.pdf", {"sendMediaAsDocument": True},
                  "invoice", "document")]
        for ref, data, mimetype, filename, options, caption, _ in files:
            client.send({"cmd": "send_media", "ref": ref, "chat_id": f"{friend}@c.us", "caption": caption,
                         "media": {"mimetype": mimetype, "data": base64.b64encode(data).decode(), "filename": filename},
                         "options": options})
            client.expect("sent", ref=ref, timeout=60)
        recorded = wait_for(lambda: len(control.sent_by(phone)) == 3 and control.sent_by(phone), what="3 sends")
        for record, (_, data, mimetype, _filename, _, caption, kind) in zip(recorded, files):
            m = record["media"]
            assert (m["type"], m["mimetype"], record["body"]) == (kind, mimetype, caption)
            assert control.media_bytes(m["directPath"]) == data
        assert recorded[2]["media"]["filename"] == "Überweisung März.pdf"

        for data, kind, mimetype, filename in ((jpeg(100 * 1024), "image", "image/jpeg", None),
                                                (mp4(2 * 1024 * 1024), "video", "video/mp4", None),
                                                (pdf(50 * 1024), "document", "application/pdf", "Bericht Ä.pdf")):
            msg_id = control.deliver_media(phone, friend, data, kind, mimetype, filename=filename)
            message = client.expect("message", timeout=30)["message"]
            assert message["id"] == f"false_{friend}@c.us_{msg_id}"
            assert (message["hasMedia"], message["type"]) == (True, kind)
            client.send({"cmd": "download", "ref": msg_id, "id": message["id"]})
            got = client.expect("downloaded", ref=msg_id, timeout=60)
            assert (got["mimetype"], got.get("filename")) == (mimetype, filename)
            assert base64.b64decode(got["data"]) == data
    finally:
        assert client.stop() == 0
    errors = [e for e in client.seen if e["event"] in ("page_error", "init_error", "send_failed", "download_failed")]
    assert errors == []


# ------------------------------------------- locations, contact cards, polls
PLACE = {"latitude": -23.5505, "longitude": -46.6333}
PLACE_TEXT = {"name": "Praça da Sé", "address": "Sé, São Paulo", "url": "https://maps.example.com/?q=se"}
VCARD = "BEGIN:VCARD\nVERSION:3.0\nN:Dee;Cy;;;\nFN:Cy Dee\nTEL;type=CELL;waid=5511999990077:+5511999990077\nEND:VCARD"


def sent_contents(control: Control, phone: str) -> list:
    """What the phone's browser sent, as the stand-in recorded it: (type,
    content) in order, without the ids."""
    out = []
    for r in control.sent_by(phone):
        content = r.get("location") or r.get("poll") or {"vcards": r.get("vcards"), "names": r.get("names")}
        out.append((r.get("type"), content))
    return out


def expected_sent(ana: str, friend: str) -> list:
    """What either client sent in the content steps below: a location, a
    poll, one card, two cards, a vCard as given."""
    ana_card = f"BEGIN:VCARD\nVERSION:3.0\nN:Souza;Ana;;;\nFN:Ana Souza\nTEL;type=CELL;waid={ana}:+{ana}\nEND:VCARD"
    friend_card = f"BEGIN:VCARD\nVERSION:3.0\nN:;+{friend};;;\nFN:+{friend}\nTEL;type=CELL;waid={friend}:+{friend}\nEND:VCARD"
    return [("location", {**PLACE, "description": "Praça da Sé\nSé, São Paulo", "url": PLACE_TEXT["url"]}),
            ("poll_creation", {"name": "Lunch?", "options": ["Pizza", "Sushi"], "option_ids": [0, 1], "multiple": False}),
            ("vcard", {"vcards": [ana_card], "names": ["Ana Souza"]}),
            ("multi_vcard", {"vcards": [ana_card, friend_card], "names": ["Ana Souza", f"+{friend}"]}),
            ("vcard", {"vcards": [VCARD], "names": ["Cy Dee"]})]


def phone_sends_contents(control: Control, phone: str, friend: str, ana: str) -> tuple[str, str, str]:
    """The friend's phone shares a location, Ana's card and a poll; their ids."""
    return (control.share_location(phone, friend, 48.8584, 2.2945, name="Tour Eiffel", address="Champ de Mars",
                                   url="https://maps.example.com/eiffel"),
            control.send_cards(phone, friend, contacts=[ana]),
            control.send_poll(phone, friend, "Tea?", ["Yes", "No"]))


RECEIVED_LOCATION = {"latitude": 48.8584, "longitude": 2.2945, "name": "Tour Eiffel", "address": "Champ de Mars",
                     "url": "https://maps.example.com/eiffel", "description": "Tour Eiffel\nChamp de Mars"}


_asked = itertools.count()


def knows_contact(client: WwebjsClient, contact_id: str, name: str) -> bool:
    """Whether whatsapp-web.js's getContacts lists ``contact_id`` saved as ``name``."""
    ref = f"known-{next(_asked)}"
    client.send({"cmd": "get_contacts", "ref": ref})
    contacts = {c["id"]: c for c in client.expect("contacts", ref=ref)["contacts"]}
    return contacts.get(contact_id, {}).get("name") == name


def test_whatsapp_web_js_sends_and_gets_locations_cards_and_polls(stand_in, tmp_path):
    """whatsapp-web.js's own calls: sendMessage of a Location, a Poll, a
    Contact from getContactById (one, and a list), a text that is a vCard;
    vote_update when the other person votes; the location, vCards and poll
    fields of messages a phone sent."""
    plain, tls = stand_in
    control = Control(plain.url)
    phone, friend, ana = new_phone(), new_phone(), new_phone()
    chat = f"{friend}@c.us"
    client = WwebjsClient(tls.port, tmp_path / "auth", "contents")
    try:
        control.scan(client.expect("qr", timeout=60)["qr"], phone)
        client.expect("ready", timeout=60)
        control.add_contact(phone, ana, name="Ana Souza")
        # The page learns a saved number as the real one does, pushed after
        # the phone saved it: the cards below are made from what it knows.
        wait_for(lambda: knows_contact(client, f"{ana}@c.us", "Ana Souza"), what="the page to know Ana")
        client.send({"cmd": "send_location", "ref": "loc", "chat_id": chat, **PLACE, "options": PLACE_TEXT})
        client.send({"cmd": "send_poll", "ref": "poll", "chat_id": chat, "name": "Lunch?", "options": ["Pizza", "Sushi"]})
        client.send({"cmd": "send_contacts", "ref": "card", "chat_id": chat, "ids": [f"{ana}@c.us"]})
        client.send({"cmd": "send_contacts", "ref": "cards", "chat_id": chat, "ids": [f"{ana}@c.us", chat]})
        client.send({"cmd": "send", "ref": "vcard", "chat_id": chat, "text": VCARD})
        # Sent at once, answered in any order.
        types = {e["ref"]: e["type"] for e in (client.expect("sent") for _ in range(5))}
        assert types == {"loc": "location", "poll": "poll_creation", "card": "vcard", "cards": "multi_vcard",
                         "vcard": "vcard"}
        wait_for(lambda: len(control.sent_by(phone)) == 5, what="the stand-in to record 5 sends")
        assert sorted(sent_contents(control, phone), key=repr) == sorted(expected_sent(ana, friend), key=repr)

        [poll] = [r for r in control.sent_by(phone) if r.get("type") == "poll_creation"]
        control.vote(phone, friend, poll["id"], ["Sushi"])
        vote = client.expect("vote_update")
        assert (vote["voter"], vote["selected"], vote["localIds"], vote["poll"]) == (
            chat, ["Sushi"], [1], f"true_{chat}_{poll['id']}")

        location_id, card_id, poll_id = phone_sends_contents(control, phone, friend, ana)
        got = {m["id"]: m for m in (client.expect("message")["message"] for _ in range(3))}
        assert got[f"false_{chat}_{location_id}"]["location"] == RECEIVED_LOCATION
        assert got[f"false_{chat}_{card_id}"]["vCards"] == [
            f"BEGIN:VCARD\nVERSION:3.0\nN:;+{ana};;;\nFN:+{ana}\nTEL;type=CELL;waid={ana}:+{ana}\nEND:VCARD"]
        inbound_poll = got[f"false_{chat}_{poll_id}"]
        assert (inbound_poll["pollName"], inbound_poll["allowMultipleAnswers"]) == ("Tea?", False)
        assert inbound_poll["pollOptions"] == [{"name": "Yes", "localId": 0}, {"name": "No", "localId": 1}]
        control.vote(phone, friend, poll_id, ["No"])
        vote = client.expect("vote_update")
        assert (vote["voter"], vote["selected"], vote["poll"]) == (chat, ["No"], f"false_{chat}_{poll_id}")
    finally:
        assert client.stop() == 0
    assert [e for e in client.seen if e["event"] in ("page_error", "init_error", "send_failed")] == []


def test_our_session_walks_the_same_content_steps(stand_in, tmp_path):
    plain, _ = stand_in
    control = Control(plain.url)
    phone, friend, ana = new_phone(), new_phone(), new_phone()
    chat = f"{friend}@c.us"
    s = SessionProcess("fidelity-content", tmp_path / "profile", plain.url, tmp_path / "content.log")
    try:
        control.scan(s.expect("qr", attempt=1, timeout=60)["qr"], phone)
        s.expect("ready", timeout=30)
        control.add_contact(phone, ana, name="Ana Souza")
        for cid, content in (("loc", {"location": {**PLACE, **PLACE_TEXT}}),
                             ("poll", {"poll": {"name": "Lunch?", "options": ["Pizza", "Sushi"], "multiple": False}}),
                             ("card", {"contacts": [f"{ana}@c.us"]}), ("cards", {"contacts": [f"{ana}@c.us", chat]}),
                             ("vcard", {"contacts": {"vcard": VCARD}})):
            s.send({"cmd": "send", "id": cid, "chat_id": chat, "text": "", **content})
            s.expect("sent", id=cid)
        assert sent_contents(control, phone) == expected_sent(ana, friend)

        [poll] = [r for r in control.sent_by(phone) if r.get("type") == "poll_creation"]
        control.vote(phone, friend, poll["id"], ["Sushi"])
        vote = s.expect("poll_vote")
        assert (vote["voter"], vote["selected"], vote["selected_ids"], vote["message_id"]) == (
            chat, ["Sushi"], [1], f"true_{chat}_{poll['id']}")

        location_id, card_id, poll_id = phone_sends_contents(control, phone, friend, ana)
        got = {m["id"]["_serialized"]: m for m in (s.expect("message")["message"] for _ in range(3))}
        assert got[f"false_{chat}_{location_id}"]["location"] == RECEIVED_LOCATION
        assert got[f"false_{chat}_{card_id}"]["vCards"] == [
            f"BEGIN:VCARD\nVERSION:3.0\nN:;+{ana};;;\nFN:+{ana}\nTEL;type=CELL;waid={ana}:+{ana}\nEND:VCARD"]
        inbound_poll = got[f"false_{chat}_{poll_id}"]
        assert (inbound_poll["pollName"], inbound_poll["allowMultipleAnswers"]) == ("Tea?", False)
        assert inbound_poll["pollOptions"] == [{"name": "Yes", "localId": 0}, {"name": "No", "localId": 1}]
        control.vote(phone, friend, poll_id, ["No"])
        vote = s.expect("poll_vote")
        assert (vote["voter"], vote["selected"], vote["message_id"]) == (chat, ["No"], f"false_{chat}_{poll_id}")
    finally:
        assert s.stop() == 0
    wait_for(lambda: all_gone(chrome_processes_under(s.profile)), timeout=15, what="Chrome to exit")


# ----------------------------------------------------------------- calls
def test_whatsapp_web_js_sees_a_call_ring_and_rejects_it(stand_in, tmp_path):
    """whatsapp-web.js's own `call` event (its wrap of the call
    collection's Map) and Call.reject (the stanza it casts) on the
    stand-in: the caller sees the rejection.  A reject of a call that no
    longer rings is cast all the same and changes nothing."""
    plain, tls = stand_in
    control = Control(plain.url)
    phone, friend = new_phone(), new_phone()
    client = WwebjsClient(tls.port, tmp_path / "auth", "calls")
    try:
        control.scan(client.expect("qr", timeout=60)["qr"], phone)
        client.expect("ready", timeout=60)
        call_id = control.ring(phone, friend, video=True)
        call = client.expect("call")
        assert (call["id"], call["from"], call["isVideo"], call["isGroup"], call["fromMe"]) == (
            call_id, f"{friend}@c.us", True, False, False)
        client.send({"cmd": "reject_call", "ref": "k1", "id": call_id})
        client.expect("call_rejected", ref="k1")
        wait_for(lambda: [c["state"] for c in control.calls(friend)] == ["rejected"], what="the caller to see it")

        missed = control.ring(phone, friend)
        assert client.expect("call", id=missed)["isVideo"] is False
        control.hang_up(missed)
        client.send({"cmd": "reject_call", "ref": "k2", "id": missed})
        client.expect("call_rejected", ref="k2")  # cast, and nothing said back
        assert [c["state"] for c in control.calls(friend)] == ["rejected", "missed"]
    finally:
        assert client.stop() == 0
    assert [e for e in client.seen if e["event"] in ("page_error", "init_error", "reject_failed")] == []
    assert len([e for e in client.seen if e["event"] == "call"]) == 2  # once each


def test_our_session_walks_the_same_call_steps(stand_in, tmp_path):
    plain, _ = stand_in
    control = Control(plain.url)
    phone, friend = new_phone(), new_phone()
    s = SessionProcess("fidelity-calls", tmp_path / "profile", plain.url, tmp_path / "calls.log")
    try:
        control.scan(s.expect("qr", attempt=1, timeout=60)["qr"], phone)
        s.expect("ready", timeout=30)
        call_id = control.ring(phone, friend, video=True)
        call = s.expect("call")["call"]
        assert (call["id"], call["from"], call["is_video"], call["is_group"]) == (call_id, f"{friend}@c.us", True,
                                                                                  False)
        assert call["from_lid"] == control.lid(friend)  # the caller's number showed: both ids known
        assert call["ts"] == control.calls(friend)[0]["t"] * 1000
        s.send({"cmd": "call", "id": "k1", "action": "reject", "call_id": call_id})
        assert s.expect("action_done", id="k1")["result"] == {"call_id": call_id, "from": f"{friend}@c.us"}
        wait_for(lambda: [c["state"] for c in control.calls(friend)] == ["rejected"], what="the caller to see it")

        # Where whatsapp-web.js casts anyway, ours refuses and casts nothing.
        missed = control.ring(phone, friend)
        assert s.expect("call", match=lambda e: e["call"]["id"] == missed)["call"]["is_video"] is False
        control.hang_up(missed)
        tries = iter(range(1000))

        def refused_as_ended() -> bool:  # once the page has seen the call end (it learns it a moment later)
            cid = f"k2-{next(tries)}"
            s.send({"cmd": "call", "id": cid, "action": "reject", "call_id": missed})
            return s.expect(("action_done", "action_failed"), id=cid).get("reason") == "call_ended"

        wait_for(refused_as_ended, what="the page to see the call end")
        s.send({"cmd": "call", "id": "k3", "action": "reject", "call_id": "ABCDEF0123"})
        assert s.expect("action_failed", id="k3")["reason"] == "unknown_call"
        assert [c["state"] for c in control.calls(friend)] == ["rejected", "missed"]
    finally:
        assert s.stop() == 0
    assert len([e for e in s.seen if e["event"] == "call"]) == 2  # once each
    wait_for(lambda: all_gone(chrome_processes_under(s.profile)), timeout=15, what="Chrome to exit")


# ------------------------------------------------- typing and the chat list
MUTE_UNTIL = 4_102_444_800_000  # 2100-01-01, in ms


def chat_states_shown(control: Control, phone: str, chat: str, wanted: str) -> None:
    wait_for(lambda: control.chat_states(phone)["now"].get(chat) == wanted, what=f"the other side to see {wanted}")


def test_whatsapp_web_js_goes_online_types_and_archives_pins_mutes_chats(stand_in, tmp_path):
    """whatsapp-web.js's own sendPresenceAvailable and
    sendPresenceUnavailable; Chat.sendStateTyping, sendStateRecording,
    clearState, archive, unarchive, pin (three at most: the fourth answers
    false), unpin, mute (until a date, and for ever) and unmute on the
    stand-in: what other phones and the account's phone see."""
    plain, tls = stand_in
    control = Control(plain.url)
    phone, friends = new_phone(), [f"{new_phone()}@c.us" for _ in range(4)]
    chat = friends[0]
    client = WwebjsClient(tls.port, tmp_path / "auth", "chats")
    refs = iter(range(100))

    def do(op: str, on: str = chat, **extra):
        ref = f"c{next(refs)}"
        client.send({"cmd": "chat", "ref": ref, "chat_id": on, "op": op, **extra})
        return client.expect("chat_done", ref=ref)["result"]

    try:
        control.scan(client.expect("qr", timeout=60)["qr"], phone)
        client.expect("ready", timeout=60)
        for ref, available in (("on", True), ("off", False), ("on-again", True)):
            client.send({"cmd": "presence", "ref": ref, "available": available})
            client.expect("presence_sent", ref=ref)
        assert [c["state"] for c in control.presence(phone)["changes"]] == ["available", "unavailable", "available"]
        for op, shown in (("sendStateTyping", "composing"), ("sendStateRecording", "recording"),
                          ("clearState", "paused")):
            assert do(op) is True
            chat_states_shown(control, phone, chat, shown)  # whatsapp-web.js does not wait for the page

        assert do("archive") is True and control.chats(phone)[chat]["archive"] is True
        assert do("unarchive") is False and control.chats(phone)[chat]["archive"] is False
        assert [do("pin", on=f) for f in friends] == [True, True, True, False]  # three at most
        assert [control.chats(phone).get(f, {}).get("pin", 0) > 0 for f in friends] == [True, True, True, False]
        assert do("unpin") is False and control.chats(phone)[chat]["pin"] == 0
        assert do("mute", until=MUTE_UNTIL) == {"isMuted": True, "muteExpiration": MUTE_UNTIL // 1000}
        assert control.chats(phone)[chat]["mute"] == MUTE_UNTIL // 1000
        assert do("mute") == {"isMuted": True, "muteExpiration": -1}
        assert do("unmute") == {"isMuted": False, "muteExpiration": 0} and control.chats(phone)[chat]["mute"] == 0
    finally:
        assert client.stop() == 0
    assert [e for e in client.seen if e["event"] in ("page_error", "init_error", "chat_failed",
                                                   "presence_failed")] == []


def test_our_session_walks_the_same_presence_and_chat_steps(stand_in, tmp_path):
    plain, _ = stand_in
    control = Control(plain.url)
    phone, friends = new_phone(), [f"{new_phone()}@c.us" for _ in range(4)]
    chat = friends[0]
    s = SessionProcess("fidelity-chats", tmp_path / "profile", plain.url, tmp_path / "chats.log")
    ids = iter(range(100))

    def do(action: str, on: str = chat, **extra) -> dict:
        cid = f"c{next(ids)}"
        s.send({"cmd": "chat", "id": cid, "action": action, "chat_id": on, **extra})
        return s.expect(("action_done", "action_failed"), id=cid)

    try:
        control.scan(s.expect("qr", attempt=1, timeout=60)["qr"], phone)
        s.expect("ready", timeout=30)
        for cid, state in (("on", "available"), ("off", "unavailable"), ("on-again", "available")):
            s.send({"cmd": "presence", "id": cid, "state": state})
            assert s.expect("action_done", id=cid)["result"] == {"state": state}
        assert [c["state"] for c in control.presence(phone)["changes"]] == ["available", "unavailable", "available"]
        for action, shown in (("typing", "composing"), ("recording", "recording"), ("paused", "paused")):
            assert do(action)["result"] == {}
            assert control.chat_states(phone)["now"][chat] == shown  # done once the page sent it

        assert do("archive")["result"]["archived"] is True and control.chats(phone)[chat]["archive"] is True
        assert do("unarchive")["result"]["archived"] is False and control.chats(phone)[chat]["archive"] is False
        assert [do("pin", on=f)["result"]["pinned"] for f in friends[:3]] == [True] * 3
        refused = do("pin", on=friends[3])
        assert (refused["event"], refused["reason"]) == ("action_failed", "too_many_pinned")
        assert [control.chats(phone).get(f, {}).get("pin", 0) > 0 for f in friends] == [True, True, True, False]
        assert do("pin", on=friends[1])["result"]["pinned"] is True  # pinned already: done, nothing changes
        assert do("unpin")["result"]["pinned"] is False and control.chats(phone)[chat]["pin"] == 0
        assert do("mute", until=MUTE_UNTIL)["result"]["mute_expiration"] == MUTE_UNTIL // 1000
        assert control.chats(phone)[chat]["mute"] == MUTE_UNTIL // 1000
        assert do("mute")["result"]["mute_expiration"] == -1
        past = do("mute", until=1_000_000_000_000)
        assert (past["event"], past["reason"]) == ("action_failed", "bad_until")
        assert control.chats(phone)[chat]["mute"] == -1  # nothing changed
        assert do("unmute")["result"]["mute_expiration"] == 0 and control.chats(phone)[chat]["mute"] == 0
    finally:
        assert s.stop() == 0
    wait_for(lambda: all_gone(chrome_processes_under(s.profile)), timeout=15, what="Chrome to exit")


# ------------------------------------------- reading back, and groups
JPEG = b"\xff\xd8\xff\xe0 a profile picture"


def readback_world(control: Control, phone: str) -> dict:
    """People for the reading-back and group steps: a friend who writes
    three messages and has a picture; Ana (saved in the account's
    contacts), Bo and Cy to make a group with; an owner of other groups."""
    people = {name: new_phone() for name in ("friend", "ana", "bo", "cy", "owner", "joiner")}
    for p in people.values():
        control.number(p, True)
    control.picture(JPEG, phone=people["friend"])
    return people


def picture_bytes(url: str, tls: FakeWA | None = None) -> bytes:
    """The picture at a URL the page gave; whatsapp-web.js's page is
    https://web.whatsapp.com/, which is the stand-in's TLS front here."""
    import ssl
    import urllib.request
    context = None
    if tls is not None and url.startswith("https://web.whatsapp.com/"):
        url = tls.url + url[len("https://web.whatsapp.com/"):]
        context = ssl._create_unverified_context()  # the stand-in's own certificate
    with urllib.request.urlopen(url, context=context) as resp:
        return resp.read()


def others_change_groups(control: Control, phone: str, p: dict) -> tuple[str, str]:
    """The owner puts the account in a group, promotes it, renames the
    group, lets someone join and leave; and makes a second group with an
    invite link.  (The first group, the second's link.)"""
    group, _ = control.create_group(p["owner"], "Owner's group", [phone])
    control.group("promote", group, p["owner"], participants=[phone])
    control.group("subject", group, p["owner"], subject="Owner's group, renamed")
    code = control.group("invite", group, p["owner"])["code"]
    control.join_group(code, p["joiner"])
    control.leave_group(group, p["joiner"])
    other, _ = control.create_group(p["owner"], "Open group", [])
    return group, f"https://chat.whatsapp.com/{control.group('invite', other, p['owner'])['code']}"


# What each client did to groups, as the stand-in saw it (the same for both).
GROUP_ACTIONS = ["create", "add", "promote", "remove", "subject", "description", "property", "invite",
                 "reset_invite", "join", "leave"]


def test_whatsapp_web_js_reads_back_and_runs_groups(stand_in, tmp_path):
    """whatsapp-web.js's own calls: getChats, Chat.fetchMessages,
    getContacts, getProfilePicUrl; createGroup and the GroupChat methods,
    acceptInvite; group_join, group_admin_changed, group_update and
    group_leave for what others do."""
    plain, tls = stand_in
    control = Control(plain.url)
    phone = new_phone()
    p = readback_world(control, phone)
    friend = f"{p['friend']}@c.us"
    client = WwebjsClient(tls.port, tmp_path / "auth", "groups")
    try:
        control.scan(client.expect("qr", timeout=60)["qr"], phone)
        client.expect("ready", timeout=60)
        control.add_contact(phone, p["ana"], name="Ana Souza")
        for i in range(3):
            control.deliver(phone, p["friend"], f"m{i}")
        assert [client.expect("message")["message"]["body"] for _ in range(3)] == ["m0", "m1", "m2"]

        client.send({"cmd": "get_chats", "ref": "c"})
        chats = {c["id"]: c for c in client.expect("chats", ref="c")["chats"]}
        assert (chats[friend]["unreadCount"], chats[friend]["archived"], chats[friend]["isGroup"]) == (3, False, False)
        # More than the page holds: it asks for earlier ones (there are none).
        # (With fewer, whatsapp-web.js sorts by the second, which these share.)
        client.send({"cmd": "fetch_messages", "ref": "m", "chat_id": friend, "limit": 5})
        assert [m["body"] for m in client.expect("messages", ref="m")["messages"]] == ["m0", "m1", "m2"]
        client.send({"cmd": "get_contacts", "ref": "k"})
        contacts = {c["id"]: c for c in client.expect("contacts", ref="k")["contacts"]}
        assert (contacts[f"{p['ana']}@c.us"]["name"], contacts[f"{p['ana']}@c.us"]["isMyContact"]) == ("Ana Souza", True)
        assert friend in contacts
        client.send({"cmd": "profile_pic", "ref": "p1", "id": friend})
        assert picture_bytes(client.expect("profile_pic", ref="p1")["url"], tls) == JPEG
        client.send({"cmd": "profile_pic", "ref": "p2", "id": f"{p['ana']}@c.us"})
        assert client.expect("profile_pic", ref="p2")["url"] is None

        client.send({"cmd": "create_group", "ref": "g", "title": "Team",
                     "participants": [f"{p['ana']}@c.us", f"{p['bo']}@c.us"]})
        made = client.expect("group_created", ref="g", timeout=30)
        gid = made["gid"]
        assert {k: v["statusCode"] for k, v in made["participants"].items()} == {
            f"{p['ana']}@c.us": 200, f"{p['bo']}@c.us": 200, f"{phone}@c.us": 200}
        steps = [("addParticipants", [[f"{p['cy']}@c.us"]]), ("promoteParticipants", [[f"{p['ana']}@c.us"]]),
                 ("removeParticipants", [[f"{p['bo']}@c.us"]]), ("setSubject", ["Team 2"]),
                 ("setDescription", ["About the team"]), ("setMessagesAdminsOnly", [True]), ("getInviteCode", []),
                 ("revokeInvite", [])]
        results = {}
        for i, (op, args) in enumerate(steps):
            client.send({"cmd": "group", "ref": f"s{i}", "chat_id": gid, "op": op, "args": args})
            results[op] = client.expect("group_done", ref=f"s{i}", timeout=30)["result"]
        assert results["addParticipants"][f"{p['cy']}@c.us"]["code"] == 200
        assert (results["setSubject"], results["setDescription"], results["setMessagesAdminsOnly"]) == (True, True, True)
        assert results["revokeInvite"] != results["getInviteCode"]
        client.send({"cmd": "get_group", "ref": "gg", "chat_id": gid})
        group = client.expect("group", ref="gg")
        assert (group["name"], group["description"]) == ("Team 2", "About the team")
        assert len(group["participants"]) == 3
        info = control.group_info(gid)
        assert (info["subject"], info["members"], info["announce"]) == (
            "Team 2", {phone: "superadmin", p["ana"]: "admin", p["cy"]: "member"}, True)

        owners, link = others_change_groups(control, phone, p)
        # Put in a new group: its creation (whatsapp-web.js: a group_update
        # of type create; our session reports the account added).
        created = client.expect("group_update", match=lambda e: e["chatId"] == owners and e["type"] == "create")
        assert (created["recipientIds"], created["author"]) == ([f"{phone}@c.us"], f"{p['owner']}@c.us")
        assert client.expect("group_admin_changed", match=lambda e: e["chatId"] == owners)["type"] == "promote"
        assert client.expect("group_update", match=lambda e: e["chatId"] == owners and e["type"] == "subject")[
            "body"] == "Owner's group, renamed"
        joined = client.expect("group_join", match=lambda e: e["chatId"] == owners and e["type"] == "invite")
        assert joined["author"] == f"{p['joiner']}@c.us"
        assert client.expect("group_leave", match=lambda e: e["chatId"] == owners)["type"] == "leave"
        client.send({"cmd": "accept_invite", "ref": "j", "code": link.rsplit("/", 1)[1]})
        assert client.expect("joined", ref="j")["id"] not in (owners, gid)
        client.send({"cmd": "group", "ref": "l", "chat_id": gid, "op": "leave"})
        client.expect("group_done", ref="l")
        assert phone not in control.group_info(gid)["members"]
        assert [a["action"] for a in control.group_actions(phone)] == GROUP_ACTIONS
    finally:
        assert client.stop() == 0
    failures = [e for e in client.seen if e["event"] in ("page_error", "init_error") or e["event"].endswith("_failed")]
    assert failures == []


def test_our_session_reads_back_and_runs_groups_the_same_way(stand_in, tmp_path):
    plain, _ = stand_in
    control = Control(plain.url)
    phone = new_phone()
    p = readback_world(control, phone)
    friend = f"{p['friend']}@c.us"
    s = SessionProcess("fidelity-groups", tmp_path / "profile", plain.url, tmp_path / "groups.log")
    ids = iter(range(1000))

    def ask(cmd: str, **fields) -> dict:
        cid = f"{cmd}-{next(ids)}"
        s.send({"cmd": cmd, "id": cid, **fields})
        return s.expect("action_done", id=cid, timeout=30)["result"]

    try:
        control.scan(s.expect("qr", attempt=1, timeout=60)["qr"], phone)
        s.expect("ready", timeout=30)
        control.add_contact(phone, p["ana"], name="Ana Souza")
        for i in range(3):
            control.deliver(phone, p["friend"], f"m{i}")
        assert [s.expect("message")["message"]["body"] for _ in range(3)] == ["m0", "m1", "m2"]

        chats = {c["id"]: c for c in ask("query", what="chats")["items"]}
        assert (chats[friend]["unreadCount"], chats[friend]["archived"], chats[friend]["isGroup"]) == (3, False, False)
        assert [m["body"] for m in ask("query", what="messages", chat_id=friend, limit=2)["items"]] == ["m2", "m1"]
        contacts = {c["id"]: c for c in ask("query", what="contacts")["items"]}
        assert (contacts[f"{p['ana']}@c.us"]["name"], contacts[f"{p['ana']}@c.us"]["isMyContact"]) == ("Ana Souza", True)
        assert friend in contacts
        assert picture_bytes(ask("query", what="profile_picture", chat_id=friend)["items"][0]["url"]) == JPEG
        assert ask("query", what="profile_picture", chat_id=f"{p['ana']}@c.us")["items"][0]["url"] is None

        made = ask("group", action="create", value="Team", participants=[f"{p['ana']}@c.us", f"{p['bo']}@c.us"])
        gid = made["group_id"]
        assert [x["ok"] for x in made["participants"]] == [True, True]
        assert ask("group", action="add", group_id=gid, participants=[f"{p['cy']}@c.us"])["participants"] == [
            {"id": f"{p['cy']}@c.us", "ok": True}]
        ask("group", action="promote", group_id=gid, participants=[f"{p['ana']}@c.us"])
        ask("group", action="remove", group_id=gid, participants=[f"{p['bo']}@c.us"])
        ask("group", action="subject", group_id=gid, value="Team 2")
        ask("group", action="description", group_id=gid, value="About the team")
        ask("group", action="settings", group_id=gid, value={"announce": True})
        code = ask("group", action="invite_link", group_id=gid)["code"]
        assert ask("group", action="revoke_invite", group_id=gid)["code"] != code
        [group] = ask("query", what="group", chat_id=gid)["items"]
        assert (group["subject"], group["description"], group["size"]) == ("Team 2", "About the team", 3)
        info = control.group_info(gid)
        assert (info["subject"], info["members"], info["announce"]) == (
            "Team 2", {phone: "superadmin", p["ana"]: "admin", p["cy"]: "member"}, True)

        owners, link = others_change_groups(control, phone, p)
        me, owner, joiner = f"{phone}@c.us", f"{p['owner']}@c.us", f"{p['joiner']}@c.us"
        seen = [(e["type"], e["participants"], e["by"]) for e in
                (s.expect("group_update", match=lambda e: e["group_id"] == owners) for _ in range(5))]
        assert seen == [("add", [me], owner), ("promote", [me], owner), ("subject", [], owner),
                        ("join", [joiner], joiner), ("leave", [joiner], joiner)]
        ask("group", action="join", value=link)
        ask("group", action="leave", group_id=gid)
        assert phone not in control.group_info(gid)["members"]
        assert [a["action"] for a in control.group_actions(phone)] == GROUP_ACTIONS
    finally:
        assert s.stop() == 0
    wait_for(lambda: all_gone(chrome_processes_under(s.profile)), timeout=15, what="Chrome to exit")
